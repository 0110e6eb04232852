"""`remix-pipeline run`'s engine with Dagster storage and the ledger both on PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

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


def test_a_run_on_postgres_holds_its_dagster_connections_rather_than_one_per_event(
    project: Path, postgres_url: str
) -> None:
    settings = ExperimentSettings(name="t", table=str(project / "data" / "requests.csv"))
    home = project / ".remix-pipeline" / "dagster_home"
    engine = sa.create_engine(
        postgres_url.replace("postgresql:", "postgresql+psycopg2:", 1), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as probe:
        with postgres_instance(home, postgres_url) as instance:
            before = sessions_ended(probe)  # the instance's own set-up is not the run's
            summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
            events = sum(len(instance.all_logs(run.run_id)) for run in instance.get_runs())
        opened = sessions_ended(probe) - before
    engine.dispose()

    assert summary.finished
    assert opened < events / 4, f"{opened} connections for {events} events"


def sessions_ended(probe: sa.Connection) -> int:
    """Sessions the server has closed on the probe's database, once the count settles: the
    server counts a session as it ends, a moment after its client lets go."""
    query = sa.text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
    last = probe.execute(query).scalar_one()
    for _ in range(20):
        time.sleep(0.25)
        now = probe.execute(query).scalar_one()
        if now == last:
            return now
        last = now
    return last
