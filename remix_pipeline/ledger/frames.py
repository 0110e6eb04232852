"""The ledger in bulk, as Arrow columns: what the lineage table is built from.

One SQL query joins every attempt to its three media files and pulls the Video record's
fields out of its JSON in the database, on one connection per core for a large ledger,
each reading a slice of row numbers. ADBC hands its result over as Arrow columns, with no
Python object per attempt: 100,000 attempts in 0.6 s on two cores, and 1,000,000 in under
9 s and 1.7 GiB (benchmarks/RESULTS.md, workloads 5 and 5b).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from remix_pipeline.ledger.engine import SQLITE_BUSY_TIMEOUT_MS
from remix_pipeline.ledger.records import MEDIA_VARIANTS
from remix_pipeline.ledger.schema import attempts_table, media_table, stored_video

TIMESTAMP = pa.timestamp("ns", tz="UTC")
# The read runs a slice of the table per core: SQLite and libpq execute it in C, without the
# GIL. 100,000 attempts on two cores: 1.1 s as one read, 0.58 s as two.
ATTEMPTS_PER_READER = 20_000
READERS = min(4, os.cpu_count() or 1)

# The bulk read's columns: from the attempt, from its Video record, from each media file.
ATTEMPT_FIELDS: dict[str, pa.DataType] = {
    "key": pa.string(),
    "attempt": pa.int64(),
    "state": pa.string(),
    "source_video_id": pa.string(),
    "variant": pa.string(),
    "experiment": pa.string(),
    "replicate": pa.int64(),
    "prompt": pa.string(),
    "prompt_sha256": pa.string(),
    "table_hash": pa.string(),
    "row_number": pa.int64(),
    "run_id": pa.string(),
    "submitted_at": pa.float64(),
    "adopted": pa.bool_(),
    "server": pa.string(),
    "operation": pa.string(),
    "source_sha256": pa.string(),
    "video_id": pa.string(),
}
VIDEO_FIELDS: dict[str, pa.DataType] = {
    "model": pa.string(),
    "status": pa.string(),
    "progress": pa.int64(),
    "created_at": pa.float64(),
    "completed_at": pa.float64(),
    "expires_at": pa.float64(),
    "size": pa.string(),
    "seconds": pa.string(),
    "remixed_from_video_id": pa.string(),
}
MEDIA_FIELDS: dict[str, pa.DataType] = {
    "path": pa.string(),
    "sha256": pa.string(),
    "bytes": pa.int64(),
    "derived": pa.bool_(),
}


def lineage_columns(url: sa.URL, experiment: str | None = None) -> pa.Table:
    """Every attempt (of `experiment`, when given) in table order, with its Video record's
    fields and its media as wide columns (`<variant>_path`, `_sha256`, `_bytes`,
    `_derived`). The ledger's error wins over the Video's: it also covers failures that
    never produced a video."""
    backend = url.get_backend_name()
    query, schema = _lineage_query(backend)
    count, row_numbers = _row_number_ranges(url)
    with ThreadPoolExecutor(len(row_numbers)) as pool:
        tables = list(pool.map(lambda bounds: _read(url, query, count, *bounds), row_numbers))
    # Each slice infers its own types (a column may be all null in one), so each is cast.
    table = pa.concat_tables([part.cast(schema) for part in tables])
    if experiment is not None:
        table = table.filter(pc.equal(table["experiment"], experiment))
    return table


def _row_number_ranges(url: sa.URL) -> tuple[int, list[tuple[int, int]]]:
    """The number of attempts, and consecutive row-number ranges, one for each slice to read
    at once: one for a small ledger, where another connection costs more than it saves."""
    attempts = attempts_table
    query = sa.select(
        sa.func.count(), sa.func.min(attempts.c.row_number), sa.func.max(attempts.c.row_number)
    )
    with _connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(_sql(url, query))
        count, low, high = cursor.fetchone()
    if not count:
        return 0, [(0, 0)]
    readers = min(READERS, max(1, count // ATTEMPTS_PER_READER))
    step = -(-(high - low + 1) // readers)
    return count, [(start, start + step - 1) for start in range(low, high + 1, step)]


def _read(url: sa.URL, query: sa.Select[Any], count: int, first: int, last: int) -> pa.Table:
    """The attempts whose row number is within `first`..`last`, as ADBC reads them; there
    were `count` attempts in all when the read began."""
    row_number = attempts_table.c.row_number
    sliced = query.where(row_number >= first, row_number <= last)
    with _connect(url) as conn, conn.cursor() as cursor:
        if url.get_backend_name() == "sqlite":
            # Infer each column's type from every row, not the first 1,024: an error column
            # may be null for a long while before its first text. The driver reserves room
            # for that many rows in every column: asked for 2**30 it held 500 GiB of address
            # space, and the process could no longer fork. The margin is for attempts
            # recorded since `count` was taken.
            batch = str(count + ATTEMPTS_PER_READER)
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": batch})
        cursor.execute(_sql(url, sliced))
        return cursor.fetch_arrow_table()


def _sql(url: sa.URL, query: sa.Select[Any]) -> str:
    # Only the project's own constants are bound (media variants, JSON paths, row numbers).
    return str(query.compile(dialect=url.get_dialect()(), compile_kwargs={"literal_binds": True}))


def _connect(url: sa.URL) -> Any:
    """An ADBC connection to the ledger's database, for one bulk read."""
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi

        # Read-only, so that closing it never checkpoints the file or deletes its log: the
        # driver's own copy of SQLite cannot see this process's other connections to the
        # file (`file_guard`).
        path = quote(os.path.abspath(url.database or ""))
        conn = adbc_driver_sqlite.dbapi.connect(f"file:{path}?mode=ro")
        # Readers that open at once sometimes find the file locked for a moment, even in WAL
        # with no writer (12 of 40 tries by hand); the driver sets no busy timeout, so without
        # one the read fails at once with "database is locked" instead of waiting.
        with conn.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        return conn
    import adbc_driver_postgresql.dbapi

    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return adbc_driver_postgresql.dbapi.connect(libpq)


def _lineage_query(backend: str) -> tuple[sa.Select[Any], pa.Schema]:
    attempts = attempts_table
    video = stored_video(backend)
    columns: list[Any] = [attempts.c[name] for name in ATTEMPT_FIELDS]
    extract = {
        pa.string(): lambda path: video[path].as_string(),
        pa.int64(): lambda path: video[path].as_integer(),
        pa.float64(): lambda path: video[path].as_float(),
    }
    columns += [extract[kind](name).label(name) for name, kind in VIDEO_FIELDS.items()]
    columns += [
        sa.func.coalesce(attempts.c.error_code, video[("error", "code")].as_string()).label(
            "error_code"
        ),
        sa.func.coalesce(attempts.c.error_message, video[("error", "message")].as_string()).label(
            "error_message"
        ),
    ]
    joined: Any = attempts
    for variant in MEDIA_VARIANTS:
        media = media_table.alias(f"media_{variant}")
        joined = joined.outerjoin(
            media,
            sa.and_(
                media.c.key == attempts.c.key,
                media.c.attempt == attempts.c.attempt,
                media.c.variant == variant,
            ),
        )
        columns += [
            media.c.path.label(f"{variant}_path"),
            media.c.sha256.label(f"{variant}_sha256"),
            media.c.size_bytes.label(f"{variant}_bytes"),
            media.c.derived.label(f"{variant}_derived"),
        ]
    query = (
        sa.select(*columns)
        .select_from(joined)
        .order_by(attempts.c.row_number, attempts.c.key, attempts.c.attempt)
    )
    fields = {
        **ATTEMPT_FIELDS,
        **VIDEO_FIELDS,
        "error_code": pa.string(),
        "error_message": pa.string(),
        **{
            f"{variant}_{name}": kind
            for variant in MEDIA_VARIANTS
            for name, kind in MEDIA_FIELDS.items()
        },
    }
    return query, pa.schema(list(fields.items()))
