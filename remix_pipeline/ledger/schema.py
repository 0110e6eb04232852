"""The ledger's tables, and the upgrade of a ledger written by an older version.

Only portable types and constraints, so the same tables work on SQLite and on a shared
PostgreSQL. The attempt columns come from `records.Attempt`.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from remix_pipeline.ledger.records import attempt_columns

metadata = sa.MetaData()

# Each server job is claimed by at most one attempt: `video_id` is UNIQUE, so two processes
# adopting the same orphan cannot both win. The lineage is read in table order, which the
# database walks on `ix_attempts_table_order` rather than sorting every attempt: 1.4 s to
# 0.95 s for 100,000 attempts on SQLite.
attempts_table = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *attempt_columns(),
    sa.UniqueConstraint("key", "attempt", name="uq_attempts_key_attempt"),
    sa.UniqueConstraint("video_id", name="uq_attempts_video_id"),
    sa.Index("ix_attempts_state", "state"),
    sa.Index("ix_attempts_table_order", "row_number", "key", "attempt"),
)

media_table = sa.Table(
    "media",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("variant", sa.String(32), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("derived", sa.Boolean, nullable=False, server_default=sa.false()),
)

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    # `history` reads the events of the attempts a tick reports, 500 keys at a time: without
    # it, each slice scanned every event of the experiment.
    sa.Index("ix_events_key", "key", "attempt"),
)

ATTEMPT_COLUMNS = [c for c in attempts_table.columns if c.name != "id"]


def stored_video(backend: str) -> sa.ColumnElement[Any]:
    """The attempts' Video record as JSON that SQL can index (`stored_video(b)["status"]`),
    so a read can take a few fields without parsing the record in Python. SQLite's JSON
    functions read the text as it is; PostgreSQL needs it cast."""
    video = attempts_table.c.video
    return sa.type_coerce(video, sa.JSON) if backend == "sqlite" else sa.cast(video, sa.JSON)


def create_or_upgrade(engine: Engine) -> None:
    """Create the tables, and add to an older ledger the columns and indexes added since
    (`create_all` makes an index only with its table). Each added column has a default or is
    nullable. Two processes opening an old ledger at once may race to add the same one: the
    loser finds it there and carries on."""
    metadata.create_all(engine)
    for table in metadata.sorted_tables:
        for kind, name, ddl in _missing(engine, table):
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(ddl)
            except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                if name not in _names(engine, table.name, kind):
                    raise


Kind = Literal["columns", "indexes"]


def _missing(engine: Engine, table: sa.Table) -> list[tuple[Kind, str, str]]:
    """What `table` lacks in the database, as (kind, name, DDL): columns first, since an
    index may be on a new column."""
    dialect = engine.dialect
    columns, indexes = _names(engine, table.name, "columns"), _names(engine, table.name, "indexes")
    missing: list[tuple[Kind, str, str]] = [
        (
            "columns",
            column.name,
            f"ALTER TABLE {table.name} ADD COLUMN "
            f"{sa.schema.CreateColumn(column).compile(dialect=dialect)}",
        )
        for column in table.columns
        if column.name not in columns
    ]
    missing += [
        ("indexes", str(index.name), str(sa.schema.CreateIndex(index).compile(dialect=dialect)))
        for index in table.indexes
        if index.name not in indexes
    ]
    return missing


def _names(engine: Engine, table: str, kind: Kind) -> set[str | None]:
    inspector = sa.inspect(engine)
    found = inspector.get_columns(table) if kind == "columns" else inspector.get_indexes(table)
    return {item["name"] for item in found}
