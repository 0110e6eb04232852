"""The reduced chaos run CI makes on every change: 40 variants driven by the daemon from an
empty instance through Celery workers, one worker SIGKILLed in the middle of the submission
step and the daemon SIGKILLed mid-tick and restarted; afterwards nothing is lost, nothing is
paid twice, no media file is torn and no run is left running.

The full matrix (200 variants, every chaos case twice) is `python -m tests.cluster.chaos
--full`; docs/reliability.md holds its figures.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .chaos import problems, run_ci_scenario
from .cluster import Cluster, ClusterSettings

VARIANTS = 40


def test_cluster_survives_a_worker_kill_and_a_daemon_kill(
    tmp_path: Path, postgres_server_url: str, redis_url: str
) -> None:
    tmp_path.chmod(0o755)
    settings = ClusterSettings(
        variants=VARIANTS, requests_per_minute=300, visibility_timeout=20, media_scale=0.1
    )
    cluster = Cluster(tmp_path / "cluster", postgres_server_url, redis_url, settings)
    random.seed(VARIANTS)
    try:
        report = run_ci_scenario(cluster, settle_seconds=420)
        tail = cluster.log_tail()
    finally:
        cluster.stop()
    counts = report.counts
    assert counts is not None
    print(f"CLUSTER {json.dumps(report.as_dict())}")  # the figures docs/reliability.md quotes
    assert [case["case"] for case in report.cases] == [
        "worker SIGKILL mid-submission",
        "daemon SIGKILL mid-tick, restarted",
    ]
    assert counts.variants == VARIANTS
    assert counts.duplicate_jobs == 0, tail
    assert counts.lost == 0, tail
    assert counts.terminal == VARIANTS, tail
    assert counts.service_jobs == VARIANTS, tail
    assert counts.partial_media == 0, tail
    assert counts.unfinished_runs == 0, tail
    assert problems(counts) == [], tail
