"""Workload 4: how many Dagster runs `remix-pipeline run` launches at each planned size (the
issue asks for a count independent of N; sizes workload 1 already ran are not run again),
and submitting N variants as the pipeline does (one run over a partition range, launched by
its fan-out sensor) against one Dagster run per partition, both timed."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import dagster as dg

from benchmarks.child import in_child
from benchmarks.contenders import BENCH_KEY
from benchmarks.pipeline import run_pipeline
from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from benchmarks.served import ServedService, ServiceSettings
from benchmarks.variants import variants, write_request_table
from remix_pipeline.definitions.headless import SILENT_CONSOLE, HeadlessRunner, ensure_dagster_home
from remix_pipeline.definitions.keys import EXPERIMENT_TAG
from remix_pipeline.definitions.runs import process_tags
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.ledger import AttemptState
from remix_pipeline.request_table import read_request_table

NAME = "runs"


def submit(url: str, count: int, project: Path, per_partition: bool) -> dict[str, float]:
    """Submit `count` variants in a fresh project; wall time of the submission runs only."""
    home = project / ".remix-pipeline"
    os.environ.update(
        REMIX_PIPELINE_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        OPENAI_BASE_URL=url,
        OPENAI_API_KEY=BENCH_KEY,
    )
    ensure_dagster_home()
    table = write_request_table(project / "requests.csv", variants(count, "runs"))
    settings = ExperimentSettings(name=NAME, table=str(table))
    with dg.DagsterInstance.get() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = HeadlessRunner(settings, instance)
        keys = runner.session.keys
        runner.execute([keys.request_table])
        partition_keys = [r.key for r in read_request_table(table).requests]
        instance.add_dynamic_partitions(keys.partitions.name, partition_keys)
        runs_before = instance.get_runs_count()
        started = time.perf_counter()
        if per_partition:
            for key in partition_keys:
                runner.job.execute_in_process(
                    instance=instance,
                    asset_selection=[keys.submissions],
                    partition_key=key,
                    tags={**process_tags(), EXPERIMENT_TAG: NAME},
                    run_config=SILENT_CONSOLE,
                )
        else:
            runner.evaluate_sensor(f"{NAME}_fanout_sensor")
        seconds = time.perf_counter() - started
        runs = instance.get_runs_count() - runs_before
        latest = runner.session.ledger().latest(partition_keys)
    submitted = sum(a.state is AttemptState.SUBMITTED for a in latest.values())
    return {"seconds": seconds, "runs": float(runs), "submitted": float(submitted)}


def runs_by_size(plan: Plan, workdir: Path, report: Report) -> None:
    """Run the pipeline at each planned size not measured yet; one row per size."""
    settings = ServiceSettings(job_seconds=plan.job_durations[-1])
    for size in plan.runs_sizes:
        if size in report.dagster_runs:
            continue
        where = workdir / f"runs-at-{size}"
        with ServedService(settings, where / "server") as service:
            (where / "project").mkdir(parents=True, exist_ok=True)
            outcome = run_pipeline(service.url, variants(size, f"runs{size}"), where / "project")
        report.dagster_runs[size] = outcome.dagster_runs
        report.add(
            Row(
                "4",
                f"Dagster runs launched by remix-pipeline run, job {settings.job_seconds:g} s",
                str(size),
                float(outcome.dagster_runs),
                "runs",
                "",
                f"{outcome.seconds:.0f} s wall; {outcome.completed} completed of {size}",
            )
        )
    counts = {size: report.dagster_runs[size] for size in plan.runs_sizes}
    same = len(set(counts.values())) == 1
    report.findings.append(
        "Dagster runs of remix-pipeline run by variant count: "
        + ", ".join(f"{size:,}: {runs}" for size, runs in counts.items())
        + f" (target the same at every size: {'met' if same else 'NOT met'})"
    )


def partition_runs(plan: Plan, workdir: Path, report: Report) -> None:
    runs_by_size(plan, workdir, report)
    n = plan.runs_variants
    settings = ServiceSettings(job_seconds=600.0)
    results: dict[bool, dict[str, float]] = {}
    for per_partition in (False, True):
        where = workdir / f"runs-{'each' if per_partition else 'range'}"
        with ServedService(settings, where / "server") as service:
            results[per_partition], _, _ = in_child(
                submit, service.url, n, where / "project", per_partition
            )
    range_seconds = results[False]["seconds"]
    cases = {
        False: "submission via the fan-out sensor (one range run)",
        True: "one Dagster run per partition",
    }
    for per_partition, result in results.items():
        report.add(
            Row(
                "4",
                cases[per_partition],
                str(n),
                result["seconds"],
                "s wall to submit",
                ratio(result["seconds"], range_seconds, "range run"),
                f"{result['runs']:.0f} runs launched; {result['submitted']:.0f}/{n} submitted",
            )
        )
