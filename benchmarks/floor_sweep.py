"""The tuned floor: contender (a) under each floor setting of the plan's grid, each on its own
fresh server, at a moderate N; the fastest is the floor every end-to-end ratio is taken
against (issue 16: "a floor that the product beats is not a floor")."""

from __future__ import annotations

from pathlib import Path

from benchmarks import contenders
from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from benchmarks.served import ServedService, ServiceSettings
from benchmarks.variants import variants


def floor_sweep(plan: Plan, workdir: Path, report: Report) -> None:
    """Run the sweep (once per harness run) and record the best setting in `report`."""
    if report.best_floor is not None:
        return
    job_seconds = plan.job_durations[-1]
    n = plan.sweep_variants
    rows = variants(n, "sweep")
    measured: list[tuple[contenders.FloorSetting, contenders.Outcome]] = []
    for i, setting in enumerate(plan.sweep):
        where = workdir / "sweep" / str(i)
        with ServedService(ServiceSettings(job_seconds=job_seconds), where / "server") as service:
            outcome = contenders.floor(service.url, rows, where / "client", setting=setting)
        measured.append((setting, outcome))
    complete = [(s, o) for s, o in measured if o.completed + o.failed == n] or measured
    best, best_outcome = min(complete, key=lambda pair: pair[1].seconds)
    report.best_floor = best
    report.floor_seconds[n] = best_outcome.seconds
    for setting, outcome in measured:
        roles = []
        if setting == plan.sweep[0]:
            roles.append("the untuned floor of issue 6")
        if setting == best:
            roles.append("fastest: the tuned floor")
        report.add(
            Row(
                "1",
                f"floor sweep: {setting.describe()}, job {job_seconds:g} s",
                str(n),
                outcome.seconds,
                "s wall",
                ratio(outcome.seconds, best_outcome.seconds, "tuned floor"),
                "; ".join(
                    [*roles, f"{outcome.completed} completed, {outcome.failed} failed of {n}"]
                ),
            )
        )
    untuned = measured[0][1].seconds
    report.findings.append(
        f"floor sweep at {n} variants, job {job_seconds:g} s: fastest {best.describe()} "
        f"({best_outcome.seconds:.1f} s) against the untuned {plan.sweep[0].describe()} "
        f"({untuned:.1f} s): {untuned / best_outcome.seconds:.2f}x"
    )
