"""Seeded crash points: a testing hook that SIGKILLs the process at a named step.

The reliability tests prove that a crash at any step loses nothing and pays for nothing twice.
To crash at exactly the step they mean, the product calls `crash_point("<name>")` there; with
`REMIX_PIPELINE_CRASH_AT=<name>:<n>` set, the process kills itself (SIGKILL: no cleanup, no
`finally`, like a power cut) the n-th time it passes that point. Several points may be given,
separated by commas; the first one reached fires. Unset (the only setting for real use), a
call is one comparison against None.

Not a user setting: it exists for the tests in tests/reliability/ and is documented in
docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_ENV = "REMIX_PIPELINE_CRASH_AT"


class CrashSpecError(ValueError):
    """The crash setting is malformed; refusing it beats silently never crashing."""


def parse_crash_spec(spec: str) -> dict[str, int]:
    """`"a:3,b:1"` -> {"a": 3, "b": 1}."""
    points: dict[str, int] = {}
    for part in spec.split(","):
        name, sep, count = part.strip().rpartition(":")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise CrashSpecError(
                f"{CRASH_ENV} entries must look like <point>:<n> with n >= 1, got {part!r}"
            )
        points[name] = int(count)
    return points


_armed: dict[str, int] | None = (
    parse_crash_spec(os.environ[CRASH_ENV]) if os.environ.get(CRASH_ENV) else None
)
_passes: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Die here on the n-th pass if the environment asks for it; otherwise do nothing."""
    if _armed is None or name not in _armed:
        return
    _passes[name] += 1
    if _passes[name] >= _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
