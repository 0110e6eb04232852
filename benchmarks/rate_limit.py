"""Workload 6: `remix-pipeline run` against a server limited to R requests per minute.

The server's limit is a sliding window of R requests per 60 s, so a fresh window admits a
burst of R at once; utilisation is therefore reported both for the remix submissions alone
and for every request the run sent over its whole wall time.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.pipeline import PipelineFailed, run_pipeline
from benchmarks.plan import Plan
from benchmarks.report import Report, Row
from benchmarks.served import ServedService, ServiceSettings
from benchmarks.variants import variants


def submission_span(frame: pd.DataFrame) -> tuple[int, float]:
    """How many attempts of a lineage table were submitted, and the seconds from the first
    submission to the last (`submitted_at` is a UTC datetime column)."""
    submitted = frame["submitted_at"].dropna()
    if len(submitted) < 2:
        return len(submitted), 0.0
    return len(submitted), (submitted.max() - submitted.min()).total_seconds()


def rate_limit(plan: Plan, workdir: Path, report: Report) -> None:
    n, limit = plan.rate_limit_variants, plan.rate_limit_rpm
    settings = ServiceSettings(job_seconds=5.0, rpm_limit=limit)
    case = f"remix-pipeline run, server limit {limit} rpm"
    where = workdir / "rate-limit"
    with ServedService(settings, where / "server") as service:
        try:
            outcome = run_pipeline(service.url, variants(n, "rate"), where / "project")
        except PipelineFailed as exc:
            report.add(Row("6", case, str(n), None, "", "", str(exc)))
            return
        stats = service.stats()
    submitted, span = submission_span(pd.read_parquet(outcome.lineage_path))
    statuses = stats["statuses"]
    answered = sum(v for k, v in statuses.items() if k.startswith("2"))
    limited = int(statuses.get("429", 0))
    remix_limited = int(stats["by_operation"].get("remix", {}).get("429", 0))
    per_minute = (submitted - 1) / span * 60 if span > 0 else float("inf")
    report.add(
        Row(
            "6",
            case + ": remix submissions",
            str(n),
            per_minute if span > 0 else None,
            "submissions / min",
            f"{per_minute / limit:.2f}x limit" if span > 0 else "",
            f"first to last submission {span:.1f} s; {remix_limited} remix 429s"
            if span > 0
            else "all submitted within one clock tick",
        )
    )
    overall = answered / outcome.seconds * 60
    failed = n - outcome.completed
    report.findings.append(
        f"rate limit {limit} rpm, {n} variants: submissions "
        + (f"{per_minute / limit:.0%} of the limit" if span > 0 else "in one burst")
        + f", {failed} variants not completed (target at least 90% and zero failed: "
        + ("met" if span > 0 and per_minute >= 0.9 * limit and failed == 0 else "see note")
        + ")"
    )
    report.add(
        Row(
            "6",
            case + ": every request over the run",
            str(n),
            overall,
            "answered requests / min",
            f"{overall / limit:.2f}x limit",
            f"{outcome.seconds:.0f} s wall; {limited} answers were 429; "
            f"{outcome.completed} completed, {outcome.failed} failed, "
            f"{n - outcome.completed - outcome.failed} unfinished",
        )
    )
