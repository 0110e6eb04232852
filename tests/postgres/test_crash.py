"""`remix-pipeline run` killed mid-fan-out with Dagster storage and the ledger on PostgreSQL:
the next run, in a new process, resolves what the dead one left and pays once per variant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from remix_pipeline.experiment import LEDGER_URL_ENV
from remix_pipeline.ledger import Ledger
from remix_pipeline.lineage import read_lineage
from tests.support.jobs import remix_jobs
from tests.support.postgres import postgres_instance
from tests.support.projects import write_service_settings, write_table

VARIANTS = 24


def attempts(url: str, state: str | None = None) -> int:
    """0 until the killed process has created the ledger's tables."""
    try:
        with Ledger(url) as ledger:
            latest = list(ledger.latest().values())
    except sa.exc.SQLAlchemyError:
        return 0
    return len([a for a in latest if state is None or a.state.value == state])


def test_killing_the_run_mid_fan_out_on_postgres_then_running_again_pays_once_per_variant(
    project: Path, postgres_url: str
) -> None:
    rows = [f"video_src_dunes,v{i},Dunes variation number {i},t,1" for i in range(VARIANTS)]
    table = write_table(project / "data" / "requests.csv", rows)
    # Slow responses and dropped ones, so the kill lands while POSTs are in flight.
    state = project / ".remix-pipeline"
    write_service_settings(state, faults={"latency_ms": 400, "drop_rate": 0.2, "seed": 7})
    postgres_instance(state / "dagster_home", postgres_url).dispose()
    env = {**os.environ, LEDGER_URL_ENV: postgres_url}
    command = [sys.executable, "-m", "remix_pipeline.cli", "run", "--table", str(table)]
    command += ["--name", "t"]
    first = subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and attempts(postgres_url) == 0:
        time.sleep(0.05)
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    interrupted = attempts(postgres_url, "submitted")
    assert interrupted < VARIANTS, "the kill came too late to interrupt the fan-out"

    write_service_settings(state, faults={"drop_rate": 0.2, "seed": 8})
    second = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=180
    )

    with postgres_instance(state / "dagster_home", postgres_url) as instance:
        statuses = [run.status for run in instance.get_runs()]
    assert second.returncode == 0, second.stderr
    assert not (state / "ledger.db").exists()  # the ledger was PostgreSQL throughout
    assert dg.DagsterRunStatus.FAILURE in statuses  # the killed run, marked by the next
    assert statuses.count(dg.DagsterRunStatus.SUCCESS) >= 3
    jobs = remix_jobs(project)
    assert sorted(jobs) == sorted(
        ("video_src_dunes", f"Dunes variation number {i}") for i in range(VARIANTS)
    )
    frame = read_lineage(str(project / "data" / "output" / "t" / "lineage.parquet"))
    latest = frame.sort_values(["key", "attempt"]).groupby("key").tail(1)
    assert len(latest) == VARIANTS
    assert set(latest["state"]) == {"completed"}
