"""The repository's sample checkout served by Dagster's own servers (`dagster dev`, or
`dagster-webserver` over a finished run's state) on a free loopback port, and read over
their GraphQL API: the code-location, UI-metadata and browser tests share one way to do it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from .projects import write_service_settings
from .servers import default_signals, free_port

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"
LOCATION = "remix_sample"
START_TIMEOUT_SECONDS = 120.0
TICK_TIMEOUT_SECONDS = 60.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")

WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on PythonError { message }
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
          ... on RepositoryLocation {
            repositories {
              name
              assetNodes {
                assetKey { path }
                assetChecksOrError { ... on AssetChecks { checks { name } } }
              }
              sensors { name sensorState { status } }
              schedules { name cronSchedule scheduleState { status } }
            }
          }
        }
      }
    }
  }
}
"""

TICKS_QUERY = """
query Ticks($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { name sensorState { ticks(limit: 5) { status error { message } } } } }
  }
}
"""


@dataclass
class DagsterDev:
    url: str
    log_path: Path
    _workspace: dict[str, Any] | None = None
    _ticks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def location_entry(self) -> dict[str, Any]:
        if self._workspace is None:
            self._workspace = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        assert self._workspace["__typename"] == "Workspace", self._workspace
        (entry,) = [e for e in self._workspace["locationEntries"] if e["name"] == LOCATION]
        return entry

    def repository(self) -> dict[str, Any]:
        location = self.location_entry()["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        (repository,) = location["repositories"]
        return repository

    def sensor_ticks(self, names: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The daemon's ticks of the named sensors, once each has ticked at least once."""
        if names <= {n for n, ticks in self._ticks.items() if ticks}:
            return self._ticks
        selector = {"repositoryName": "__repository__", "repositoryLocationName": LOCATION}
        deadline = time.monotonic() + TICK_TIMEOUT_SECONDS
        while True:
            results = self.graphql(TICKS_QUERY, {"selector": selector})["sensorsOrError"]
            self._ticks = {r["name"]: r["sensorState"]["ticks"] for r in results["results"]}
            if names <= {n for n, ticks in self._ticks.items() if ticks}:
                return self._ticks
            if time.monotonic() > deadline:
                pytest.fail(f"the daemon never ticked {names}; ticks: {self._ticks}")
            time.sleep(1)

    def output(self) -> str:
        return ANSI.sub("", self.log_path.read_text(errors="replace"))


def _wait_until_loaded(server: DagsterDev, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.output()}")
        try:
            entries = server.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
            )["workspaceOrError"]
        except httpx.HTTPError:
            entries = None
        statuses = {e["name"]: e["loadStatus"] for e in (entries or {}).get("locationEntries", [])}
        if statuses.get(LOCATION) == "LOADED":
            return
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not load {LOCATION}:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop dagster dev and everything it started (webserver, daemon, code server, runs)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(timeout=10)


def sample_checkout(root: Path, table: str) -> dict[str, str]:
    """The repository's workspace and sample project copied, unchanged, into `root`, `table`
    as its request table and a state home of its own: the environment its commands run in."""
    shutil.copy(REPO / "workspace.yaml", root / "workspace.yaml")
    shutil.copytree(REPO / "sample", root / "sample", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "data").mkdir()
    (root / "data" / "requests.csv").write_text(table)
    state = root / ".remix-pipeline"
    home = state / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "REMIX_PIPELINE_HOME": str(state)}
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "REMIX_PIPELINE_LEDGER_URL"):
        env.pop(name, None)
    return env


def run_sample_checkout(
    root: Path, table: str
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """The repository's workspace and sample project in `root`, `table` as its request table,
    after a successful `remix-pipeline run` on the embedded service: the environment that
    serves the same state home to a webserver, and the run."""
    env = sample_checkout(root, table)
    write_service_settings(root / ".remix-pipeline")
    ran = subprocess.run(
        [str(Path(sys.executable).parent / "remix-pipeline"), "run", "--timeout", "120"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return env, ran


@contextlib.contextmanager
def serving_ui(command: list[str], root: Path, env: dict[str, str]) -> Iterator[DagsterDev]:
    """`command` (dagster dev or dagster-webserver) on a free loopback port in `root`, until
    its code location has loaded; it and everything it started are stopped on exit."""
    port = free_port()
    log_path = root / f"{Path(command[0]).name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=default_signals,
        )
    server = DagsterDev(url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        _wait_until_loaded(server, process)
        yield server
    finally:
        _stop(process)
