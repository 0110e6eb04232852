"""The pipeline as users run it: `remix-pipeline run` in its own project directory, against a
served Videos API named by OPENAI_BASE_URL, with its own state home and Dagster home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from benchmarks.contenders import BENCH_KEY
from benchmarks.variants import Variant, write_request_table
from remix_pipeline.lineage import read_lineage


class PipelineFailed(RuntimeError):
    """`remix-pipeline run` did not finish; its log is named in the message."""


@dataclass(frozen=True)
class PipelineOutcome:
    completed: int
    failed: int
    seconds: float
    dagster_runs: int
    lineage_path: Path


def project_env(project: Path, url: str) -> dict[str, str]:
    """The environment of a user's shell in `project`, pointed at the served service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DAGSTER_"))}
    home = project / ".remix-pipeline"
    env.update(
        REMIX_PIPELINE_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        OPENAI_BASE_URL=url,
        OPENAI_API_KEY=BENCH_KEY,
    )
    return env


def run_pipeline(
    url: str,
    rows: list[Variant],
    project: Path,
    *,
    name: str = "bench",
    timeout: float = 3600,
    dagster_yaml: str | None = None,
) -> PipelineOutcome:
    """`remix-pipeline run` over `rows`; `dagster_yaml`, when given, is the Dagster home's
    configuration (`run` writes its own only where none exists), e.g. PostgreSQL storage."""
    table = write_request_table(project / "data" / "requests.csv", rows)
    env = project_env(project, url)
    if dagster_yaml is not None:
        home = Path(env["DAGSTER_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(dagster_yaml)
    command = [
        sys.executable,
        "-m",
        "remix_pipeline.cli",
        "run",
        "--table",
        str(table),
        "--name",
        name,
        "--timeout",
        f"{timeout:g}",
    ]
    seconds, returncode, log = timed_run(command, project, env)
    if returncode != 0:
        raise PipelineFailed(f"remix-pipeline run exited {returncode}: {last_line(log)}")
    lineage_path = project / "data" / "output" / name / "lineage.parquet"
    frame = read_lineage(str(lineage_path))
    latest = frame.sort_values(["key", "attempt"]).groupby("key").tail(1)
    states = latest["state"].value_counts().to_dict()
    return PipelineOutcome(
        completed=int(states.get("completed", 0)),
        failed=int(states.get("failed", 0)),
        seconds=seconds,
        dagster_runs=count_runs(Path(env["DAGSTER_HOME"])),
        lineage_path=lineage_path,
    )


def last_line(log: Path) -> str:
    """The command's last output line (its one error): what a failed row in RESULTS.md
    says, rather than the log's path on this machine."""
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"


def timed_run(command: list[str], project: Path, env: dict[str, str]) -> tuple[float, int, Path]:
    """Run `command` in `project`, its output in run.log there: wall seconds, exit code, log."""
    log = project / "run.log"
    started = time.perf_counter()
    with log.open("w") as handle:
        finished = subprocess.run(
            command, cwd=project, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    return time.perf_counter() - started, finished.returncode, log


def count_runs(dagster_home: Path) -> int:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return instance.get_runs_count()


def import_seconds() -> float:
    """What a fresh `remix-pipeline run` pays before any work: importing Dagster and the
    pipeline's definitions."""
    command = [sys.executable, "-c", "import remix_pipeline.definitions.headless"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started
