"""Workload 8: `remix-pipeline run` of the sample as a new user runs it: a fresh project with
the repository's `data/requests.csv`, no state, the embedded service, wall time of the
command. Set beside what it cannot avoid: the server's job time (every job runs that long)
and the import of Dagster and the definitions in a fresh process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from benchmarks.pipeline import import_seconds, last_line, timed_run
from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from remix_pipeline.service.config import ServiceConfig

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.5


def sample_run(plan: Plan, workdir: Path, report: Report) -> None:
    project = workdir / "sample"
    shutil.rmtree(project, ignore_errors=True)
    (project / "data").mkdir(parents=True)
    shutil.copy(REPO / "data" / "requests.csv", project / "data" / "requests.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DAGSTER_"))}
    home = project / ".remix-pipeline"
    env.update(REMIX_PIPELINE_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"))
    command = [sys.executable, "-m", "remix_pipeline.cli", "run"]
    wall, returncode, log = timed_run(command, project, env)
    if returncode != 0:
        raise RuntimeError(
            f"remix-pipeline run of the sample exited {returncode}: {last_line(log)}"
        )
    # The embedded service's defaults (what `run` without OPENAI_BASE_URL starts).
    fields = ServiceConfig.model_fields
    queued, running = fields["queued_seconds"].default, fields["run_seconds"].default
    job = queued + running
    imports = import_seconds()
    bound = job + imports
    report.add(
        Row(
            "8",
            "remix-pipeline run of the sample (12 variants), fresh state, embedded service",
            "12",
            wall,
            "s wall",
            ratio(wall, bound, "(job time + import time)"),
            f"server job time {job:g} s (queued {queued:g} + running {running:g}); "
            f"import of the definitions {imports:.1f} s",
        )
    )
    report.findings.append(
        f"sample run: {wall:.1f} s wall against job {job:g} s + import {imports:.1f} s = "
        f"{bound:.1f} s: {wall / bound:.2f}x (target at most {TARGET:g}: "
        f"{'met' if wall <= TARGET * bound else 'NOT met'})"
    )
