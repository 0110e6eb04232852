"""Workload 1b: `remix-pipeline run` with its Dagster storage (runs, events, schedules) on
PostgreSQL, against the tuned floor at the same N in the same run.

The server is the test PostgreSQL of `scripts/postgres.sh` (or $REMIX_BENCH_POSTGRES_URL);
each run gets a fresh database, dropped afterwards, so no earlier run's events are read.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from benchmarks import contenders
from benchmarks.floor_sweep import floor_sweep
from benchmarks.pipeline import run_pipeline
from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from benchmarks.served import ServedService, ServiceSettings
from benchmarks.variants import variants

URL_ENV = "REMIX_BENCH_POSTGRES_URL"
REPO = Path(__file__).resolve().parent.parent
DAGSTER_YAML = """\
# Written by benchmarks/postgres_storage.py: Dagster storage on PostgreSQL.
telemetry:
  enabled: false
run_monitoring:
  enabled: true
storage:
  postgres:
    postgres_url: "{url}"
"""


def server_url() -> str:
    """The PostgreSQL server's URL: from the environment, else started by scripts/postgres.sh."""
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    started = subprocess.run(
        ["bash", str(REPO / "scripts" / "postgres.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return started.stdout.strip().splitlines()[-1]


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of `url`; its URL; dropped on exit."""
    name = f"remix_bench_{int(time.time())}_{os.getpid()}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            # dagster-postgres's driver is psycopg2; SQLAlchemy 2.1 reads a bare
            # postgresql:// as psycopg 3, which is not installed.
            fresh = make_url(url).set(database=name, drivername="postgresql+psycopg2")
            yield fresh.render_as_string(hide_password=False)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def postgres_storage(plan: Plan, workdir: Path, report: Report) -> None:
    floor_sweep(plan, workdir, report)
    assert report.best_floor is not None
    n = plan.postgres_variants
    job_seconds = plan.job_durations[-1]
    settings = ServiceSettings(job_seconds=job_seconds)
    rows = variants(n, "postgres")
    base = workdir / "postgres"
    if n not in report.floor_seconds:
        with ServedService(settings, base / "floor" / "server") as service:
            outcome = contenders.floor(
                service.url, rows, base / "floor" / "client", setting=report.best_floor
            )
        report.floor_seconds[n] = outcome.seconds
    floor_seconds = report.floor_seconds[n]
    project = base / "pipeline" / "project"
    project.mkdir(parents=True, exist_ok=True)
    with (
        fresh_database(server_url()) as database,
        ServedService(settings, base / "pipeline" / "server") as service,
    ):
        outcome = run_pipeline(
            service.url, rows, project, dagster_yaml=DAGSTER_YAML.format(url=database)
        )
    report.add(
        Row(
            "1b",
            f"pipeline, Dagster storage on PostgreSQL, job {job_seconds:g} s",
            str(n),
            outcome.seconds,
            "s wall",
            ratio(outcome.seconds, floor_seconds, "tuned floor"),
            f"tuned floor at {n}: {floor_seconds:.1f} s ({report.best_floor.describe()}); "
            f"{outcome.completed} completed, {outcome.failed} failed of {n}; "
            f"{outcome.dagster_runs} Dagster runs",
        )
    )
    ok = outcome.seconds <= 1.3 * floor_seconds
    report.findings.append(
        f"PostgreSQL storage, {n} variants: pipeline / tuned floor = "
        f"{outcome.seconds / floor_seconds:.2f} (target at most 1.3: "
        f"{'met' if ok else 'NOT met'})"
    )
