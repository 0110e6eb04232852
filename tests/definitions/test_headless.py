"""`remix-pipeline run`'s engine, end to end on the real embedded service and a real instance."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from remix_pipeline import tracking
from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.lineage import read_lineage
from tests.support.jobs import remix_jobs
from tests.support.projects import SAMPLE_ROWS, write_service_settings, write_table


def run(settings: ExperimentSettings, instance: dg.DagsterInstance) -> pd.DataFrame:
    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    assert summary.finished
    return read_lineage(summary.lineage_path)


def latest(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["key", "attempt"]).groupby("key").tail(1)


def test_run_ends_with_every_variant_terminal_and_media_matching_the_table(settings, instance):
    frame = run(settings, instance)

    assert len(frame) == 4  # three rows, one with two replicates
    assert set(frame["state"]) == {"completed"}
    assert set(frame["status"]) == {"completed"}
    for row in frame.itertuples():
        for variant in ("video", "thumbnail", "spritesheet"):
            path = Path(getattr(row, f"{variant}_path"))
            assert hashlib.sha256(path.read_bytes()).hexdigest() == getattr(
                row, f"{variant}_sha256"
            )
    assert (frame["remixed_from_video_id"] == frame["source_video_id"]).all()


def test_each_submitted_partition_carries_metadata_that_does_not_grow_with_the_table(
    settings, instance
):
    # One range run stores its metadata once per partition: a per-variant map in it made a
    # 10,000-variant run write 10,000 copies of a 10,000-entry map.
    run(settings, instance)

    records = instance.fetch_materializations(dg.AssetKey(["t", "submissions"]), limit=100)
    assert len(records.records) == 4
    for record in records.records:
        metadata = record.asset_materialization.metadata
        assert metadata["variants"].value == 4
        assert all(len(str(value.value)) < 100 for value in metadata.values()), metadata


def test_the_media_run_shows_a_preview_on_every_variant_as_its_batches_are_committed(
    settings, instance, monkeypatch
):
    monkeypatch.setattr(tracking, "RECORDS_PER_COMMIT", 3)  # one attempt per batch
    frame = run(settings, instance)

    media_runs = {
        r.run_id
        for r in instance.get_runs()
        if dg.AssetKey(["t", "media"]) in (r.asset_selection or ())
    }
    observed = instance.fetch_observations(dg.AssetKey(["t", "videos"]), limit=100).records
    assert all(o.run_id in media_runs for o in observed)
    assert sorted(o.partition_key for o in observed) == sorted(frame["key"])
    for record in observed:
        preview = record.asset_observation.metadata["preview"].value
        assert preview.count("data:image/webp;base64,") == 2  # thumbnail and filmstrip


def test_when_the_last_jobs_end_their_media_are_fetched_by_the_final_run_with_the_lineage(
    settings, instance
):
    write_table(settings.table_path, SAMPLE_ROWS[:1])  # one job: it ends in one tick

    frame = run(settings, instance)

    media_runs = [
        r for r in instance.get_runs() if dg.AssetKey(["t", "media"]) in (r.asset_selection or ())
    ]
    assert len(media_runs) == 1
    assert dg.AssetKey(["t", "lineage"]) in (media_runs[0].asset_selection or ())
    assert Path(frame["video_path"].iloc[0]).is_file()


def test_running_again_submits_nothing(project, settings, instance):
    run(settings, instance)
    jobs_before = remix_jobs(project)

    frame = run(settings, instance)

    assert remix_jobs(project) == jobs_before
    assert len(jobs_before) == 4
    assert len(frame) == 4


def test_adding_a_row_submits_exactly_one_job(project, settings, instance):
    run(settings, instance)
    write_table(settings.table_path, [*SAMPLE_ROWS, "video_src_city,sepia,Tint it sepia,t,1"])

    frame = run(settings, instance)

    jobs = remix_jobs(project)
    assert len(jobs) == 5
    assert jobs[-1] == ("video_src_city", "Tint it sepia")
    assert len(frame) == 5


def test_changing_a_prompt_submits_one_job_and_keeps_the_old_attempt(project, settings, instance):
    run(settings, instance)
    changed = [SAMPLE_ROWS[0].replace("film noir", "neo-noir"), *SAMPLE_ROWS[1:]]
    write_table(settings.table_path, changed)

    frame = run(settings, instance)

    jobs = remix_jobs(project)
    assert len(jobs) == 5
    assert jobs[-1] == ("video_src_harbor", "Re-grade as 1940s neo-noir")
    assert "Re-grade as 1940s film noir" in set(frame["prompt"])  # the old variant's record stays
    assert len(frame) == 5


def test_a_failed_video_is_a_row_outcome_not_a_failed_run(project, settings, instance):
    write_service_settings(project / ".remix-pipeline", faults={"moderation_terms": ["anime"]})

    frame = run(settings, instance)

    failed = frame[frame["state"] == "failed"]
    assert len(failed) == 2  # the anime row has two replicates
    assert set(failed["error_code"]) == {"moderation_blocked"}
    assert failed["video_path"].isna().all()
    assert set(frame.loc[frame["state"] == "completed", "variant"]) == {"noir"}


def test_a_source_unknown_to_the_server_becomes_a_failed_row_with_its_404_message(
    project, settings, instance
):
    write_table(settings.table_path, [*SAMPLE_ROWS, "video_missing,x,Anything at all,t,1"])

    frame = run(settings, instance)

    row = frame[frame["source_video_id"] == "video_missing"].iloc[0]
    assert row["state"] == "failed"
    assert "video_missing" in row["error_message"]
    assert (frame[frame["source_video_id"] != "video_missing"]["state"] == "completed").all()


def test_killing_the_run_mid_fan_out_then_running_again_pays_once_per_variant(project):
    rows = [f"video_src_dunes,v{i},Dunes variation number {i},t,1" for i in range(24)]
    table = write_table(project / "data" / "requests.csv", rows)
    # Slow responses and dropped ones, so the kill lands while POSTs are in flight.
    write_service_settings(
        project / ".remix-pipeline", faults={"latency_ms": 400, "drop_rate": 0.2, "seed": 7}
    )
    command = [
        sys.executable,
        "-m",
        "remix_pipeline.cli",
        "run",
        "--table",
        str(table),
        "--name",
        "t",
    ]
    first = subprocess.Popen(
        command,
        cwd=project,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ledger_db = project / ".remix-pipeline" / "ledger.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _count(ledger_db, "SELECT count(*) FROM attempts") > 0:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    interrupted = _count(ledger_db, "SELECT count(*) FROM attempts WHERE state = 'submitted'")
    assert interrupted < len(rows), "the kill came too late to interrupt the fan-out"

    write_service_settings(project / ".remix-pipeline", faults={"drop_rate": 0.2, "seed": 8})
    second = subprocess.run(
        command, cwd=project, env=os.environ.copy(), capture_output=True, text=True, timeout=180
    )

    assert second.returncode == 0, second.stderr
    jobs = remix_jobs(project)
    assert jobs, second.stdout
    assert sorted(jobs) == sorted(
        ("video_src_dunes", f"Dunes variation number {i}") for i in range(24)
    )
    frame = read_lineage(str(project / "data" / "output" / "t" / "lineage.parquet"))
    assert set(latest(frame)["state"]) == {"completed"}
    assert len(latest(frame)) == 24


def _count(db: Path, query: str) -> int:
    """0 until the ledger exists: the killed process may not have created it yet."""
    try:
        with sqlite3.connect(db) as connection:
            return int(connection.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sensor_ticks_leave_the_callers_instance_as_the_definitions_state_store(settings, instance):
    # An instance a tick opened and never closed stays the current store; once collected,
    # the next Definitions load fails with "undefined DagsterInstance weakref".
    from dagster._core.storage.defs_state.base import DefsStateStorage

    runner = HeadlessRunner(settings, instance)
    runner.evaluate_sensor("t_fanout_sensor")
    runner.evaluate_sensor("t_completion_sensor")

    assert DefsStateStorage.get() is instance.defs_state_storage


def test_a_server_that_cannot_be_reached_ends_the_command_with_one_error_and_no_traceback(
    project,
):
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    command = [sys.executable, "-m", "remix_pipeline.cli", "run", "--table", "data/requests.csv"]

    ran = subprocess.run(
        command,
        cwd=project,
        env={**os.environ, "OPENAI_BASE_URL": dead, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert ran.returncode == 1
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, ran.stderr
    assert "sample__submissions: ConnectionFailedError: " in errors[0]
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "Stack Trace" not in ran.stdout + ran.stderr
