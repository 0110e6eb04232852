"""One SQLAlchemy engine per ledger URL, set up for many writers.

SQLite (the default) gets WAL, a busy timeout and write transactions taken with BEGIN
IMMEDIATE, so concurrent writers queue instead of failing mid-transaction. PostgreSQL gets
the psycopg2 driver that dagster-postgres installs.

The lineage's bulk read opens the same files through another copy of SQLite; `file_guard`
keeps the two apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from remix_pipeline.ledger import file_guard
from remix_pipeline.ledger.errors import LedgerError
from remix_pipeline.ledger.schema import create_or_upgrade
from remix_pipeline.sqlite import enable_wal

SQLITE_BUSY_TIMEOUT_MS = 30_000
_READONLY = "remix_ledger_readonly"


def open_engine(url: str) -> Engine:
    """The engine of the ledger at `url`, its tables created or upgraded; errors never echo
    the URL's password."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise LedgerError("the ledger URL is not a valid SQLAlchemy URL") from None
    try:
        engine = build_engine(parsed)
        create_or_upgrade(engine)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise LedgerError(f"no database driver for {parsed.drivername!r}: {exc}") from None
    except sa.exc.OperationalError as exc:
        where = parsed.render_as_string(hide_password=True)
        raise LedgerError(f"cannot open the ledger at {where}: {exc.orig}") from None
    return engine


def build_engine(parsed: sa.URL) -> Engine:
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the driver installed with
        # dagster-postgres (which the Dagster storage uses too) is psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    engine = sa.create_engine(
        parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )
    # The file the engine opens; None for an in-memory database.
    file = parsed.database if parsed.database not in ("", ":memory:") else None
    if file is not None:
        file_guard.watch(engine, file)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if file is not None:
            enable_wal(cursor, timeout_seconds=SQLITE_BUSY_TIMEOUT_MS / 1000)
        # FULL: an intent must survive a power cut, not only a process crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front, so two writers queue on the
        # busy timeout instead of one failing when it upgrades a read lock.
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(**{_READONLY: True}) as conn, conn.begin():
        yield conn
