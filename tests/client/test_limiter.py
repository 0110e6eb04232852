"""The client-side limiter: agrees with a sliding-window server and is shared per server."""

from __future__ import annotations

import asyncio
import bisect
import itertools

from remix_pipeline.client.limiter import RateLimiter, shared_limiter


def most_in_any_window(slots: list[float], window: float) -> int:
    """The largest number of slots inside any half-open window [t, t + window)."""
    ordered = sorted(slots)
    return max(bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered))


def test_a_burst_of_five_times_the_rate_never_puts_more_than_r_in_a_window() -> None:
    limiter = RateLimiter(requests=20, window_seconds=60.0, clock=lambda: 0.0)
    slots = [limiter.reserve() for _ in range(100)]
    assert most_in_any_window(slots, 60.0) <= 20


def test_slots_are_spread_smoothly_rather_than_granted_as_one_burst() -> None:
    limiter = RateLimiter(requests=20, window_seconds=60.0, clock=lambda: 0.0)
    slots = [limiter.reserve() for _ in range(20)]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 60.0 / 20 - 1e-9


def test_after_an_idle_period_the_log_still_bounds_every_window() -> None:
    now = [0.0]
    limiter = RateLimiter(requests=5, window_seconds=10.0, clock=lambda: now[0])
    slots = [limiter.reserve() for _ in range(5)]
    now[0] = 9.0
    slots += [limiter.reserve() for _ in range(10)]
    assert most_in_any_window(slots, 10.0) <= 5


def test_unpaced_limiter_grants_every_slot_now() -> None:
    limiter = RateLimiter(requests=None, clock=lambda: 42.0)
    assert {limiter.reserve() for _ in range(50)} == {42.0}


async def test_in_flight_cap_holds_across_concurrent_requests() -> None:
    limiter = RateLimiter(requests=None, max_in_flight=3)
    inside = 0
    most = 0

    async def request() -> None:
        nonlocal inside, most
        async with limiter.slot():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(request() for _ in range(20)))
    assert most == 3


def test_one_limiter_serves_several_event_loops_in_turn() -> None:
    limiter = RateLimiter(requests=None, max_in_flight=1)

    async def use() -> None:
        async with limiter.slot():
            await asyncio.sleep(0)

    async def contend() -> None:
        await asyncio.gather(use(), use(), use())

    asyncio.run(contend())
    asyncio.run(contend())


def test_clients_of_the_same_server_share_one_limiter() -> None:
    first = shared_limiter("http://a.test/v1", requests=10, window_seconds=60, max_in_flight=4)
    again = shared_limiter("http://a.test/v1", requests=10, window_seconds=60, max_in_flight=4)
    other = shared_limiter("http://b.test/v1", requests=10, window_seconds=60, max_in_flight=4)
    assert first is again
    assert first is not other
