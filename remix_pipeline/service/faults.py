"""Reproducible fault injection for one service instance.

Each fault kind draws from its own `random.Random`, seeded with the string
`"<seed>:<kind>"` (string seeds are hashed with SHA-512, so the stream is the same on every
machine and Python run), and draws exactly once per eligible event, in the order the
instance sees them:

- `error`: one draw per `/v1` request that passed auth and the rate limit; below
  `error_rate` it is answered 500, 502 or 503 (a second draw from the same stream picks
  which). So the same seed gives the same positions and statuses of 5xx answers.
- `spike`: one draw per `/v1` request that passed auth, the rate limit and the 5xx draw;
  below `spike_rate` the request is read whole, then held `spike_ms` before it is handled,
  so a client with a shorter read timeout gives up before the job it asked for exists, and
  the job still appears once the hold ends (as behind a congested queue).
- `drop`: one draw per successful create, remix, edit or extension; below `drop_rate` the job
  is kept but the response is cut off after its status line.
- `garble`: one draw per successful answer to create, remix, edit, extension, retrieve or
  list; below `garble_rate` its JSON is broken in one of three ways (a second draw picks):
  cut short, its videos without `id` and `status`, or with a status outside the contract.
  The work behind the answer is done all the same, as by a server with a broken encoder.
- `misdirect`: one draw per successful retrieve or list answer; below `misdirect_rate` every
  video in it carries another id, as from a server (or a cache in front of one) that answers
  status requests about the wrong job.
- `failure`: one draw per created job; below `failure_rate` the job ends `generation_failed`.
  A prompt containing a moderation term (case-insensitive) ends `moderation_blocked`
  regardless, and still consumes its draw, so adding a term does not shift other outcomes.

The rate limit is not random: a sliding window of `rate_window_seconds` admits at most
`requests_per_minute` requests; a refused request does not take a slot, and its answer says
exactly when the oldest admitted request leaves the window.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from remix_pipeline.service.config import FaultConfig
from remix_pipeline.service.errors import SERVER_ERROR, ApiError
from remix_pipeline.service.lifecycle import (
    GENERATION_FAILED,
    GENERATION_FAILED_MESSAGE,
    MODERATION_BLOCKED,
    MODERATION_MESSAGE,
)
from remix_pipeline.service.records import Failure

SERVER_ERRORS: dict[int, str] = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}


class Garbling(StrEnum):
    CUT_SHORT = "cut_short"
    MISSING_FIELDS = "missing_fields"
    UNKNOWN_STATUS = "unknown_status"
    ANOTHER_VIDEO = "another_video"  # drawn by `misdirect`, never by `garble`


UNKNOWN_STATUS = "melting"
_GARBLINGS = [g for g in Garbling if g is not Garbling.ANOTHER_VIDEO]


def garbled(body: bytes, how: Garbling) -> bytes:
    """The JSON answer `body`, broken as `how` says."""
    if how is Garbling.CUT_SHORT:
        return body[: len(body) // 2]
    data = json.loads(body)
    videos = data.get("data", []) if data.get("object") == "list" else [data]
    for video in videos:
        if how is Garbling.MISSING_FIELDS:
            video.pop("id", None)
            video.pop("status", None)
        elif how is Garbling.ANOTHER_VIDEO:
            video["id"] = "video_misdirected_" + str(video.get("id", ""))[-12:]
        else:
            video["status"] = UNKNOWN_STATUS
    return json.dumps(data).encode()


@dataclass(frozen=True)
class RateLimited:
    retry_after_seconds: float

    def error(self, limit: int, window: float) -> ApiError:
        seconds = max(1, math.ceil(self.retry_after_seconds))
        millis = max(1, math.ceil(self.retry_after_seconds * 1000))
        return ApiError(
            429,
            f"Rate limit reached for requests: limit {limit} per {window:g}s. "
            f"Please try again in {millis}ms.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": str(seconds), "retry-after-ms": str(millis)},
        )


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._admitted: deque[float] = deque()
        self._error_rng = random.Random(f"{config.seed}:error")
        self._spike_rng = random.Random(f"{config.seed}:spike")
        self._drop_rng = random.Random(f"{config.seed}:drop")
        self._garble_rng = random.Random(f"{config.seed}:garble")
        self._misdirect_rng = random.Random(f"{config.seed}:misdirect")
        self._failure_rng = random.Random(f"{config.seed}:failure")
        self._terms = tuple(t.casefold() for t in config.moderation_terms if t)

    @property
    def latency_seconds(self) -> float:
        return self.config.latency_ms / 1000

    def spike_seconds(self) -> float:
        """How long to hold this request once it has been read: 0 unless a spike is drawn."""
        if self.config.spike_rate <= 0:
            return 0.0
        with self._lock:
            spiked = self._spike_rng.random() < self.config.spike_rate
        return self.config.spike_ms / 1000 if spiked else 0.0

    def admit(self, now: float) -> RateLimited | None:
        """Take a slot in the window, or say how long until one frees."""
        limit = self.config.requests_per_minute
        if limit is None:
            return None
        window = self.config.rate_window_seconds
        with self._lock:
            while self._admitted and self._admitted[0] <= now - window:
                self._admitted.popleft()
            if len(self._admitted) >= limit:
                return RateLimited(self._admitted[0] + window - now)
            self._admitted.append(now)
        return None

    def rate_limit_error(self, limited: RateLimited) -> ApiError:
        limit = self.config.requests_per_minute or 0
        return limited.error(limit, self.config.rate_window_seconds)

    def server_error(self) -> ApiError | None:
        with self._lock:
            if self._error_rng.random() >= self.config.error_rate:
                return None
            status = self._error_rng.choice(sorted(SERVER_ERRORS))
        return ApiError(status, SERVER_ERRORS[status], type=SERVER_ERROR)

    def drop_response(self) -> bool:
        with self._lock:
            return self._drop_rng.random() < self.config.drop_rate

    def garbling(self) -> Garbling | None:
        if self.config.garble_rate <= 0:
            return None
        with self._lock:
            if self._garble_rng.random() >= self.config.garble_rate:
                return None
            return self._garble_rng.choice(_GARBLINGS)

    def misdirects(self) -> bool:
        if self.config.misdirect_rate <= 0:
            return False
        with self._lock:
            return self._misdirect_rng.random() < self.config.misdirect_rate

    def outcome(self, prompt: str) -> Failure | None:
        """How a new job will end: None for success, else its failure."""
        with self._lock:
            fails = self._failure_rng.random() < self.config.failure_rate
        folded = prompt.casefold()
        if any(term in folded for term in self._terms):
            return Failure(code=MODERATION_BLOCKED, message=MODERATION_MESSAGE)
        if fails:
            return Failure(code=GENERATION_FAILED, message=GENERATION_FAILED_MESSAGE)
        return None
