"""`remix-pipeline serve` in its own process on a free loopback port, for tests that point
the pipeline at a server the way a user points it at a remote one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REMIX_PIPELINE = Path(sys.executable).parent / "remix-pipeline"
SERVE_KEY_ENV = "REMIX_PIPELINE_SERVE_API_KEY"
FAST_JOBS = ("--queued-seconds", "0.05", "--run-seconds", "0.3", "--poll-after-ms", "50")
BANNER = "Videos API serving at "


@dataclass(frozen=True)
class Served:
    base_url: str
    key: str | None
    db_path: Path


def _default_signals() -> None:
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
        preexec_fn=_default_signals,
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
