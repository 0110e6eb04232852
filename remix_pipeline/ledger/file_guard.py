"""This process's connections to each SQLite ledger file, kept apart from a bulk read.

The lineage's bulk read (`frames`) goes through ADBC, whose SQLite driver links a copy of
SQLite of its own (3.53.1, where Python's `sqlite3` uses the system's). POSIX locks belong
to the process, so neither copy sees the other's connections to a file. Closing its last
connection, ADBC's copy took itself for the file's last user, checkpointed and deleted the
write-ahead log under the engine's pooled connections: their next writes went to the deleted
log, and a new connection failed with "disk I/O error". And closing any connection drops
every lock the process holds on the file, after which another process took the
shared-memory index for unused and reset it under ours (a bus error, or a malformed file, in
a test with a second process writing).

So the bulk reader opens the file read-only (it then never checkpoints nor deletes the log),
and `bulk_read` keeps every connection of this process's engines off the file while it
reads: it waits for the ones in use to come back, closes them, and a connection wanted
meanwhile waits for the read to end.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from remix_pipeline.ledger.errors import LedgerError

# How long a bulk read waits for connections in use on other threads to come back.
IN_USE_WAIT_SECONDS = 30.0

_changed = threading.Condition()
_files: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_in_use: Counter[str] = Counter()  # connections checked out, by file
_readers: defaultdict[str, set[int]] = defaultdict(set)  # threads reading each file in bulk


def watch(engine: Engine, database: str) -> None:
    """Count `engine`'s connections in use on the file `database`, and hold back new ones
    while the file is read in bulk. Registered before the engine's own connect listeners,
    so a connection waits before it touches the file."""
    file = os.path.realpath(database)
    with _changed:
        _files[engine] = file

    def wait_for_readers(*_: Any) -> None:
        with _changed:
            _changed.wait_for(lambda: _may_use(file))

    def checked_out(*_: Any) -> None:
        with _changed:
            _changed.wait_for(lambda: _may_use(file))
            _in_use[file] += 1

    def checked_in(*_: Any) -> None:
        with _changed:
            _in_use[file] -= 1
            _changed.notify_all()

    sa.event.listen(engine, "connect", wait_for_readers, insert=True)
    sa.event.listen(engine, "checkout", checked_out, insert=True)
    sa.event.listen(engine, "checkin", checked_in)


def _may_use(file: str) -> bool:
    """No bulk read of `file` is under way, but perhaps the calling thread's own."""
    readers = _readers.get(file)
    return not readers or threading.get_ident() in readers


@contextmanager
def bulk_read(engine: Engine) -> Iterator[None]:
    """For the length of the block, no connection of this process's engines is open on the
    file of `engine` (a watched SQLite engine; for any other, nothing to do). A connection
    still in use on another thread after IN_USE_WAIT_SECONDS fails the read with a
    `LedgerError` rather than share the file."""
    file = _files.get(engine)
    if file is None:
        yield
        return
    me = threading.get_ident()
    with _changed:
        _readers[file].add(me)
        if not _changed.wait_for(lambda: _in_use[file] == 0, IN_USE_WAIT_SECONDS):
            _end_read(file, me)
            raise LedgerError(
                f"the ledger {os.path.basename(file)} stayed in use on another thread for "
                f"{IN_USE_WAIT_SECONDS:.0f} s; its lineage was not read"
            )
        engines = [other for other, opened in _files.items() if opened == file]
    for other in engines:
        other.dispose()
    try:
        yield
    finally:
        with _changed:
            _end_read(file, me)


def _end_read(file: str, reader: int) -> None:
    _readers[file].discard(reader)
    if not _readers[file]:
        del _readers[file]
    _changed.notify_all()
