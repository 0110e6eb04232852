"""A clock the tests set, so the service's lifecycle moves on command instead of by waiting."""

from __future__ import annotations


class FakeClock:
    """A settable clock, so lifecycle transitions happen on command instead of by waiting."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
