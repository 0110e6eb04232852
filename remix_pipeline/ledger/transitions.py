"""How an attempt moves between states: one table of legal moves, and the writes of each.

Exactly-once submission rests on these moves (DESIGN section 6). An intent is committed
before the paid POST, so a crash between the two leaves an INTENT or UNKNOWN attempt that
must be resolved (by finding the orphan job on the server) before anything is resent; only
an unresolved attempt can be given a video, and a video can be given to one attempt only.
Every move also appends to `events`, the attempt's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from remix_pipeline.contract import Video, VideoStatus
from remix_pipeline.ledger import queries
from remix_pipeline.ledger.errors import (
    InvalidTransitionError,
    LedgerError,
    VideoAlreadyClaimedError,
)
from remix_pipeline.ledger.records import (
    CARRIED_FIELDS,
    UNRESOLVED_STATES,
    Attempt,
    AttemptState,
)
from remix_pipeline.ledger.schema import attempts_table, events_table
from remix_pipeline.request_table import VariantRequest


class Step(StrEnum):
    """A move of one attempt; the value completes "it cannot be ..." in a refusal."""

    SEND = "sent"
    MARK_UNKNOWN = "marked unknown"
    CLAIM = "given video"
    FINISH = "finished"
    FAIL = "failed"
    RETRY = "tried again"


# From which states each step may start.
LEGAL_MOVES: Mapping[Step, frozenset[AttemptState]] = {
    Step.SEND: frozenset(UNRESOLVED_STATES),
    Step.MARK_UNKNOWN: frozenset(UNRESOLVED_STATES),
    Step.CLAIM: frozenset(UNRESOLVED_STATES),
    Step.FINISH: frozenset({AttemptState.SUBMITTED}),
    Step.FAIL: frozenset({*UNRESOLVED_STATES, AttemptState.SUBMITTED}),
    Step.RETRY: frozenset({AttemptState.COMPLETED, AttemptState.FAILED}),
}
NO_VIOLATION: dict[str, Any] = {"poll_violations": 0, "violation": None, "violation_since": None}


def require(row: sa.Row[Any], step: Step, detail: str = "") -> AttemptState:
    """The row's state, when `step` may start from it; else the refusal naming both."""
    state = AttemptState(row.state)
    if state not in LEGAL_MOVES[step]:
        if step is Step.RETRY:
            reason = "only an ended attempt can be tried again"
        else:
            reason = f"it cannot be {step.value}{detail}"
        raise InvalidTransitionError(f"{row.key} attempt {row.attempt} is {row.state}; {reason}")
    return state


def update(conn: Connection, key: str, attempt: int, **values: Any) -> None:
    conn.execute(
        attempts_table.update()
        .where(attempts_table.c.key == key, attempts_table.c.attempt == attempt)
        .values(**values)
    )


def event_values(
    key: str,
    attempt: int,
    at: float,
    from_state: AttemptState | None,
    to_state: AttemptState,
    detail: str | None,
) -> dict[str, Any]:
    return {
        "key": key,
        "attempt": attempt,
        "at": at,
        "from_state": None if from_state is None else from_state.value,
        "to_state": to_state.value,
        "detail": detail,
    }


def record_event(conn: Connection, values: dict[str, Any]) -> None:
    """Append one step (`event_values`) to the attempt's history."""
    conn.execute(events_table.insert().values(**values))


def run_detail(run_id: str | None) -> str | None:
    return None if run_id is None else f"run {run_id}"


def intent_values(
    request: VariantRequest,
    *,
    table_hash: str,
    run_id: str | None,
    now: float,
    server: str | None,
) -> dict[str, Any]:
    """The row of attempt 1 of a request."""
    carried = {name: getattr(request, name) for name in CARRIED_FIELDS if name != "table_hash"}
    return new_attempt(
        {**carried, "table_hash": table_hash}, 1, run_id=run_id, now=now, server=server
    )


def new_attempt(
    carried: Mapping[str, Any], number: int, *, run_id: str | None, now: float, server: str | None
) -> dict[str, Any]:
    """The row of a new attempt in INTENT: the request's fields and the try's own."""
    return {
        **{name: carried[name] for name in CARRIED_FIELDS},
        "attempt": number,
        "state": AttemptState.INTENT.value,
        "run_id": run_id,
        "intent_at": now,
        "adopted": False,
        "reported": False,
        "server": server,
        "poll_violations": 0,
    }


def video_json(video: Video) -> str:
    """The stored form of a Video record: its wire form (`dump_video`), compact, in field
    order. Encoded by pydantic in one pass: 4.4 times faster than dumping to a dict and then
    to text, and a tick may store 100,000 of them."""
    return video.model_dump_json()


def claim(
    conn: Connection, key: str, attempt: int, video: Video, now: float, *, adopted: bool
) -> Attempt:
    """Give `video` to the attempt; every refusal is raised before anything is written."""
    row = queries.row(conn, key, attempt, lock=True)
    if row.video_id == video.id:
        return queries.to_attempt(row)
    state = require(row, Step.CLAIM, f" {video.id}")
    owner = conn.execute(
        sa.select(attempts_table.c.key, attempts_table.c.attempt).where(
            attempts_table.c.video_id == video.id
        )
    ).first()
    if owner is not None:
        raise VideoAlreadyClaimedError(video.id, owner.key, owner.attempt)
    update(
        conn,
        key,
        attempt,
        state=AttemptState.SUBMITTED.value,
        video_id=video.id,
        video=video_json(video),
        submitted_at=now,
        adopted=adopted,
    )
    how = "adopted orphan" if adopted else "submitted"
    record_event(
        conn, event_values(key, attempt, now, state, AttemptState.SUBMITTED, f"{how} {video.id}")
    )
    if video.is_terminal:
        finish(conn, key, attempt, video, now)
    return queries.to_attempt(queries.row(conn, key, attempt))


def claim_or_error(
    conn: Connection, key: str, attempt: int, video: Video, now: float
) -> Attempt | LedgerError:
    try:
        return claim(conn, key, attempt, video, now, adopted=False)
    except LedgerError as exc:
        return exc


def finish(conn: Connection, key: str, attempt: int, video: Video, now: float) -> None:
    """End a submitted attempt with its terminal video."""
    if video.status is VideoStatus.COMPLETED:
        update(conn, key, attempt, state=AttemptState.COMPLETED.value, finished_at=now)
        record_event(
            conn,
            event_values(
                key, attempt, now, AttemptState.SUBMITTED, AttemptState.COMPLETED, video.id
            ),
        )
        return
    code = video.error.code if video.error else "failed"
    message = video.error.message if video.error else "the video failed without an error"
    fail(conn, key, attempt, AttemptState.SUBMITTED, code=code, message=message, now=now)


def fail(
    conn: Connection,
    key: str,
    attempt: int,
    state: AttemptState,
    *,
    code: str,
    message: str,
    now: float,
) -> None:
    update(
        conn,
        key,
        attempt,
        state=AttemptState.FAILED.value,
        error_code=code,
        error_message=message,
        finished_at=now,
    )
    record_event(
        conn, event_values(key, attempt, now, state, AttemptState.FAILED, f"{code}: {message}")
    )
