"""Experiment settings keep secrets out of their values."""

import pytest
from pydantic import ValidationError

from remix_pipeline.experiment import LEDGER_URL_ENV, ExperimentSettings


def test_a_ledger_url_with_a_password_is_refused_with_where_to_put_it():
    with pytest.raises(ValidationError, match="ledger_url_env"):
        ExperimentSettings(table="t.csv", ledger_url="postgresql://remix:s3cret@db:5432/remix")


def test_the_ledger_url_with_its_password_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv(LEDGER_URL_ENV, "postgresql://remix:s3cret@db:5432/remix")
    settings = ExperimentSettings(table="t.csv")

    assert settings.resolved_ledger_url == "postgresql://remix:s3cret@db:5432/remix"
    assert "s3cret" not in settings.model_dump_json()


def test_without_a_ledger_url_the_default_sqlite_file_is_used(monkeypatch):
    monkeypatch.delenv(LEDGER_URL_ENV, raising=False)

    assert ExperimentSettings(table="t.csv").resolved_ledger_url is None
