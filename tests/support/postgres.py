"""The PostgreSQL server scripts/postgres.sh starts, for tests that put the ledger and
Dagster's storage on it (scripts/test.sh exports its URL)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from .needs import missing

URL_VARIABLE = "REMIX_PIPELINE_TEST_POSTGRES_URL"


def server_url() -> sa.URL:
    """The server's URL; without one the test skips, or fails under CI."""
    url = os.environ.get(URL_VARIABLE)
    if not url:
        missing(f"{URL_VARIABLE} is unset: start one with `bash scripts/postgres.sh`")
    return sa.engine.make_url(url)


def postgres_instance(home: Path, url: str) -> dg.DagsterInstance:
    """A Dagster instance at `home` whose storage is the database at `url`."""
    # dagster-postgres's driver is psycopg2; SQLAlchemy 2.1 reads bare postgresql as psycopg 3.
    storage_url = url.replace("postgresql:", "postgresql+psycopg2:", 1)
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {storage_url}\n"
        "concurrency:\n  pools:\n    default_limit: 1\n"
        "telemetry:\n  enabled: false\n"
    )
    return dg.DagsterInstance.from_config(str(home))
