"""Fixtures used in more than one folder: a pipeline project (its own state home, fast
service settings and the sample table) with its experiment and Dagster instance, and the
in-process service's fast config. Helpers live in `tests/support`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.service import ServiceConfig
from tests.support.projects import SAMPLE_ROWS, write_service_settings, write_table
from tests.support.servers import MakeConfig, fast_config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with its own state home, service settings and sample table."""
    home = tmp_path / ".remix-pipeline"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMIX_PIPELINE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (home / "dagster_home").mkdir(parents=True)
    (home / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    write_service_settings(home)
    (tmp_path / "data").mkdir()
    write_table(tmp_path / "data" / "requests.csv", SAMPLE_ROWS)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> ExperimentSettings:
    return ExperimentSettings(name="t", table=str(project / "data" / "requests.csv"))


@pytest.fixture
def instance(project: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as persistent:
        yield persistent


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """The in-process service with fast jobs over a fresh database: `make_config("litellm",
    run_seconds=0.5)`; keyword arguments override, `faults` may be a dict."""

    def make(dialect: str | None = None, **overrides: Any) -> ServiceConfig:
        if dialect is not None:
            overrides["dialect"] = dialect
        return fast_config(overrides.pop("db_path", tmp_path / "service.db"), **overrides)

    return make
