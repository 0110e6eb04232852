"""Client-side pacing that agrees with a server's sliding-window rate limit.

The server counts requests in a sliding window (R per W seconds). Pacing here is smooth (one
slot every W/R seconds, so a burst never lands at once) and also keeps an exact log of the last
R slots, so no window of length W ever holds more than R of our sends even after idle periods.
Slot bookkeeping is thread-safe and independent of any event loop, so one limiter can serve
every client and every `asyncio.run` in a process; the in-flight cap is per event loop because
asyncio primitives cannot cross loops.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

# Extra spacing over the window, so that network jitter between our clock and the server's
# arrival times does not push an (R+1)th request into the server's window.
_WINDOW_MARGIN_SHARE = 0.05
_WINDOW_MARGIN_MAX_SECONDS = 1.0


class RateLimiter:
    """At most `requests` sends per `window_seconds`, and at most `max_in_flight` at once."""

    def __init__(
        self,
        *,
        requests: int | None,
        window_seconds: float = 60.0,
        max_in_flight: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests is not None and requests < 1:
            raise ValueError("requests per window must be at least 1")
        if window_seconds <= 0 or max_in_flight < 1:
            raise ValueError("window_seconds must be positive and max_in_flight at least 1")
        self.requests = requests
        self.window_seconds = window_seconds
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: deque[float] = deque(maxlen=requests or 1)
        self._last_slot = float("-inf")
        self._guard = window_seconds * (1 + _WINDOW_MARGIN_SHARE)
        self._guard = min(self._guard, window_seconds + _WINDOW_MARGIN_MAX_SECONDS)
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()

    def reserve(self) -> float:
        """Claim the next send slot; returns the clock time at which it may be used."""
        if self.requests is None:
            return self._clock()
        interval = self.window_seconds / self.requests
        with self._lock:
            now = self._clock()
            slot = max(now, self._last_slot + interval)
            if len(self._slots) == self.requests:
                slot = max(slot, self._slots[0] + self._guard)
            self._slots.append(slot)
            self._last_slot = slot
            return slot

    async def wait_for_slot(self) -> None:
        delay = self.reserve() - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            semaphore = self._semaphores.get(loop)
            if semaphore is None:
                semaphore = asyncio.Semaphore(self.max_in_flight)
                self._semaphores[loop] = semaphore
            return semaphore

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight place and a paced send slot for the duration of one request.

        The in-flight place is taken first: a rate slot claimed while waiting for it would
        be stale by the time the request is sent.
        """
        async with self._semaphore():
            await self.wait_for_slot()
            yield


_REGISTRY: dict[tuple[str, int | None, float, int], RateLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_limiter(
    key: str, *, requests: int | None, window_seconds: float, max_in_flight: int
) -> RateLimiter:
    """The process-wide limiter for one server, so several clients share its budget."""
    registry_key = (key, requests, window_seconds, max_in_flight)
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(registry_key)
        if limiter is None:
            limiter = RateLimiter(
                requests=requests, window_seconds=window_seconds, max_in_flight=max_in_flight
            )
            _REGISTRY[registry_key] = limiter
        return limiter
