"""How big each workload is: the full run (the sizes of issue 16), and the quick smoke test CI
runs. Also the grid of floor settings the harness sweeps, since it is part of the plan."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class FloorSetting:
    """How the floor spreads its HTTP work: `clients` independent httpx clients (pools) of
    `connections` keep-alive connections each, `concurrency` requests in flight in all (0:
    connections x clients), and the event loop. Several small pools are a choice because
    httpx's pool scans its connections on every request and every release."""

    connections: int
    clients: int = 1
    concurrency: int = 0
    uvloop: bool = False

    @property
    def in_flight(self) -> int:
        return self.concurrency or self.connections * self.clients

    def describe(self) -> str:
        loop = ", uvloop" if self.uvloop else ""
        return (
            f"{self.clients} client(s) x {self.connections} connections, "
            f"{self.in_flight} in flight{loop}"
        )


# The floor of the first round (issue 6): one client, 64 connections, 64 in flight.
UNTUNED = FloorSetting(connections=64)


@dataclass(frozen=True)
class Plan:
    quick: bool
    e2e_variants: int
    job_durations: tuple[float, ...]
    e2e_repeats: int
    # The floor settings tried, each once, at `sweep_variants` with the last job duration.
    sweep_variants: int
    sweep: tuple[FloorSetting, ...]
    # Workload 1b: the pipeline with Dagster storage on PostgreSQL, against the floor.
    postgres_variants: int
    # The sequential SDK patterns grow linearly; they get this much wall time per duration.
    sdk_budget_seconds: float
    sdk_max_variants: int
    tick_sizes: tuple[int, ...]
    tick_repeats: int
    runs_variants: int  # one run per partition against the range run
    runs_sizes: tuple[int, ...]  # Dagster runs of `remix-pipeline run` at each size
    lineage_sizes: tuple[int, ...]
    rate_limit_rpm: int
    rate_limit_variants: int
    service_seconds: float
    render_repeats: int

    def sdk_sample(self, job_seconds: float, threads: int) -> int:
        rounds = max(2, int(self.sdk_budget_seconds // (job_seconds + 1)))
        return min(self.sdk_max_variants, rounds * threads)

    def with_e2e_variants(self, count: int) -> Plan:
        """The plan with workload 1 (and the run counts taken from it) at `count` variants."""
        sizes = tuple(sorted({*(n for n in self.runs_sizes if n < count), count}))
        return replace(self, e2e_variants=count, runs_sizes=sizes)


SWEEP = (
    UNTUNED,
    FloorSetting(connections=8),
    FloorSetting(connections=16),
    FloorSetting(connections=32),
    FloorSetting(connections=8, clients=4),
    FloorSetting(connections=16, uvloop=True),
)

FULL = Plan(
    quick=False,
    e2e_variants=10_000,
    job_durations=(5.0,),
    e2e_repeats=1,
    sweep_variants=500,
    sweep=SWEEP,
    postgres_variants=1000,
    sdk_budget_seconds=60.0,
    sdk_max_variants=30,
    tick_sizes=(10_000, 100_000),
    tick_repeats=3,
    runs_variants=100,
    runs_sizes=(100, 1000, 10_000),
    lineage_sizes=(100_000, 1_000_000),
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
    sweep_variants=4,
    sweep=(UNTUNED, FloorSetting(connections=4, clients=2)),
    postgres_variants=4,
    sdk_budget_seconds=0.0,
    sdk_max_variants=2,
    tick_sizes=(20,),
    tick_repeats=1,
    runs_variants=3,
    runs_sizes=(4,),
    lineage_sizes=(200, 400),
    rate_limit_rpm=600,
    rate_limit_variants=4,
    service_seconds=0.5,
    render_repeats=1,
)
