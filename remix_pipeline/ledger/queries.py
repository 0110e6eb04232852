"""Reading attempts: the row lookups every write and read builds on, and rows to records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from remix_pipeline.ledger.errors import UnknownAttemptError
from remix_pipeline.ledger.records import ATTEMPT_FIELDS, Attempt, AttemptState, LedgerEvent
from remix_pipeline.ledger.schema import attempts_table

CHUNK = 500  # keys per IN (...) list: well under every database's bound-parameter limit
_STATE, _VIDEO, _ADOPTED, _REPORTED = (
    ATTEMPT_FIELDS.index(name) for name in ("state", "video", "adopted", "reported")
)


def to_attempt(row: sa.Row[Any]) -> Attempt:
    """Positional, not by name: reading 100,000 attempts stays well under a second."""
    values = list(row)[1:]  # every attempts query selects the whole table, id first
    values[_STATE] = AttemptState(values[_STATE])
    if values[_VIDEO] is not None:
        values[_VIDEO] = json.loads(values[_VIDEO])
    values[_ADOPTED] = bool(values[_ADOPTED])
    values[_REPORTED] = bool(values[_REPORTED])
    return Attempt(*values)


def to_event(row: sa.Row[Any]) -> LedgerEvent:
    return LedgerEvent(
        event_id=row.id,
        key=row.key,
        attempt=row.attempt,
        at=row.at,
        from_state=None if row.from_state is None else AttemptState(row.from_state),
        to_state=AttemptState(row.to_state),
        detail=row.detail,
    )


def row(conn: Connection, key: str, attempt: int, *, lock: bool = False) -> sa.Row[Any]:
    """The attempt's row; with `lock`, locked for this transaction where the database
    supports it (PostgreSQL)."""
    query = sa.select(attempts_table).where(
        attempts_table.c.key == key, attempts_table.c.attempt == attempt
    )
    found = conn.execute(query.with_for_update() if lock else query).first()
    if found is None:
        raise UnknownAttemptError(f"no attempt {attempt} recorded for {key}")
    return found


def locked_rows(
    conn: Connection,
    pairs: Sequence[tuple[str, int]],
    columns: Sequence[sa.Column[Any]] = (),
) -> dict[tuple[str, int], sa.Row[Any]]:
    """Locked rows of many (key, attempt) pairs, a chunk of keys per query: only `columns`
    of them (and the key and attempt) when given, since a whole row carries its Video record.

    By key, not by (key, attempt) row values: SQLite scans the whole table for those.
    """
    wanted = set(pairs)
    keys = list(dict.fromkeys(key for key, _ in pairs))
    selected = (
        sa.select(attempts_table.c.key, attempts_table.c.attempt, *columns)
        if columns
        else sa.select(attempts_table)
    )
    found: dict[tuple[str, int], sa.Row[Any]] = {}
    for start in range(0, len(keys), CHUNK):
        rows = conn.execute(
            selected.where(attempts_table.c.key.in_(keys[start : start + CHUNK])).with_for_update()
        )
        found.update(((r.key, r.attempt), r) for r in rows if (r.key, r.attempt) in wanted)
    return found


def latest_row(conn: Connection, key: str) -> sa.Row[Any] | None:
    return conn.execute(
        sa.select(attempts_table)
        .where(attempts_table.c.key == key)
        .order_by(attempts_table.c.attempt.desc())
        .limit(1)
    ).first()


def by_key(*conditions: Any) -> sa.Select[Any]:
    """Attempts in (key, attempt) order: one scan of the unique index, no grouping."""
    return (
        sa.select(attempts_table)
        .where(*conditions)
        .order_by(attempts_table.c.key, attempts_table.c.attempt)
    )


def by_intent(*conditions: Any) -> sa.Select[Any]:
    """Attempts in the order their intents were written."""
    return (
        sa.select(attempts_table)
        .where(*conditions)
        .order_by(attempts_table.c.intent_at, attempts_table.c.id)
    )
