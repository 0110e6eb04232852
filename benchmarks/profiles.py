"""Profiles behind benchmarks/PROFILES.md: `python -m benchmarks.profiles tick|lineage N DIR`.

A development tool, not a workload: it prepares the same inputs as workloads 3 and 5 (the
same `prepare`/`fill` functions), then runs the measured call once under a sampling profiler
(pyinstrument when installed, else cProfile) and once under tracemalloc for the allocation
sites, and writes both as text under DIR. Kept beside the harness so the profiles that a
design change is argued from can be taken again after it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

TOP_ALLOCATIONS = 25


def _profiled(call: Callable[[], object], out: Path) -> float:
    """Run `call` under pyinstrument (or cProfile) and write the call tree; wall seconds."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.runcall(call)
        seconds = time.perf_counter() - started
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(60)
        out.write_text(text.getvalue())
        return seconds
    profiler = Profiler(interval=0.005)
    started = time.perf_counter()
    profiler.start()
    call()
    profiler.stop()
    seconds = time.perf_counter() - started
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return seconds


def _allocations(call: Callable[[], object], out: Path) -> None:
    """Run `call` under tracemalloc; write its peak and the allocation sites of what it
    returns and leaves behind (the snapshot is taken with the result still alive)."""
    tracemalloc.start(8)
    result = call()
    _, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del result
    lines = [f"tracemalloc peak during the call: {peak / 2**20:.0f} MiB", ""]
    for stat in snapshot.statistics("lineno")[:TOP_ALLOCATIONS]:
        lines.append(f"{stat.size / 2**20:8.1f} MiB  {stat.count:>9} blocks  {stat.traceback}")
    out.write_text("\n".join(lines) + "\n")


def profile_tick(count: int, where: Path) -> None:
    import dagster as dg

    from benchmarks.sensor_tick import NAME, URL_ENV, _settings, prepare
    from benchmarks.served import ServedService, ServiceSettings
    from remix_pipeline.definitions.build import build_experiment_definitions
    from remix_pipeline.definitions.headless import ensure_dagster_home

    where.mkdir(parents=True, exist_ok=True)
    with ServedService(ServiceSettings(job_seconds=3600.0), where / "server") as service:
        # A directory workload 3 left behind (`--workdir`) is profiled as it is: its server
        # database still holds the jobs (an hour long) and its ledger the attempts.
        if not (where / "ledger.db").exists():
            started = time.perf_counter()
            prepare(service.url, count, where)
            print(f"prepared {count} jobs in {time.perf_counter() - started:.0f} s", flush=True)
        os.environ[URL_ENV] = service.url
        os.environ["DAGSTER_HOME"] = str(where / "dagster_home")
        ensure_dagster_home()
        settings = _settings(where)
        with dg.DagsterInstance.get() as instance, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            defs = build_experiment_definitions(settings)
            sensor = defs.get_sensor_def(f"{NAME}_completion_sensor")

            def tick() -> None:
                sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))

            tick()  # the first tick of a process also pays for imports and caches
            seconds = _profiled(tick, where / f"tick-{count}.profile.txt")
            print(f"profiled tick: {seconds:.1f} s", flush=True)
            _allocations(tick, where / f"tick-{count}.alloc.txt")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def lineage_steps(path: Path, out: Path) -> None:
    """The lineage build step by step, with the memory each step holds and peaks at.

    tracemalloc sees Python objects only; pandas keeps strings in Arrow buffers, which it
    does not see, so the process's RSS and high-water mark are written beside it."""
    import sqlite3

    import pyarrow as pa

    from remix_pipeline.ledger import Ledger
    from remix_pipeline.lineage import build_lineage_frame

    lines = [
        f"{'step':<44}{'s':>7}{'py peak':>10}{'RSS':>8}{'HWM':>8}{'arrow':>8}  (MiB)",
    ]
    held: list[object] = []

    def step(name: str, call: Callable[[], object]) -> object:
        tracemalloc.reset_peak()
        started = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        held.append(result)
        lines.append(
            f"{name:<44}{seconds:>7.2f}{peak / 2**20:>10.0f}{_status_mib('VmRSS'):>8.0f}"
            f"{_status_mib('VmHWM'):>8.0f}{pa.total_allocated_bytes() / 2**20:>8.0f}"
        )
        return result

    tracemalloc.start(1)
    step("(start)", lambda: None)
    with sqlite3.connect(path) as db:
        step("sqlite3 fetchall attempts (reference)", db.execute("SELECT * FROM attempts").fetchall)
        held.clear()
    with Ledger.for_path(path) as ledger:
        step("Ledger.lineage_columns (ADBC into Arrow)", ledger.lineage_columns)
        held.clear()
        step("(after dropping them)", lambda: None)
        step("build_lineage_frame (whole)", lambda: build_lineage_frame(ledger))
    tracemalloc.stop()
    out.write_text("\n".join(lines) + "\n")


def profile_lineage(count: int, where: Path) -> None:
    from benchmarks.lineage_build import fill
    from remix_pipeline.ledger import Ledger
    from remix_pipeline.lineage import build_lineage_frame

    where.mkdir(parents=True, exist_ok=True)
    path = where / f"lineage-{count}.db"
    if not path.exists():
        started = time.perf_counter()
        fill(path, count)
        print(f"filled {count} attempts in {time.perf_counter() - started:.0f} s", flush=True)
    # The memory steps first, while this process holds nothing else.
    lineage_steps(path, where / f"lineage-{count}.steps.txt")
    with Ledger.for_path(path) as ledger:
        seconds = _profiled(
            lambda: build_lineage_frame(ledger), where / f"lineage-{count}.profile.txt"
        )
        print(f"profiled build: {seconds:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiles", description=__doc__)
    parser.add_argument("what", choices=("tick", "lineage"))
    parser.add_argument("count", type=int)
    parser.add_argument("where", type=Path)
    args = parser.parse_args(argv)
    {"tick": profile_tick, "lineage": profile_lineage}[args.what](args.count, args.where)
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
