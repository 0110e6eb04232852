"""The SQLite job store shared by every process that serves one embedded service.

WAL lets readers proceed while one process writes; `busy_timeout` makes concurrent writers
wait instead of failing, so several processes on one file lose nothing. Each thread keeps its
own connection (sqlite3 connections must not be shared across threads). List order is the
insertion sequence (`seq`), which SQLite's AUTOINCREMENT keeps monotonic across processes.

Columns added after a database was first made are migrated on open (`_MIGRATIONS`): an
`ALTER TABLE ... ADD COLUMN` of a nullable column, run in a write transaction that checks
again, so several processes opening one old file at once add it exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from remix_pipeline.contract import Order
from remix_pipeline.service.records import CharacterRecord, Failure, JobKind, JobRecord
from remix_pipeline.sqlite import enable_wal

BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    size TEXT NOT NULL,
    seconds TEXT NOT NULL,
    created_at REAL NOT NULL,
    remixed_from_video_id TEXT,
    failure_code TEXT,
    failure_message TEXT,
    motion_seed INTEGER NOT NULL,
    upload_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS characters (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seeded_sources (
    id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS deleted_videos (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""

_VIDEO_COLUMNS = (
    "id, kind, model, prompt, size, seconds, created_at, remixed_from_video_id, "
    "failure_code, failure_message, motion_seed, upload_sha256"
)
_VIDEO_PLACEHOLDERS = ", ".join("?" * len(_VIDEO_COLUMNS.split(",")))

# (table, column, declaration) added to databases made before the column existed.
_MIGRATIONS = (("videos", "upload_sha256", "TEXT"),)


class UnknownCursorError(LookupError):
    """`after` names a video this store does not hold."""


class JobStore:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._local = threading.local()
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._connection().executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        for table, column, declaration in _MIGRATIONS:
            if column in self._columns(table):
                continue
            with self._transaction() as conn:
                if column not in self._columns(table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def _columns(self, table: str) -> set[str]:
        rows = self._connection().execute(f"PRAGMA table_info({table})").fetchall()
        return {str(row[1]) for row in rows}

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            enable_wal(conn, timeout_seconds=BUSY_TIMEOUT_MS / 1000)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the write lock up front, so it never deadlocks."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def insert_video(self, job: JobRecord) -> None:
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO videos ({_VIDEO_COLUMNS}) VALUES ({_VIDEO_PLACEHOLDERS})",
                _video_row(job),
            )

    def seed_sources(self, jobs: Iterable[JobRecord]) -> int:
        """Insert each source once ever: a deleted source stays deleted after a restart."""
        inserted = 0
        with self._transaction() as conn:
            for job in jobs:
                fresh = conn.execute(
                    "INSERT OR IGNORE INTO seeded_sources (id) VALUES (?)", (job.id,)
                ).rowcount
                if fresh:
                    conn.execute(
                        f"INSERT OR IGNORE INTO videos ({_VIDEO_COLUMNS}) "
                        f"VALUES ({_VIDEO_PLACEHOLDERS})",
                        _video_row(job),
                    )
                    inserted += 1
        return inserted

    def restore_video(self, job: JobRecord) -> JobRecord:
        """Put `job` back if its id is absent (deleted or never there); the stored row wins.

        A restored video is no longer a deleted one, so its cursor is its new row's place.
        """
        with self._transaction() as conn:
            conn.execute(
                f"INSERT OR IGNORE INTO videos ({_VIDEO_COLUMNS}) VALUES ({_VIDEO_PLACEHOLDERS})",
                _video_row(job),
            )
            conn.execute("DELETE FROM deleted_videos WHERE id = ?", (job.id,))
            row = conn.execute(
                f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE id = ?", (job.id,)
            ).fetchone()
        return _video_from_row(row)

    def get_video(self, video_id: str) -> JobRecord | None:
        row = (
            self._connection()
            .execute(f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE id = ?", (video_id,))
            .fetchone()
        )
        return None if row is None else _video_from_row(row)

    def list_videos(
        self, *, limit: int, order: Order, after: str | None = None
    ) -> tuple[list[JobRecord], bool]:
        """One page in creation order and whether more follow; raises UnknownCursorError."""
        descending = order is Order.DESC
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            where, params = "", ()
            if after is not None:
                # A video deleted while a client pages past it still marks its place.
                row = conn.execute(
                    "SELECT seq FROM videos WHERE id = ? "
                    "UNION ALL SELECT seq FROM deleted_videos WHERE id = ?",
                    (after, after),
                ).fetchone()
                if row is None:
                    raise UnknownCursorError(after)
                where, params = ("WHERE seq < ?" if descending else "WHERE seq > ?"), (row[0],)
            direction = "DESC" if descending else "ASC"
            rows = conn.execute(
                f"SELECT {_VIDEO_COLUMNS} FROM videos {where} ORDER BY seq {direction} LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return [_video_from_row(r) for r in rows[:limit]], len(rows) > limit

    def delete_video(self, video_id: str) -> bool:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO deleted_videos (id, seq) "
                "SELECT id, seq FROM videos WHERE id = ?",
                (video_id,),
            )
            return conn.execute("DELETE FROM videos WHERE id = ?", (video_id,)).rowcount > 0

    def count_videos(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM videos").fetchone()[0])

    def insert_character(self, character: CharacterRecord) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO characters (id, name, created_at) VALUES (?, ?, ?)",
                (character.id, character.name, character.created_at),
            )

    def restore_character(self, character: CharacterRecord) -> None:
        """Insert `character` unless its id is already stored."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO characters (id, name, created_at) VALUES (?, ?, ?)",
                (character.id, character.name, character.created_at),
            )

    def get_character(self, character_id: str) -> CharacterRecord | None:
        row = (
            self._connection()
            .execute("SELECT id, name, created_at FROM characters WHERE id = ?", (character_id,))
            .fetchone()
        )
        return None if row is None else CharacterRecord(id=row[0], name=row[1], created_at=row[2])


def _video_row(job: JobRecord) -> tuple[object, ...]:
    return (
        job.id,
        job.kind.value,
        job.model,
        job.prompt,
        job.size,
        job.seconds,
        job.created_at,
        job.remixed_from_video_id,
        job.failure.code if job.failure else None,
        job.failure.message if job.failure else None,
        job.motion_seed,
        job.upload_sha256,
    )


def _video_from_row(row: tuple[object, ...]) -> JobRecord:
    (vid, kind, model, prompt, size, seconds, created, source, code, message, seed, upload) = row
    return JobRecord(
        id=str(vid),
        kind=JobKind(kind),
        model=str(model),
        prompt=str(prompt),
        size=str(size),
        seconds=str(seconds),
        created_at=float(created),  # type: ignore[arg-type]
        remixed_from_video_id=None if source is None else str(source),
        failure=None if code is None else Failure(code=str(code), message=str(message)),
        motion_seed=int(seed),  # type: ignore[call-overload]
        upload_sha256=None if upload is None else str(upload),
    )
