"""How big each workload is: the full run, and the quick smoke test CI runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    quick: bool
    e2e_variants: int
    job_durations: tuple[float, ...]
    e2e_repeats: int
    # The sequential SDK patterns grow linearly; they get this much wall time per duration.
    sdk_budget_seconds: float
    sdk_max_variants: int
    tick_sizes: tuple[int, ...]
    tick_repeats: int
    runs_variants: int
    lineage_rows: int
    rate_limit_rpm: int
    rate_limit_variants: int
    service_seconds: float
    render_repeats: int

    def sdk_sample(self, job_seconds: float, threads: int) -> int:
        rounds = max(2, int(self.sdk_budget_seconds // (job_seconds + 1)))
        return min(self.sdk_max_variants, rounds * threads)


FULL = Plan(
    quick=False,
    e2e_variants=1000,
    job_durations=(60.0, 5.0),
    e2e_repeats=1,
    sdk_budget_seconds=120.0,
    sdk_max_variants=30,
    tick_sizes=(1000, 10_000, 50_000),
    tick_repeats=3,
    runs_variants=100,
    lineage_rows=100_000,
    rate_limit_rpm=600,
    rate_limit_variants=300,
    service_seconds=5.0,
    render_repeats=3,
)

QUICK = Plan(
    quick=True,
    e2e_variants=4,
    job_durations=(1.0,),
    e2e_repeats=1,
    sdk_budget_seconds=0.0,
    sdk_max_variants=2,
    tick_sizes=(20,),
    tick_repeats=1,
    runs_variants=3,
    lineage_rows=200,
    rate_limit_rpm=600,
    rate_limit_variants=4,
    service_seconds=0.5,
    render_repeats=1,
)
