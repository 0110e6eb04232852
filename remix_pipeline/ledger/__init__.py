"""The durable submission ledger: what was asked for, sent and claimed, across every process.

- `records`: the attempt schema (declared once), media files, history events;
- `schema`: the tables built from it, and the upgrade of an older ledger;
- `engine`: one engine per URL, SQLite set up for many writers, PostgreSQL for a cluster;
- `transitions`: the table of legal moves, and the writes of each;
- `queries`: row lookups; `frames`: the whole ledger as a pandas frame;
- `store`: `Ledger`, the one object the rest of the pipeline holds.
"""

from remix_pipeline.ledger.errors import (
    InvalidTransitionError,
    LedgerError,
    UnknownAttemptError,
    VideoAlreadyClaimedError,
)
from remix_pipeline.ledger.records import (
    MEDIA_VARIANTS,
    UNRESOLVED_STATES,
    Attempt,
    AttemptState,
    LedgerEvent,
    MediaRecord,
    RunningJob,
)
from remix_pipeline.ledger.store import Ledger

__all__ = [
    "MEDIA_VARIANTS",
    "UNRESOLVED_STATES",
    "Attempt",
    "AttemptState",
    "InvalidTransitionError",
    "Ledger",
    "LedgerError",
    "LedgerEvent",
    "MediaRecord",
    "RunningJob",
    "UnknownAttemptError",
    "VideoAlreadyClaimedError",
]
