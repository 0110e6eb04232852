"""scripts/redis.sh as CI runs it: it starts a Redis of its own on the port asked for, a
second call prints the same URL, the URL answers, and `stop` stops it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.needs import missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "redis.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_redis_script_starts_once_answers_and_stops() -> None:
    if not shutil.which("redis-server"):
        missing("redis-server is not installed: `bash scripts/redis.sh` installs it")
    redis = pytest.importorskip("redis")
    # Not below pytest's 0700 temporary directory: as root the server runs as `redis`.
    where = Path(tempfile.mkdtemp(prefix="remix-redis-test-", dir="/var/tmp"))
    where.chmod(0o755)
    port = _free_port()
    env = {
        "REMIX_PIPELINE_REDIS_DIR": str(where / "redis"),
        "REMIX_PIPELINE_REDIS_PORT": str(port),
    }
    try:
        url = _run(env)
        assert url == f"redis://127.0.0.1:{port}/0"
        assert _run(env) == url
        client = redis.Redis.from_url(url)
        assert client.ping() is True
        client.rpush("queue", "task")
        # A stop and a start keep the queue (the broker-down chaos case relies on it).
        _run(env, "stop")
        assert _run(env) == url
        assert redis.Redis.from_url(url).lrange("queue", 0, -1) == [b"task"]
    finally:
        _run(env, "stop")
        shutil.rmtree(where, ignore_errors=True)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
