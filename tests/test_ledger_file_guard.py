"""`ledger.file_guard`: this process's connections to a ledger file stay off it while the
file is read in bulk through ADBC's own copy of SQLite. Real engines on real files; the
threads stand for a Dagster step and whatever else holds the ledger in the same process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from remix_pipeline.ledger import LedgerError, file_guard
from remix_pipeline.ledger.engine import open_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    opened = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.dispose()


def hold_connection(engine: sa.Engine, release: threading.Event) -> threading.Thread:
    """A thread that checks a connection out, says so, and gives it back on `release`."""
    holding = threading.Event()

    def hold() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").fetchall()
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    return thread


def test_a_bulk_read_starts_only_once_a_connection_in_use_elsewhere_is_back(
    engine: sa.Engine,
) -> None:
    release = threading.Event()
    thread = hold_connection(engine, release)
    threading.Timer(0.2, release.set).start()

    with file_guard.bulk_read(engine):
        released_before_the_read = release.is_set()  # the connection goes back after it
    thread.join()

    assert released_before_the_read


def test_a_connection_wanted_during_a_bulk_read_opens_after_it(engine: sa.Engine) -> None:
    read_over = threading.Event()
    opened_after: list[bool] = []

    def connect() -> None:
        with engine.connect() as conn:
            opened_after.append(read_over.is_set())
            conn.exec_driver_sql("SELECT 1").fetchall()

    with file_guard.bulk_read(engine):
        thread = threading.Thread(target=connect)
        thread.start()
        thread.join(0.2)
        read_over.set()
    thread.join(10)

    assert opened_after == [True]


def test_a_connection_still_in_use_after_the_wait_fails_the_read_with_a_clear_error(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_guard, "IN_USE_WAIT_SECONDS", 0.2)
    release = threading.Event()
    thread = hold_connection(engine, release)
    try:
        with (
            pytest.raises(LedgerError, match="in use on another thread"),
            file_guard.bulk_read(engine),
        ):
            pass
    finally:
        release.set()
        thread.join()
    with engine.connect() as conn:  # and the file is usable again at once
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_the_reading_thread_may_still_connect_during_its_own_read(engine: sa.Engine) -> None:
    with file_guard.bulk_read(engine), engine.connect() as conn:  # rather than wait on itself
        answer = conn.exec_driver_sql("SELECT 1").scalar()

    assert answer == 1
