"""Counters of what a client actually sent, for tests and benchmarks to check claims against."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    requests: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    outcome_unknown: int = 0
    malformed: int = 0  # successful answers that broke the contract

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())
