"""Tests that need a real part (a PostgreSQL server, a browser, root) skip without it on a
developer's machine, with the reason, but fail under CI: CI installs every part, so a skip
there would hide a missing install step behind a green run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip the test for `reason`, or fail it when the environment variable CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason)
