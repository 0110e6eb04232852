"""The ledger's refusals: each names what the ledger already holds."""

from __future__ import annotations


class LedgerError(Exception):
    """A ledger call that contradicts what the ledger already holds."""


class UnknownAttemptError(LedgerError, KeyError):
    """No such (key, attempt) in the ledger."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown attempt"


class InvalidTransitionError(LedgerError):
    """The attempt is in a state from which this step is not allowed."""


class VideoAlreadyClaimedError(LedgerError):
    """That server job already belongs to another attempt: it must not be paid for twice."""

    def __init__(self, video_id: str, key: str | None = None, attempt: int | None = None) -> None:
        self.video_id = video_id
        self.owner = (key, attempt)
        owner = f" by {key} attempt {attempt}" if key is not None else ""
        super().__init__(f"video {video_id} is already claimed{owner}")
