"""SQLite set-up shared by the ledger and the embedded service's job store."""

from __future__ import annotations

import sqlite3
import time


def enable_wal(cursor: sqlite3.Cursor | sqlite3.Connection, *, timeout_seconds: float) -> None:
    """Switch the database file to WAL, waiting for other processes that open it too.

    The switch needs a lock that SQLite does not wait for on the busy timeout, so processes
    opening a fresh file at once (a webserver, a daemon and a run) would otherwise fail with
    "database is locked".
    """
    deadline = time.monotonic() + timeout_seconds
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
