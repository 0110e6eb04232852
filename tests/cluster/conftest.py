"""The cluster test needs PostgreSQL and Redis servers (scripts/test.sh starts both and
exports their URLs); without them it skips with the reason, except under CI."""

from __future__ import annotations

import os

import pytest

from tests.support.needs import missing

POSTGRES_VARIABLE = "REMIX_PIPELINE_TEST_POSTGRES_URL"
REDIS_VARIABLE = "REMIX_PIPELINE_TEST_REDIS_URL"


@pytest.fixture
def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_VARIABLE)
    if not url:
        missing(f"{POSTGRES_VARIABLE} is unset: start one with `bash scripts/postgres.sh`")
    return url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_VARIABLE)
    if not url:
        missing(f"{REDIS_VARIABLE} is unset: start one with `bash scripts/redis.sh`")
    return url
