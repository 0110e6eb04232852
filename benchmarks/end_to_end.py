"""Workloads 1, 2 and 4 (the run count at N): every contender end to end on its own fresh
server, same settings.

The sequential SDK patterns grow linearly with N, so they run on a sample and their time is
extrapolated to N (marked as such). Ratios are against the tuned floor (the fastest setting
of the sweep, run again at N) and the server-bound limit, both measured in the same run.
"""

from __future__ import annotations

import functools
import math
import statistics
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import contenders
from benchmarks.floor_sweep import floor_sweep
from benchmarks.pipeline import run_pipeline
from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from benchmarks.served import ServedService, ServiceSettings
from benchmarks.server_bound import server_bound
from benchmarks.variants import Variant, variants


@dataclass(frozen=True)
class Measured:
    name: str
    sample: int
    seconds: float  # median wall time of the sample
    status_per_video: float | None
    completed: int
    failed: int
    dagster_runs: int | None = None
    error: str = ""  # why the contender did not finish (its row says so; the others stand)

    def at(self, n: int) -> float:
        """Wall time for n variants; linear in the sample size for the sequential patterns."""
        return self.seconds if self.sample == n else self.seconds * n / self.sample


Contender = Callable[[str, list[Variant], Path], object]


def _measure(
    name: str,
    run: Contender,
    rows: list[Variant],
    settings: ServiceSettings,
    workdir: Path,
    repeats: int,
) -> Measured:
    """The contender's median over `repeats`; a contender that raises is a Measured with its
    error, so one contender's failure (an SDK timing out on a loaded machine) does not lose
    the others' figures of the same run."""
    seconds: list[float] = []
    status: list[float] = []
    outcome = None
    try:
        for repeat in range(repeats):
            where = workdir / f"{name}-{repeat}"
            with ServedService(settings, where / "server") as service:
                outcome = run(service.url, rows, where / "client")
                requests = service.status_requests()
            seconds.append(outcome.seconds)  # type: ignore[attr-defined]
            ended = outcome.completed  # type: ignore[attr-defined]
            status.append(requests / ended if ended else float("nan"))
    except Exception as exc:
        traceback.print_exc()
        nan = float("nan")
        error = f"{type(exc).__name__}: {str(exc)[:160]}"
        return Measured(name, len(rows), nan, None, 0, 0, error=error)
    assert outcome is not None
    return Measured(
        name=name,
        sample=len(rows),
        seconds=statistics.median(seconds),
        status_per_video=statistics.median(status),
        completed=outcome.completed,  # type: ignore[attr-defined]
        failed=outcome.failed,  # type: ignore[attr-defined]
        dagster_runs=getattr(outcome, "dagster_runs", None),
    )


def _pipeline(url: str, rows: list[Variant], where: Path) -> object:
    where.mkdir(parents=True, exist_ok=True)
    return run_pipeline(url, rows, where)


LABELS = {
    "pipeline": "pipeline (remix-pipeline run)",
    "floor": "(a) tuned floor: asyncio+httpx, bulk list polling",
    "limit": "server-bound limit: raw HTTP/1.1, no status requests",
    "sdk_sequential": "(b) openai SDK sequential remix+poll",
    "sdk_threads": "(c) openai SDK, 3 threads",
    "sdk_async": "(d) AsyncOpenAI, all gathered, videos.poll",
}


def end_to_end(plan: Plan, workdir: Path, report: Report) -> None:
    floor_sweep(plan, workdir, report)
    assert report.best_floor is not None
    n = plan.e2e_variants
    for job_seconds in plan.job_durations:
        settings = ServiceSettings(job_seconds=job_seconds)
        tag = f"job {job_seconds:g} s"
        base = workdir / f"e2e-{job_seconds:g}s"
        rows = variants(n, f"e2e{job_seconds:g}")
        sequential = rows[: plan.sdk_sample(job_seconds, 1)]
        threaded = rows[: plan.sdk_sample(job_seconds, 3)]
        tuned = functools.partial(contenders.floor, setting=report.best_floor)
        limit = functools.partial(server_bound, job_seconds=job_seconds)
        repeats = plan.e2e_repeats
        results = [
            _measure("pipeline", _pipeline, rows, settings, base, repeats),
            _measure("floor", tuned, rows, settings, base, repeats),
            _measure("limit", limit, rows, settings, base, repeats),
            _measure("sdk_async", contenders.sdk_async, rows, settings, base, repeats),
            _measure("sdk_threads", contenders.sdk_threads, threaded, settings, base, 1),
            _measure("sdk_sequential", contenders.sdk_sequential, sequential, settings, base, 1),
        ]
        by_name = {m.name: m for m in results}
        floor_seconds = by_name["floor"].at(n)
        limit_seconds = by_name["limit"].at(n)
        pipeline_seconds = by_name["pipeline"].at(n)
        if job_seconds == plan.job_durations[-1] and not by_name["floor"].error:
            report.floor_seconds[n] = floor_seconds
        for m in results:
            extrapolated = m.sample != n
            note = (
                f"measured on {m.sample} variants, extrapolated linearly to {n}"
                if extrapolated
                else f"median of {repeats} run(s)"
            )
            if m.name == "floor":
                note += f"; {report.best_floor.describe()}"
            note += f"; {m.completed} completed, {m.failed} failed of {m.sample}"
            if m.error:
                note = f"did not finish: {m.error}"
            speed = ratio(m.at(n), pipeline_seconds, "pipeline") if m.name != "pipeline" else ""
            ratios = [
                ratio(m.at(n), floor_seconds, "floor"),
                ratio(m.at(n), limit_seconds, "limit"),
                speed,
            ]
            report.add(
                Row(
                    "1",
                    f"{LABELS[m.name]}, {tag}",
                    str(n),
                    None if m.error else m.at(n),
                    "s wall" + (" (extrapolated)" if extrapolated else ""),
                    "; ".join(filter(None, ratios)),
                    note,
                )
            )
        for m in results:
            report.add(
                Row(
                    "2",
                    f"{LABELS[m.name]}, {tag}",
                    str(m.sample),
                    m.status_per_video,
                    "status requests / completed video",
                    ratio(m.status_per_video, by_name["pipeline"].status_per_video, "pipeline"),
                    "retrieve + list requests counted by the server",
                )
            )
        report.findings.extend(_targets(tag, by_name, n))
        if by_name["pipeline"].error:
            continue
        runs = by_name["pipeline"].dagster_runs or 0
        report.dagster_runs[n] = runs
        report.add(
            Row(
                "4",
                f"Dagster runs launched by remix-pipeline run, {tag}",
                str(n),
                float(runs),
                "runs",
                "",
                "every run in the experiment's Dagster instance",
            )
        )


def _verdict(ok: bool, *values: float) -> str:
    if any(math.isnan(v) for v in values):
        return "not measured"
    return "met" if ok else "NOT met"


def _targets(tag: str, by_name: dict[str, Measured], n: int) -> list[str]:
    pipeline, floor, limit = by_name["pipeline"], by_name["floor"], by_name["limit"]
    threads, gathered = by_name["sdk_threads"], by_name["sdk_async"]
    p_seconds = pipeline.at(n)
    p_status = pipeline.status_per_video or float("nan")
    d_status = gathered.status_per_video or float("nan")
    return [
        f"{tag}, {n} variants: pipeline {p_seconds:.1f} s, tuned floor {floor.at(n):.1f} s, "
        f"server-bound limit {limit.at(n):.1f} s, (d) AsyncOpenAI {gathered.at(n):.1f} s",
        f"{tag}: pipeline / tuned floor = {p_seconds / floor.at(n):.2f} (target at most 1.3: "
        f"{_verdict(p_seconds <= 1.3 * floor.at(n), p_seconds, floor.at(n))})",
        f"{tag}: pipeline / server-bound limit = {p_seconds / limit.at(n):.2f} (target at most "
        f"2: {_verdict(p_seconds <= 2 * limit.at(n), p_seconds, limit.at(n))}); "
        "tuned floor / limit = "
        f"{floor.at(n) / limit.at(n):.2f}",
        f"{tag}: pipeline / (d) AsyncOpenAI = {p_seconds / gathered.at(n):.2f} (target below 1: "
        f"{_verdict(p_seconds < gathered.at(n), p_seconds, gathered.at(n))})",
        f"{tag}: (c) 3 threads / pipeline = {threads.at(n) / p_seconds:.1f}; status requests "
        f"per video {p_status:.2f} for the pipeline vs {d_status:.2f} for (d)",
    ]
