"""A fresh database per test on the PostgreSQL server that scripts/postgres.sh starts.

scripts/test.sh exports REMIX_PIPELINE_TEST_POSTGRES_URL. Without it the tests skip with the
reason, except under CI, where a missing server is a failure rather than a silent gap.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ..needs import missing

URL_VARIABLE = "REMIX_PIPELINE_TEST_POSTGRES_URL"


def server_url() -> sa.URL:
    url = os.environ.get(URL_VARIABLE)
    if not url:
        missing(f"{URL_VARIABLE} is unset: start one with `bash scripts/postgres.sh`")
    return sa.engine.make_url(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of an empty database that is dropped after the test."""
    server = server_url()
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(
        server.set(drivername="postgresql+psycopg2", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
