"""A fresh database per test on the PostgreSQL server that scripts/postgres.sh starts.

scripts/test.sh exports REMIX_PIPELINE_TEST_POSTGRES_URL. Without it the tests skip with the
reason, except under CI, where a missing server is a failure rather than a silent gap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.support.postgres import server_url


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
