"""What the ledger holds: attempts, their media files and their history.

The attempt schema is declared here once. Each field of `Attempt` carries its column, and
`schema.attempts_table` is built from these fields, so the record, the table and the
values written for a new attempt cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa

from remix_pipeline.contract import ContentVariant

MEDIA_VARIANTS: tuple[str, ...] = tuple(v.value for v in ContentVariant)


class AttemptState(StrEnum):
    INTENT = "intent"
    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (AttemptState.COMPLETED, AttemptState.FAILED)


UNRESOLVED_STATES = (AttemptState.INTENT, AttemptState.UNKNOWN)


def _column(
    type_: Any, *, nullable: bool = False, carried: bool = False, **options: Any
) -> dict[str, Any]:
    """A field's column; `carried` fields come from the request row and stay on a retry."""
    return {"type": type_, "options": {"nullable": nullable, **options}, "carried": carried}


@dataclass(frozen=True)
class Attempt:
    """One try at one variant; retries are new attempts, so the lineage keeps them all."""

    key: str = field(metadata=_column(sa.String(200), carried=True))
    attempt: int = field(metadata=_column(sa.Integer))
    state: AttemptState = field(metadata=_column(sa.String(16)))
    source_video_id: str = field(metadata=_column(sa.String(200), carried=True))
    prompt: str = field(metadata=_column(sa.Text, carried=True))
    prompt_sha256: str = field(metadata=_column(sa.String(64), carried=True))
    variant: str = field(metadata=_column(sa.Text, carried=True))
    experiment: str = field(metadata=_column(sa.Text, carried=True))
    replicate: int = field(metadata=_column(sa.Integer, carried=True))
    table_hash: str = field(metadata=_column(sa.String(64), carried=True))
    row_number: int = field(metadata=_column(sa.Integer, carried=True))
    run_id: str | None = field(metadata=_column(sa.String(200), nullable=True))
    intent_at: float = field(metadata=_column(sa.Float))
    sent_at: float | None = field(metadata=_column(sa.Float, nullable=True))
    submitted_at: float | None = field(metadata=_column(sa.Float, nullable=True))
    finished_at: float | None = field(metadata=_column(sa.Float, nullable=True))
    video_id: str | None = field(metadata=_column(sa.String(200), nullable=True))
    # The latest Video record the server gave; JSON text in the table.
    video: dict[str, Any] | None = field(metadata=_column(sa.Text, nullable=True))
    error_code: str | None = field(metadata=_column(sa.String(200), nullable=True))
    error_message: str | None = field(metadata=_column(sa.Text, nullable=True))
    adopted: bool = field(metadata=_column(sa.Boolean, default=False))
    reported: bool = field(metadata=_column(sa.Boolean, default=False))
    # Where the POST went: a base URL without credentials, or "embedded".
    server: str | None = field(metadata=_column(sa.String(500), nullable=True))
    # Status answers in a row that broke the contract for this job, the latest of them, and
    # when the current run of them began.
    poll_violations: int = field(metadata=_column(sa.Integer, server_default="0"))
    violation: str | None = field(metadata=_column(sa.Text, nullable=True))
    violation_since: float | None = field(metadata=_column(sa.Float, nullable=True))
    # remix, edit, extend or create (request_table.OPERATIONS).
    operation: str = field(
        default="remix", metadata=_column(sa.String(16), carried=True, server_default="remix")
    )
    # Of the uploaded file an edit or extension derives from.
    source_sha256: str | None = field(
        default=None, metadata=_column(sa.String(64), nullable=True, carried=True)
    )

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal


ATTEMPT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Attempt))
# What a retry copies from the attempt before it: the request row, not the try.
CARRIED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Attempt) if f.metadata["carried"])


def attempt_columns() -> list[sa.Column[Any]]:
    """The attempt columns in field order, new each call (a Column joins one table only)."""
    return [sa.Column(f.name, f.metadata["type"], **f.metadata["options"]) for f in fields(Attempt)]


class RunningJob(NamedTuple):
    """What a poll needs of one in-flight attempt, read without the rest of the row or its
    parsed Video: a tick holds one of these for every job it watches (100,000 of them in
    the benchmark), so they are kept small, and made as tuples: 100,000 take 0.12 s to
    build, where frozen dataclasses took 0.29 s."""

    key: str
    attempt: int
    video_id: str
    since: float  # sent, or intended if never stamped sent: listing stops at older jobs
    status: str | None  # of the last Video record the server gave
    progress: int | None
    poll_violations: int


@dataclass(frozen=True)
class MediaRecord:
    """A downloaded file of one attempt's video, with the digest that proves what it held."""

    key: str
    attempt: int
    variant: str
    path: str
    sha256: str
    size_bytes: int
    derived: bool = False  # made here from the MP4: the server could not supply this variant


@dataclass(frozen=True)
class LedgerEvent:
    """One step of one attempt, in commit order: the attempt's history for audits."""

    event_id: int
    key: str
    attempt: int
    at: float
    from_state: AttemptState | None
    to_state: AttemptState
    detail: str | None
