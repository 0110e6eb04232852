"""In-memory request counters, so tests and benchmarks can count what a client really sent."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class ServiceStats:
    """Requests per operation, per status code, and per (operation, status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.operations: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.by_operation: dict[str, Counter[int]] = {}
        self.dropped: Counter[str] = Counter()

    def request(self, operation: str) -> None:
        with self._lock:
            self.operations[operation] += 1

    def response(self, operation: str, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1
            self.by_operation.setdefault(operation, Counter())[status] += 1

    def drop(self, operation: str) -> None:
        with self._lock:
            self.dropped[operation] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "operations": dict(self.operations),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "by_operation": {
                    op: {str(k): v for k, v in sorted(c.items())}
                    for op, c in self.by_operation.items()
                },
                "dropped": dict(self.dropped),
            }
