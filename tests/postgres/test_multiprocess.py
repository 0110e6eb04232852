"""The submission step under Dagster's multiprocess executor, with Dagster storage, the
ledger and a concurrency pool all on PostgreSQL, as a cluster runs it.

Two `dagster job execute` processes over the same variants start together while the test
holds the pool's only slot: both steps wait (and send nothing) until the slot is free, then
run one after the other, each in its own step process, so the second finds every variant
already paid for.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.definitions.sensors import RANGE_END_TAG, RANGE_START_TAG
from remix_pipeline.ledger import Ledger
from remix_pipeline.lineage import read_lineage
from remix_pipeline.request_table import read_request_table
from tests.support.jobs import remix_jobs
from tests.support.postgres import postgres_instance
from tests.support.projects import write_service_settings, write_table

from . import multiprocess_job
from .multiprocess_job import LEDGER_ENV, NAME, POOL, TABLE_ENV, experiment_settings

DAGSTER = Path(sys.executable).parent / "dagster"
VARIANTS = 6
BLOCKED = f"Step blocked by limit for pool {POOL}"
LAUNCH_TAG = "remix_pipeline_test/launch"
ACTIONS = ("submitted", "already_done", "adopted", "busy")


def launch(project: Path, tags: dict[str, str]) -> subprocess.Popen[bytes]:
    """`dagster job execute` of the submission job, as a user or a run launcher starts it."""
    log = (project / f"launch-{tags[LAUNCH_TAG]}.log").open("wb")
    return subprocess.Popen(
        [
            str(DAGSTER),
            "job",
            "execute",
            "-f",
            multiprocess_job.__file__,
            "-a",
            "remix_job",
            "--tags",
            json.dumps(tags),
        ],
        cwd=project,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def launched_runs(instance: dg.DagsterInstance) -> dict[str, dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={LAUNCH_TAG: ["a", "b"]}))
    return {run.tags[LAUNCH_TAG]: run for run in runs}


def blocked_runs(instance: dg.DagsterInstance) -> set[str]:
    """Launch tags of the runs whose submission step logged that the pool blocked it."""
    return {
        tag
        for tag, run in launched_runs(instance).items()
        if any(BLOCKED in (e.message or "") for e in instance.all_logs(run.run_id))
    }


def wait_until(
    condition: Callable[[], bool], processes: list[subprocess.Popen[bytes]], what: str
) -> None:
    """Wait for `condition` while every launched process still runs (at most 2 min)."""
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.2)


def jobs_so_far(project: Path) -> list[tuple[str, str]]:
    """Remix jobs on the service; none while no process has opened the service yet."""
    try:
        return remix_jobs(project)
    except sqlite3.OperationalError:
        return []


def step_counts(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """The submission step's outcome counts, from its materialization's metadata."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    metadata = events[0].asset_materialization.metadata
    return {action: int(metadata[action].value) for action in ACTIONS if action in metadata}


def ran_in_step_processes(instance: dg.DagsterInstance, run_id: str) -> bool:
    return bool(instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTED))


def test_two_multiprocess_runs_queue_on_the_pool_and_pay_once_per_variant(
    project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"video_src_dunes,v{i},Dunes variation number {i},t,1" for i in range(VARIANTS)]
    table = write_table(project / "data" / "requests.csv", rows)
    write_service_settings(project / ".remix-pipeline", faults={"latency_ms": 100})
    monkeypatch.setenv(TABLE_ENV, str(table))
    monkeypatch.setenv(LEDGER_ENV, postgres_url)
    keys = [r.key for r in read_request_table(table).requests]
    home = project / ".remix-pipeline" / "dagster_home"
    with postgres_instance(home, postgres_url) as instance:
        instance.add_dynamic_partitions(f"{NAME}_variants", keys)
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        instance.event_log_storage.claim_concurrency_slot(POOL, "holder", "holder")
        range_tags = {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}
        processes = [launch(project, {**range_tags, LAUNCH_TAG: tag}) for tag in ("a", "b")]
        try:
            wait_until(lambda: blocked_runs(instance) == {"a", "b"}, processes, "both blocked")
            sent_while_blocked = jobs_so_far(project)
        finally:
            instance.event_log_storage.free_concurrency_slot_for_step("holder", "holder")
            codes = [p.wait(timeout=300) for p in processes]
        runs = launched_runs(instance)
        counts = sorted((step_counts(instance, r.run_id) for r in runs.values()), key=str)
        own_processes = [ran_in_step_processes(instance, r.run_id) for r in runs.values()]
        pool = instance.event_log_storage.get_concurrency_info(POOL)
        summary = HeadlessRunner(experiment_settings(), instance, poll_seconds=0.1).run(
            timeout_seconds=120
        )

    logs = "\n".join((project / f"launch-{t}.log").read_text()[-2000:] for t in ("a", "b"))
    assert codes == [0, 0], logs
    assert sent_while_blocked == []
    assert {r.status for r in runs.values()} == {dg.DagsterRunStatus.SUCCESS}
    assert own_processes == [True, True]
    assert counts == [{"already_done": VARIANTS}, {"submitted": VARIANTS}]
    assert (pool.slot_count, pool.active_slot_count) == (1, 0)
    jobs = remix_jobs(project)
    assert sorted(jobs) == sorted(
        ("video_src_dunes", f"Dunes variation number {i}") for i in range(VARIANTS)
    )
    with Ledger(postgres_url) as ledger:
        keys_in_ledger = ledger.lineage_columns()["key"].to_pylist()
    assert sorted(keys_in_ledger) == sorted(keys)  # one attempt each
    assert summary.finished
    assert set(read_lineage(summary.lineage_path)["state"]) == {"completed"}
    assert remix_jobs(project) == jobs
