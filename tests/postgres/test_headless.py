"""`remix-pipeline run`'s engine with Dagster storage and the ledger both on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import LEDGER_URL_ENV, ExperimentSettings
from remix_pipeline.lineage import read_lineage
from tests.support.jobs import remix_jobs
from tests.support.postgres import postgres_instance


def test_run_and_rerun_on_postgres_pay_once_per_variant(
    project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEDGER_URL_ENV, postgres_url)  # the URL holds a password
    settings = ExperimentSettings(
        name="t",
        table=str(project / "data" / "requests.csv"),
        pool="remix_submissions",
    )
    home = project / ".remix-pipeline" / "dagster_home"
    with postgres_instance(home, postgres_url) as instance:
        first = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
        jobs = remix_jobs(project)
        again = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
        runs = instance.get_runs()

    assert first.finished and again.finished
    assert len(jobs) == 4
    assert remix_jobs(project) == jobs
    frame = read_lineage(again.lineage_path)
    assert set(frame["state"]) == {"completed"}
    assert len(runs) >= 4
