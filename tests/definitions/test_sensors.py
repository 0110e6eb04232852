"""The fan-out and completion sensors, evaluated as the daemon would on a real instance."""

from __future__ import annotations

import time
import warnings

import dagster as dg
import pytest

from remix_pipeline.definitions import ExperimentSession, build_experiment_definitions
from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.definitions.sensors import RANGE_END_TAG, RANGE_START_TAG, completion
from remix_pipeline.ledger import AttemptState
from remix_pipeline.request_table import read_request_table
from tests.support.projects import SAMPLE_ROWS, write_table
from tests.support.servers import served_process


@pytest.fixture
def defs(settings) -> dg.Definitions:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_experiment_definitions(settings)


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sensor = defs.get_sensor_def(name)
        # As the daemon does: from the instance's ref, closed when the tick is done.
        with dg.build_sensor_context(instance_ref=instance.get_ref(), definitions=defs) as context:
            return sensor.evaluate_tick(context)


def test_fanout_adds_a_partition_per_variant_and_requests_one_run_for_all(settings, defs, instance):
    data = tick(defs, instance, "t_fanout_sensor")

    keys = [r.key for r in read_request_table(settings.table_path).requests]
    (added,) = data.dynamic_partitions_requests
    assert list(added.partition_keys) == keys
    submit_runs = [r for r in data.run_requests if r.tags.get(RANGE_START_TAG)]
    assert len(submit_runs) == 1
    assert (submit_runs[0].tags[RANGE_START_TAG], submit_runs[0].tags[RANGE_END_TAG]) == (
        keys[0],
        keys[-1],
    )


def test_fanout_requests_nothing_once_every_variant_has_a_job(settings, defs, instance):
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=60)

    data = tick(defs, instance, "t_fanout_sensor")

    assert not [r for r in data.run_requests if r.tags.get(RANGE_START_TAG)]
    assert not data.dynamic_partitions_requests


def test_fanout_requests_only_the_new_row_after_the_table_grows(settings, defs, instance):
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=60)
    write_table(settings.table_path, [*SAMPLE_ROWS, "video_src_city,sepia,Tint it sepia,t,1"])

    data = tick(defs, instance, "t_fanout_sensor")

    new_key = read_request_table(settings.table_path).requests[-1].key
    (added,) = data.dynamic_partitions_requests
    assert list(added.partition_keys) == [new_key]
    (submit,) = [r for r in data.run_requests if r.tags.get(RANGE_START_TAG)]
    assert submit.tags[RANGE_START_TAG] == submit.tags[RANGE_END_TAG] == new_key


def submit_everything(settings, defs, instance) -> None:
    runner = HeadlessRunner(settings, instance)
    runner.evaluate_sensor("t_fanout_sensor")
    ledger = ExperimentSession(settings).ledger()
    deadline = time.monotonic() + 30
    while any(not a.is_terminal for a in ledger.latest().values()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
        tick(defs, instance, "t_completion_sensor")  # polls; events deliberately not stored


def test_completion_reports_each_finished_video_until_its_event_is_stored(settings, defs, instance):
    submit_everything(settings, defs, instance)

    first = tick(defs, instance, "t_completion_sensor")
    again = tick(defs, instance, "t_completion_sensor")  # the same tick evaluated twice

    assert len(first.asset_events) == 4
    assert sorted(e.partition for e in again.asset_events) == sorted(
        e.partition for e in first.asset_events
    )  # nothing stored yet, so nothing is lost
    for event in first.asset_events:
        instance.report_runless_asset_event(event)  # the daemon stores the tick's events

    after = tick(defs, instance, "t_completion_sensor")

    assert after.asset_events == []
    ledger = ExperimentSession(settings).ledger()
    assert ledger.finished_unreported() == []


def test_completion_events_carry_the_video_record(settings, defs, instance):
    submit_everything(settings, defs, instance)

    data = tick(defs, instance, "t_completion_sensor")

    event = data.asset_events[0]
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert metadata["state"] == AttemptState.COMPLETED.value
    assert metadata["video"]["id"] == metadata["video_id"]
    assert metadata["video"]["remixed_from_video_id"] == metadata["source_video_id"]
    assert metadata["estimated_cost_usd"] > 0


def test_completion_requests_a_media_run_when_videos_finish(settings, defs, instance):
    runner = HeadlessRunner(settings, instance)
    runner.evaluate_sensor("t_fanout_sensor")
    deadline = time.monotonic() + 30
    media_runs: list[dg.RunRequest] = []
    while not media_runs:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        media_runs = tick(defs, instance, "t_completion_sensor").run_requests

    assert [list(r.asset_selection) for r in media_runs] == [[dg.AssetKey(["t", "media"])]]


@pytest.mark.parametrize(("sent_ago", "runs"), [(1.0, 0), (120.0, 1)], ids=["fresh", "stale"])
def test_fanout_waits_out_the_listing_grace_of_unknown_outcomes_on_a_remote_server(
    settings, instance, monkeypatch, sent_ago, runs
):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://videos.example.invalid/v1")
    remote = settings.model_copy(update={"request_timeout_seconds": 30.0})  # grace: 60 s
    session = ExperimentSession(remote)
    ledger = session.ledger()
    sent_at = time.time() - sent_ago
    for request in read_request_table(remote.table_path).requests:
        attempt = ledger.record_intent(request, table_hash="h", run_id="gone", now=sent_at)
        ledger.mark_sent(request.key, attempt.attempt, sent_at=sent_at)
        ledger.mark_unknown(request.key, attempt.attempt, reason="read timeout", now=sent_at)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = build_experiment_definitions(remote)

    data = tick(defs, instance, "t_fanout_sensor")

    assert len([r for r in data.run_requests if r.tags.get(RANGE_START_TAG)]) == runs


def test_completion_tick_with_the_server_unreachable_warns_and_keeps_the_jobs_in_flight(
    settings, defs, instance, monkeypatch, tmp_path
):
    """The jobs' own server goes away between the submission and the tick (polls go to the
    server an attempt was sent to, whatever is configured by then)."""
    with served_process(tmp_path, "--queued-seconds", "3600") as served:
        monkeypatch.setenv("OPENAI_BASE_URL", served.base_url)
        HeadlessRunner(settings, instance).evaluate_sensor("t_fanout_sensor")
    in_flight = ExperimentSession(settings).ledger().in_flight()

    data = tick(defs, instance, "t_completion_sensor")

    assert in_flight and {a.server for a in in_flight} == {served.base_url}
    assert data.run_requests == []
    assert {a.key for a in ExperimentSession(settings).ledger().in_flight()} == {
        a.key for a in in_flight
    }


def test_completion_events_carry_the_attempts_history_from_intent_to_its_end(
    settings, defs, instance
):
    submit_everything(settings, defs, instance)

    data = tick(defs, instance, "t_completion_sensor")

    history = data.asset_events[0].metadata["history"].value
    lines = history.splitlines()[2:]  # the markdown table's rows, after its header
    assert lines[0].split("|")[3].strip() == "intent"
    assert lines[-1].split("|")[3].strip() == "completed"
    assert any("submitted" in line for line in lines)


def test_completion_finds_stored_reports_across_pages_of_the_event_log(
    settings, defs, instance, monkeypatch
):
    # Dagster refuses a fetch of more than 10,000 records, and a 10,000-variant run failed
    # when its videos finished together: here, pages of one record and three partitions.
    monkeypatch.setattr(completion, "RECORDS_PER_FETCH", 1)
    monkeypatch.setattr(completion, "PARTITIONS_PER_FETCH", 3)
    submit_everything(settings, defs, instance)
    for event in tick(defs, instance, "t_completion_sensor").asset_events:
        instance.report_runless_asset_event(event)
        instance.report_runless_asset_event(event)  # two records of one partition
    session = ExperimentSession(settings)
    finished = session.ledger().finished_unreported()

    found = completion.already_reported(instance, session, finished)

    assert len(finished) == 4
    assert found == {(a.key, a.attempt) for a in finished}
