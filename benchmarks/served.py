"""The embedded Videos API as a separate `remix-pipeline serve` process on a loopback port.

Every contender gets its own fresh server with identical settings, so the server's request
counters (`GET /_admin/stats`) count exactly one contender's traffic and no contender's jobs
lengthen another's list pages.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

READY_PREFIX = "Videos API serving at "
START_TIMEOUT_SECONDS = 60.0
STATUS_OPERATIONS = ("retrieve", "list")


@dataclass(frozen=True)
class ServiceSettings:
    """What every contender's server is started with."""

    job_seconds: float
    rpm_limit: int | None = None
    poll_after_ms: int = 1000

    @property
    def queued_seconds(self) -> float:
        return min(1.0, self.job_seconds / 10)

    @property
    def run_seconds(self) -> float:
        return self.job_seconds - self.queued_seconds

    def describe(self) -> str:
        limit = f"{self.rpm_limit} rpm" if self.rpm_limit else "no rate limit"
        return (
            f"job {self.job_seconds:g} s (queued {self.queued_seconds:g} s + running "
            f"{self.run_seconds:g} s), poll-after {self.poll_after_ms} ms, {limit}"
        )


class ServedService:
    """Start with `with ServedService(settings, workdir) as service:`; `service.url` ends in /v1."""

    def __init__(self, settings: ServiceSettings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServedService:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "remix_pipeline.cli",
            "serve",
            "--port",
            "0",
            "--db",
            str(self.workdir / "service.db"),
            "--queued-seconds",
            f"{self.settings.queued_seconds:g}",
            "--run-seconds",
            f"{self.settings.run_seconds:g}",
            "--poll-after-ms",
            str(self.settings.poll_after_ms),
        ]
        if self.settings.rpm_limit:
            command += ["--rpm-limit", str(self.settings.rpm_limit)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env["REMIX_PIPELINE_HOME"] = str(self.workdir)
        with (self.workdir / "serve.log").open("w") as log:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=self.workdir,
            )
        self.url = self._wait_ready(self._process)
        return self

    def _wait_ready(self, process: subprocess.Popen[str]) -> str:
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT_SECONDS)
        except queue.Empty:
            self.stop()
            raise RuntimeError("remix-pipeline serve did not start; see serve.log") from None
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"remix-pipeline serve said {line.strip()!r}")
        return line[len(READY_PREFIX) :].strip()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.root}/_admin/stats", timeout=30)
        response.raise_for_status()
        return response.json()

    def status_requests(self) -> int:
        """Requests that asked for a job's status: retrieves and list pages."""
        operations = self.stats()["operations"]
        return sum(int(operations.get(op, 0)) for op in STATUS_OPERATIONS)
