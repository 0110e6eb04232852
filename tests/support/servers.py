"""Every way the tests start the Videos API service, and the one set of fast job timings.

A service started for a test runs its jobs in a fraction of a second; the timings live here
once, so a test that tunes them is visibly overriding them. The ways to serve:

- `served_process`: `remix-pipeline serve` in its own process on a free loopback port, for
  tests that point the pipeline at a server the way a user points it at a remote one
  (`run_against` runs `remix-pipeline run` so);
- `serve_command`: the bare `serve` command, for tests of the command itself;
- `serving`: the service's own server (`build_server`) in a thread, for one block;
- `serving_app`: any ASGI app (a real service app, or a fake that misbehaves on purpose)
  behind uvicorn in a thread;
- `fast_config`: the embedded service's config, reached in-process with no socket at all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from remix_pipeline.service import FaultConfig, ServiceConfig
from remix_pipeline.service.server import VideosServer, build_server

REMIX_PIPELINE = Path(sys.executable).parent / "remix-pipeline"
SERVE_KEY_ENV = "REMIX_PIPELINE_SERVE_API_KEY"
BANNER = "Videos API serving at "
START_SECONDS = 15

# A job queues for 50 ms and runs for 300 ms; clients are told to poll every 50 ms. Written
# into a project's `service.json` and given to `serve` as options.
FAST_TIMINGS: dict[str, float] = {"queued_seconds": 0.05, "run_seconds": 0.3, "poll_after_ms": 50}
# In-process tests poll the app directly (and assert its 20 ms hint), and want tiny media.
FAST_IN_PROCESS: dict[str, float] = {**FAST_TIMINGS, "poll_after_ms": 20, "media_scale": 0.05}
FAST_JOBS = tuple(
    part
    for name, value in FAST_TIMINGS.items()
    for part in (f"--{name.replace('_', '-')}", str(value))
)

MakeConfig = Callable[..., ServiceConfig]


def fast_config(db_path: Path, **overrides: Any) -> ServiceConfig:
    """The in-process service on `db_path` with fast jobs; keyword arguments override, and
    `faults` may be a dict of FaultConfig fields."""
    faults = overrides.pop("faults", None)
    values: dict[str, Any] = {"db_path": db_path, **FAST_IN_PROCESS, **overrides}
    if isinstance(faults, dict):
        faults = FaultConfig(**faults)
    if faults is not None:
        values["faults"] = faults
    return ServiceConfig(**values)


@contextmanager
def _running(server: VideosServer) -> Iterator[str]:
    """`server` run in a daemon thread until it listens, its base URL; stopped when the
    block ends."""
    thread = threading.Thread(target=server.run, name="videos-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while (base_url := server.base_url) is None:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=START_SECONDS)


@contextmanager
def serving(config: ServiceConfig) -> Iterator[tuple[str, Starlette]]:
    """The service behind its own server on a free loopback port: (base URL, app)."""
    server = build_server(config)
    with _running(server) as base_url:
        yield base_url, server.config.app


@dataclass(frozen=True)
class LoopbackServer:
    base_url: str
    port: int


@contextmanager
def serving_app(app: Any) -> Iterator[LoopbackServer]:
    """Any ASGI app behind uvicorn on a free loopback port (keep-alive cut to one second, so
    a test of dropped connections does not wait on idle ones)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_keep_alive=1
    )
    server = VideosServer(config)
    with _running(server) as base_url:
        port = int(base_url.removesuffix("/v1").rsplit(":", 1)[1])
        yield LoopbackServer(base_url=base_url, port=port)


def serve_command(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m remix_pipeline.cli serve ARGS` with pipes, for tests of the command itself
    (its banner, its exit on Ctrl-C, its one-line refusals)."""
    return subprocess.Popen(
        [sys.executable, "-m", "remix_pipeline.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@dataclass(frozen=True)
class Served:
    base_url: str
    key: str | None
    db_path: Path


def free_port() -> int:
    """A loopback port free now, for a server that must be told its port in advance."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_signals() -> None:
    """The server must stop on SIGTERM even if this test runner ignores it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def served_process(where: Path, *options: str, key: str | None = None) -> Iterator[Served]:
    """The service with fast jobs and `options`, requiring `key` (passed by environment, as a
    user keeps it out of `ps`) when one is given; stopped, and its group killed, on exit."""
    db_path = where / "videos.db"
    env = {**os.environ, "REMIX_PIPELINE_HOME": str(where)}
    env.pop(SERVE_KEY_ENV, None)
    if key is not None:
        env[SERVE_KEY_ENV] = key
    process = subprocess.Popen(
        [str(REMIX_PIPELINE), "serve", "--port", "0", "--db", str(db_path), *FAST_JOBS, *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(where / "serve.err").open("wb"),
        stdin=subprocess.DEVNULL,
        text=True,
        process_group=0,
        preexec_fn=default_signals,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(BANNER), line + (where / "serve.err").read_text()
        yield Served(base_url=line.removeprefix(BANNER).strip(), key=key, db_path=db_path)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass(frozen=True)
class CommandRun:
    project: Path
    result: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def run_against(served: Served, project: Path, table: str) -> CommandRun:
    """`remix-pipeline run` in a fresh project holding `table`, told about the server only by
    OPENAI_BASE_URL and OPENAI_API_KEY, as a user points it at a remote one."""
    (project / "data").mkdir()
    (project / "data" / "requests.csv").write_text(table)
    env = {
        **os.environ,
        "OPENAI_BASE_URL": served.base_url,
        "REMIX_PIPELINE_HOME": str(project / ".remix-pipeline"),
        "COLUMNS": "200",
    }
    if served.key is not None:
        env["OPENAI_API_KEY"] = served.key
    for name in ("DAGSTER_HOME", SERVE_KEY_ENV, "REMIX_PIPELINE_LEDGER_URL"):
        env.pop(name, None)
    result = subprocess.run(
        [str(REMIX_PIPELINE), "run", "--table", "data/requests.csv", "--timeout", "240"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,
        check=False,
    )
    return CommandRun(project=project, result=result)
