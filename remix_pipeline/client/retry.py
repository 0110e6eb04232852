"""When to try a request again, and how long to wait first.

Only requests that cannot start a second paid job are repeated: reads and deletes on any
transient failure, and any request the server clearly refused (408, 409, 429) or that never
left the machine (connect errors). Waits are exponential with full jitter unless the server
names a delay (`retry-after-ms`, then `retry-after` in seconds or as an HTTP date, or the
same headers as a gateway renames them, `llm_provider-retry-after(-ms)`); a wait that would
overrun the request's time budget ends the retries at once.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

# Share of a server-named delay added at random on top of it, and the least spread: a rate
# limiter naming a few milliseconds would otherwise send every waiting client back at once.
SERVER_DELAY_SPREAD = 0.25
MIN_SERVER_DELAY_SPREAD_SECONDS = 0.25

# Statuses that mean the server did not act on the request, whatever its method.
REFUSED_STATUSES = frozenset({408, 409, 429})

# Transport failures raised before any byte of the request went out.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


def status_is_retryable(status_code: int, *, safe_to_repeat: bool) -> bool:
    if status_code in REFUSED_STATUSES:
        return True
    return safe_to_repeat and status_code >= 500


def transport_error_is_retryable(error: httpx.RequestError, *, safe_to_repeat: bool) -> bool:
    return safe_to_repeat or isinstance(error, NOT_SENT_ERRORS)


# A gateway passes its upstream's headers on renamed (LiteLLM with num_retries 0).
_GATEWAY_PREFIX = "llm_provider-"


def server_delay(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """The wait a server asked for, in seconds, or None if it named none usable."""
    for prefix in ("", _GATEWAY_PREFIX):
        delay = _named_delay(headers, prefix, now)
        if delay is not None:
            return delay
    return None


def _named_delay(headers: Mapping[str, str], prefix: str, now: Callable[[], float]) -> float | None:
    raw_ms = headers.get(f"{prefix}retry-after-ms")
    if raw_ms is not None:
        try:
            delay = float(raw_ms) / 1000.0
        except ValueError:
            delay = None
        if delay is not None and delay >= 0 and delay == delay:
            return delay
    raw = headers.get(f"{prefix}retry-after")
    if raw is None:
        return None
    try:
        delay = float(raw)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, moment.timestamp() - now())
    return delay if delay >= 0 and delay == delay else None


@dataclass
class RetryPolicy:
    """Bounds shared by all attempts of one request: attempts and wall-clock budget."""

    max_attempts: int
    max_retry_seconds: float
    base_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic

    def start(self) -> RetryBudget:
        return RetryBudget(self, started=self.clock())

    def backoff(self, retries_done: int) -> float:
        """Full jitter: uniform over [0, min(cap, base * 2**n)]."""
        ceiling = min(self.max_backoff_seconds, self.base_seconds * (2**retries_done))
        return self.rng.uniform(0.0, ceiling)


@dataclass
class RetryBudget:
    policy: RetryPolicy
    started: float
    attempts: int = 0

    def next_delay(self, requested: float | None) -> float | None:
        """The wait before the next attempt, or None when the bounds say stop now.

        Call after an attempt failed in a retryable way.
        """
        self.attempts += 1
        if self.attempts >= self.policy.max_attempts:
            return None
        remaining = self.policy.max_retry_seconds - (self.policy.clock() - self.started)
        if requested is None:
            delay = self.policy.backoff(self.attempts - 1)
            return delay if delay <= remaining else None
        if requested > remaining:
            return None
        # Wait a little longer than asked, never shorter: clients told the same moment would
        # otherwise all come back at once and meet the same limit again.
        spread = self.policy.rng.uniform(
            0.0, max(requested * SERVER_DELAY_SPREAD, MIN_SERVER_DELAY_SPREAD_SECONDS)
        )
        return min(requested + spread, remaining)
