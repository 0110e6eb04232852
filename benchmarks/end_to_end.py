"""Workloads 1, 2 and 4a: every contender end to end on its own fresh server, same settings.

The sequential SDK patterns grow linearly with N, so they run on a sample and their time is
extrapolated to N (marked as such). Ratios are against the floor measured in the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import contenders
from benchmarks.pipeline import run_pipeline
from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from benchmarks.served import ServedService, ServiceSettings
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
    seconds: list[float] = []
    status: list[float] = []
    outcome = None
    for repeat in range(repeats):
        where = workdir / f"{name}-{repeat}"
        with ServedService(settings, where / "server") as service:
            outcome = run(service.url, rows, where / "client")
            requests = service.status_requests()
        seconds.append(outcome.seconds)  # type: ignore[attr-defined]
        ended = outcome.completed  # type: ignore[attr-defined]
        status.append(requests / ended if ended else float("nan"))
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


def end_to_end(plan: Plan, workdir: Path, report: Report) -> None:
    n = plan.e2e_variants
    for job_seconds in plan.job_durations:
        settings = ServiceSettings(job_seconds=job_seconds)
        tag = f"job {job_seconds:g} s"
        base = workdir / f"e2e-{job_seconds:g}s"
        rows = variants(n, f"e2e{job_seconds:g}")
        sequential = rows[: plan.sdk_sample(job_seconds, 1)]
        threaded = rows[: plan.sdk_sample(job_seconds, 3)]
        results = [
            _measure("pipeline", _pipeline, rows, settings, base, plan.e2e_repeats),
            _measure("floor", contenders.floor, rows, settings, base, plan.e2e_repeats),
            _measure("sdk_async", contenders.sdk_async, rows, settings, base, plan.e2e_repeats),
            _measure("sdk_threads", contenders.sdk_threads, threaded, settings, base, 1),
            _measure("sdk_sequential", contenders.sdk_sequential, sequential, settings, base, 1),
        ]
        by_name = {m.name: m for m in results}
        floor_seconds = by_name["floor"].at(n)
        pipeline_seconds = by_name["pipeline"].at(n)
        labels = {
            "pipeline": "pipeline (remix-pipeline run)",
            "floor": "(a) floor: asyncio+httpx, bulk list polling",
            "sdk_sequential": "(b) openai SDK sequential remix+poll",
            "sdk_threads": "(c) openai SDK, 3 threads",
            "sdk_async": "(d) AsyncOpenAI, all gathered, videos.poll",
        }
        for m in results:
            extrapolated = m.sample != n
            note = (
                f"measured on {m.sample} variants, extrapolated linearly to {n}"
                if extrapolated
                else f"median of {plan.e2e_repeats} run(s)"
            )
            note += f"; {m.completed} completed, {m.failed} failed of {m.sample}"
            speed = ratio(m.at(n), pipeline_seconds, "pipeline") if m.name != "pipeline" else ""
            report.add(
                Row(
                    "1",
                    f"{labels[m.name]}, {tag}",
                    str(n),
                    m.at(n),
                    "s wall" + (" (extrapolated)" if extrapolated else ""),
                    "; ".join(filter(None, [ratio(m.at(n), floor_seconds, "floor"), speed])),
                    note,
                )
            )
        for m in results:
            report.add(
                Row(
                    "2",
                    f"{labels[m.name]}, {tag}",
                    str(m.sample),
                    m.status_per_video,
                    "status requests / completed video",
                    ratio(m.status_per_video, by_name["pipeline"].status_per_video, "pipeline"),
                    "retrieve + list requests counted by the server",
                )
            )
        pipeline = by_name["pipeline"]
        report.findings.extend(_targets(tag, by_name, n))
        runs = pipeline.dagster_runs or 0
        report.findings.append(
            f"{tag}: {runs} Dagster runs for {n} variants, {runs * 1000 / n:.1f} per 1,000 "
            f"(target at most 3: {_verdict(runs * 1000 / n <= 3)})"
        )
        report.add(
            Row(
                "4",
                f"Dagster runs launched by remix-pipeline run, {tag}",
                str(n),
                float(pipeline.dagster_runs or 0),
                "runs",
                f"{(pipeline.dagster_runs or 0) * 1000 / n:.1f} per 1,000 variants",
                "every run in the experiment's Dagster instance",
            )
        )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _targets(tag: str, by_name: dict[str, Measured], n: int) -> list[str]:
    pipeline, floor = by_name["pipeline"], by_name["floor"]
    threads, gathered = by_name["sdk_threads"], by_name["sdk_async"]
    p_seconds = pipeline.at(n)
    p_status = pipeline.status_per_video or float("nan")
    d_status = gathered.status_per_video or float("nan")
    return [
        f"{tag}: pipeline / floor = {p_seconds / floor.at(n):.2f} (target at most 1.3: "
        f"{_verdict(p_seconds <= 1.3 * floor.at(n))})",
        f"{tag}: (c) 3 threads / pipeline = {threads.at(n) / p_seconds:.1f} (target at least 20: "
        f"{_verdict(threads.at(n) >= 20 * p_seconds)})",
        f"{tag}: pipeline / (d) async = {p_seconds / gathered.at(n):.2f} (target at most 1: "
        f"{_verdict(p_seconds <= gathered.at(n))}); status requests per video "
        f"{p_status:.2f} vs {d_status:.2f} (target at most 1/20 of (d): "
        f"{_verdict(p_status * 20 <= d_status)}; at most 1.2: {_verdict(p_status <= 1.2)})",
    ]
