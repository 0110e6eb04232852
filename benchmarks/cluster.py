"""Workload 9: the same variants through the local cluster (daemon, sensors, schedule, Celery
workers over Redis, PostgreSQL) and through `remix-pipeline run` in one process.

Both contenders get a fresh `remix-pipeline serve` with the same job timings and do the same
work: remix every variant, follow every job to its end, download the media and write the
lineage. The cluster's wall time runs from starting its processes on an empty instance to
every variant terminal with its media and the lineage written; the headless run's from
starting the command to its exit. Runs are counted in each one's Dagster storage.

    python -m benchmarks.cluster [--variants N] [--results benchmarks/RESULTS.md]

writes the "## Cluster (workload 9)" section at the end of RESULTS.md (replacing an older one
and nothing else); `python -m benchmarks.run --only 9` runs it among the others.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.plan import Plan
from benchmarks.report import Report, Row, ratio
from tests.cluster.cluster import (
    BIN,
    ROOT,
    Cluster,
    ClusterSettings,
    free_port,
    start_script_server,
    write_table,
)

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Cluster (workload 9)"
RUN_SECONDS = 1.0  # each job's duration at the service, for both contenders
WORKERS = 2


@dataclass(frozen=True)
class Contender:
    seconds: float
    dagster_runs: int
    terminal: int
    duplicates: int


def _servers(workdir: Path) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """A PostgreSQL and a Redis of the benchmark's own."""
    pg_env = {"REMIX_PIPELINE_PG_DIR": str(workdir / "postgres")}
    redis_env = {"REMIX_PIPELINE_REDIS_DIR": str(workdir / "redis")}
    # The default ports may belong to the test suite's servers: take free ones.
    pg_env["REMIX_PIPELINE_PG_PORT"] = str(free_port())
    redis_env["REMIX_PIPELINE_REDIS_PORT"] = str(free_port())
    postgres_url = start_script_server("postgres.sh", pg_env)
    return postgres_url, start_script_server("redis.sh", redis_env), pg_env, redis_env


def _stop_servers(pg_env: dict[str, str], redis_env: dict[str, str]) -> None:
    for script, env in (("redis.sh", redis_env), ("postgres.sh", pg_env)):
        subprocess.run(
            ["bash", str(ROOT / "scripts" / script), "stop"],
            env={**os.environ, **env},
            check=False,
            capture_output=True,
        )


def run_cluster(variants: int, workdir: Path) -> Contender:
    postgres_url, redis_url, pg_env, redis_env = _servers(workdir)
    settings = ClusterSettings(
        variants=variants,
        workers=WORKERS,
        run_seconds=RUN_SECONDS,
        # No chaos here: an hour, so a long media step is never delivered twice.
        visibility_timeout=3600,
        name="bench",
    )
    cluster = Cluster(workdir / "cluster", postgres_url, redis_url, settings)
    try:
        started = time.perf_counter()
        cluster.start()
        counts = cluster.wait_settled(3600)
        seconds = time.perf_counter() - started
    finally:
        cluster.stop()
        _stop_servers(pg_env, redis_env)
    return Contender(
        seconds, sum(counts.runs.values()), counts.terminal, counts.duplicate_jobs + counts.lost
    )


def run_headless(variants: int, workdir: Path) -> Contender:
    project = workdir / "headless"
    (project / "data").mkdir(parents=True)
    table = project / "data" / "requests.csv"
    write_table(table, variants, "bench")
    home = project / ".remix-pipeline"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DAGSTER_"))}
    env.update(
        REMIX_PIPELINE_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        OPENAI_API_KEY="bench-key",
        REMIX_PIPELINE_SERVE_API_KEY="bench-key",
    )
    (home / "dagster_home").mkdir(parents=True)
    serve = subprocess.Popen(
        [
            str(BIN / "remix-pipeline"),
            "serve",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--db={project / 'service.db'}",
            "--queued-seconds=0.2",
            f"--run-seconds={RUN_SECONDS}",
            "--poll-after-ms=200",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        started = time.perf_counter()
        with (project / "run.log").open("w") as log:
            subprocess.run(
                [str(BIN / "remix-pipeline"), "run", "--table", str(table), "--name", "bench"],
                cwd=project,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        seconds = time.perf_counter() - started
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    import sqlite3

    import dagster as dg

    from remix_pipeline.ledger import Ledger

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        runs = instance.get_runs_count()
    with Ledger(f"sqlite:///{home / 'ledger.db'}") as ledger:
        terminal = sum(1 for a in ledger.latest().values() if a.is_terminal)
    with sqlite3.connect(project / "service.db") as db:
        jobs = db.execute("SELECT count(*) FROM videos WHERE kind = 'remix'").fetchone()[0]
    return Contender(seconds, runs, terminal, int(jobs) - variants)


def measure(variants: int, workdir: Path, report: Report) -> list[Row]:
    headless = run_headless(variants, workdir)
    cluster = run_cluster(variants, workdir)
    n = f"{variants:,}"
    rows = [
        Row(
            "9",
            f"cluster: daemon, {WORKERS} Celery workers, PostgreSQL, Redis",
            n,
            cluster.seconds,
            "s wall",
            ratio(cluster.seconds, headless.seconds, "headless"),
            f"{cluster.terminal} terminal, {cluster.duplicates} duplicate or lost",
        ),
        Row(
            "9",
            "headless remix-pipeline run, one process",
            n,
            headless.seconds,
            "s wall",
            "",
            f"{headless.terminal} terminal, {headless.duplicates} extra jobs",
        ),
        Row(
            "9",
            "Dagster runs, cluster",
            n,
            cluster.dagster_runs,
            "runs",
            ratio(cluster.dagster_runs, headless.dagster_runs, "headless"),
        ),
        Row("9", "Dagster runs, headless", n, headless.dagster_runs, "runs"),
    ]
    for row in rows:
        report.add(row)
    return rows


def cluster_vs_headless(plan: Plan, workdir: Path, report: Report) -> None:
    """The workload as benchmarks.run calls it."""
    measure(40 if plan.quick else 1000, workdir / "cluster_vs_headless", report)


def write_section(results: Path, rows: list[Row], variants: int) -> None:
    """Put the section at the end of RESULTS.md, replacing an older one, nothing else."""
    report = Report(rows=rows)
    text = results.read_text() if results.exists() else ""
    if SECTION in text:
        text = text[: text.index(SECTION)]
    section = "\n".join(
        [
            SECTION,
            "",
            f"Written by `python -m benchmarks.cluster --variants {variants}` on "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')} (2 shared cores). Both contenders get a "
            f"fresh `remix-pipeline serve` (queued 0.2 s, running {RUN_SECONDS:g} s, "
            "poll-after 200 ms, no rate limit) and do the same work. The cluster is started "
            "from an empty instance and driven by the daemon alone (fan-out sensor, "
            "submission run, completion sensor, media runs, lineage by automation); its "
            "time ends when every variant is terminal with its media and the lineage holds "
            "them all.",
            "",
            report.markdown_table(),
            "",
        ]
    )
    results.write_text(text.rstrip("\n") + "\n\n" + section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="remix-bench-cluster-", dir="/var/tmp"))
    workdir.chmod(0o755)
    try:
        rows = measure(args.variants, workdir, Report())
        write_section(args.results, rows, args.variants)
        print(f"wrote {args.results}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
