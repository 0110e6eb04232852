"""What the service stores about a job or a character, and how their identifiers are made.

A job row holds only facts fixed at creation (the request, the clock reading and the outcome
decided by fault injection); everything that changes over time is derived by `lifecycle`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum


class JobKind(StrEnum):
    """How a job came to exist; catalogue sources are complete from the start and never expire."""

    CATALOGUE = "catalogue"
    CREATE = "create"
    REMIX = "remix"
    EDIT = "edit"
    EXTENSION = "extension"


@dataclass(frozen=True)
class Failure:
    """The error a job ends with (`Error-2` on the wire), decided when the job is created."""

    code: str
    message: str


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: JobKind
    model: str
    prompt: str
    size: str
    seconds: str
    created_at: float
    remixed_from_video_id: str | None
    failure: Failure | None
    motion_seed: int
    # The sha256 of an uploaded source video (an edit of footage, not of a stored video): the
    # only trace of the upload kept, since the bytes themselves are not stored.
    upload_sha256: str | None = None

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of the requested size, e.g. `1280x720` -> (1280, 720)."""
        width, _, height = self.size.partition("x")
        return int(width), int(height)


@dataclass(frozen=True)
class CharacterRecord:
    id: str
    name: str
    created_at: float


def new_video_id() -> str:
    """`video_` plus 32 lowercase hex digits: unguessable and safe in a URL path."""
    return "video_" + secrets.token_hex(16)


def new_character_id() -> str:
    return "char_" + secrets.token_hex(16)


def motion_seed_for(prompt: str) -> int:
    """A stable seed from a prompt, small enough for a signed 64-bit SQLite integer."""
    return motion_seed_from_digest(hashlib.sha256(prompt.encode("utf-8")).digest())


def motion_seed_from_digest(digest: bytes) -> int:
    """A stable seed from a sha256 digest (of a prompt, or of an uploaded file's bytes)."""
    return int.from_bytes(digest[:8], "big") >> 1
