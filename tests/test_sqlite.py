"""Switching a SQLite file to WAL while another process holds it."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from remix_pipeline.sqlite import enable_wal


def locked(path) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_wal_is_enabled_once_the_other_holder_lets_go(tmp_path):
    holder = locked(tmp_path / "fresh.db")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    opener = sqlite3.connect(tmp_path / "fresh.db", timeout=0.01)

    enable_wal(opener, timeout_seconds=10)

    assert opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_wal_gives_up_with_the_lock_error_once_its_time_is_spent(tmp_path):
    holder = locked(tmp_path / "fresh.db")
    opener = sqlite3.connect(tmp_path / "fresh.db", timeout=0.01)

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(opener, timeout_seconds=0.2)
    holder.execute("COMMIT")
