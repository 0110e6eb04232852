"""The chaos matrix on the local cluster, as one command.

    python -m tests.cluster.chaos --full     # 200 variants, every chaos case twice
    python -m tests.cluster.chaos            # the CI scenario: 40 variants, one worker
                                             # kill and one daemon kill

The full matrix starts a PostgreSQL and a Redis of its own (scripts/postgres.sh and
scripts/redis.sh with their own directories and ports), since it stops both: the servers the
test suite shares are never touched. It prints one JSON line of counts and what each chaos
case did, and exits non-zero when a count is wrong.

The variants arrive in waves (the table grows while the cluster runs, as a user's table
does), so that each wave has a submission step for a worker to be killed in.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import ROOT, Cluster, ClusterSettings, Counts, start_script_server


@dataclass
class ChaosReport:
    """What was done and what was found."""

    cases: list[dict[str, object]] = field(default_factory=list)
    counts: Counts | None = None
    wall_seconds: float = 0.0

    def add(self, case: str, started: float, **detail: object) -> None:
        self.cases.append({"case": case, "at_seconds": round(started, 1), **detail})

    def as_dict(self) -> dict[str, object]:
        return {
            "wall_seconds": round(self.wall_seconds, 1),
            "cases": self.cases,
            "counts": self.counts.as_dict() if self.counts else None,
        }


def problems(counts: Counts) -> list[str]:
    """Every count that says something was lost, paid twice, torn or stuck."""
    wrong = []
    if counts.duplicate_jobs:
        wrong.append(f"{counts.duplicate_jobs} duplicate jobs at the service")
    if counts.stray_jobs:
        wrong.append(f"{counts.stray_jobs} jobs at the service for no variant")
    if counts.lost:
        wrong.append(f"{counts.lost} variants without a terminal attempt")
    if counts.terminal != counts.variants:
        wrong.append(f"{counts.terminal}/{counts.variants} variants terminal")
    if counts.service_jobs != counts.variants:
        wrong.append(f"{counts.service_jobs} jobs at the service for {counts.variants} variants")
    if counts.media_missing:
        wrong.append(f"{counts.media_missing} completed variants without media")
    if counts.partial_media:
        wrong.append(f"{counts.partial_media} partial or unrecorded media files")
    if counts.unfinished_runs:
        wrong.append(f"{counts.unfinished_runs} runs not finished")
    if counts.lineage_rows < counts.variants:
        wrong.append(f"lineage has {counts.lineage_rows} rows for {counts.variants} variants")
    return wrong


def run_ci_scenario(cluster: Cluster, settle_seconds: float = 600) -> ChaosReport:
    """One SIGKILLed worker in the submission step, one SIGKILLed daemon mid-tick."""
    report = ChaosReport()
    began = time.monotonic()
    cluster.start()
    worker = cluster.kill_worker_mid_submission()
    report.add("worker SIGKILL mid-submission", time.monotonic() - began, worker=worker)
    time.sleep(random.uniform(1, 8))
    at = time.monotonic() - began
    ticks = cluster.kill_daemon_mid_tick()
    report.add("daemon SIGKILL mid-tick, restarted", at, ticks_in_progress=ticks)
    report.counts = cluster.wait_settled(settle_seconds)
    report.wall_seconds = time.monotonic() - began
    return report


def run_full_matrix(
    cluster: Cluster,
    postgres_env: dict[str, str],
    redis_env: dict[str, str],
    waves: int = 2,
    settle_seconds: float = 1800,
) -> ChaosReport:
    """Every chaos case twice, at random moments: a wave per worker kill, the other cases
    shuffled between the waves' submissions."""
    report = ChaosReport()
    began = time.monotonic()
    total = cluster.settings.variants
    cluster.settings.variants = total // waves
    cluster.start()
    others: list[tuple[str, Callable[[], dict[str, object]]]] = [
        ("PostgreSQL restart", lambda: cluster.restart_postgres(postgres_env) or {}),
        ("daemon SIGKILL mid-tick, restarted", lambda: {"ticks": cluster.kill_daemon_mid_tick()}),
        ("broker stopped 30 s", lambda: cluster.stop_broker(redis_env, 30) or {}),
    ]
    for wave in range(waves):
        if wave:
            cluster.grow_table(total * (wave + 1) // waves)
        worker = cluster.kill_worker_mid_submission(seconds=300)
        report.add(
            "worker SIGKILL mid-submission", time.monotonic() - began, worker=worker, wave=wave
        )
        for name, action in random.sample(others, len(others)):
            time.sleep(random.uniform(2, 12))
            at = time.monotonic() - began
            detail = action()
            report.add(name, at, wave=wave, **detail)
    report.counts = cluster.wait_settled(settle_seconds)
    report.wall_seconds = time.monotonic() - began
    return report


def _stop_server(script: str, env: dict[str, str]) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / script), "stop"], env={**os.environ, **env}, check=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="200 variants, each case twice")
    parser.add_argument("--variants", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    root = Path(tempfile.mkdtemp(prefix="remix-cluster-", dir="/var/tmp"))
    say = lambda message: print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: E731
    # Servers of its own: the matrix stops and restarts them.
    postgres_env = {
        "REMIX_PIPELINE_PG_DIR": str(root / "postgres"),
        "REMIX_PIPELINE_PG_PORT": os.environ.get("REMIX_CLUSTER_PG_PORT", "55442"),
    }
    redis_env = {
        "REMIX_PIPELINE_REDIS_DIR": str(root / "redis"),
        "REMIX_PIPELINE_REDIS_PORT": os.environ.get("REMIX_CLUSTER_REDIS_PORT", "56389"),
    }
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    settings = ClusterSettings(
        variants=args.variants or (200 if args.full else 40),
        workers=args.workers,
        requests_per_minute=600 if args.full else 300,
        visibility_timeout=30 if args.full else 20,
        media_scale=None if args.full else 0.1,
    )
    cluster: Cluster | None = None
    try:
        postgres_url = start_script_server("postgres.sh", postgres_env)
        redis_url = start_script_server("redis.sh", redis_env)
        say(f"seed {seed}; servers up; cluster in {root}")
        cluster = Cluster(root / "cluster", postgres_url, redis_url, settings, log=say)
        if args.full:
            report = run_full_matrix(cluster, postgres_env, redis_env)
        else:
            report = run_ci_scenario(cluster)
        assert report.counts is not None
        wrong = problems(report.counts)
        print(json.dumps({"seed": seed, **report.as_dict(), "problems": wrong}))
        if wrong:
            print(cluster.log_tail(), file=sys.stderr)
        return 1 if wrong else 0
    finally:
        if cluster is not None:
            cluster.stop()
        _stop_server("redis.sh", redis_env)
        _stop_server("postgres.sh", postgres_env)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
