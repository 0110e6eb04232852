"""What the sensors keep between ticks and how they recognise their own events."""

from __future__ import annotations

import dagster as dg
from dagster._grpc.client import DEFAULT_SENSOR_GRPC_TIMEOUT

from remix_pipeline.definitions import build_experiment_definitions
from remix_pipeline.definitions.metadata import RemixMetadataSet, attempt_metadata
from remix_pipeline.definitions.sensors.completion import TICK_BUDGET_SECONDS
from remix_pipeline.definitions.sensors.fanout import FanoutCursor
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.request_table import read_request_table


def fanout_tick(settings, instance, cursor: str | None) -> dg.SensorResult:
    defs = build_experiment_definitions(settings)
    sensor = defs.get_sensor_def("t_fanout_sensor")
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    return sensor.evaluate_tick(context)


def table_runs(data) -> list[dg.RunRequest]:  # type: ignore[no-untyped-def]
    return [r for r in data.run_requests if r.run_key and r.run_key.startswith("table-")]


def test_the_fanout_cursor_round_trips_through_dagster_serdes():
    cursor = FanoutCursor(table_hash="abc")
    assert FanoutCursor.parse(cursor.serialize()) == cursor


def test_a_malformed_fanout_cursor_starts_from_scratch(settings, instance):
    data = fanout_tick(settings, instance, cursor="not a cursor {")

    table_hash = read_request_table(settings.table_path).content_hash
    assert len(table_runs(data)) == 1
    assert FanoutCursor.parse(data.cursor) == FanoutCursor(table_hash=table_hash)


def test_a_table_already_seen_is_not_requested_again(settings, instance):
    seen = FanoutCursor(table_hash=read_request_table(settings.table_path).content_hash)

    data = fanout_tick(settings, instance, cursor=seen.serialize())

    assert table_runs(data) == []


def test_the_completion_tick_budget_follows_dagsters_sensor_timeout():
    assert TICK_BUDGET_SECONDS == DEFAULT_SENSOR_GRPC_TIMEOUT - 20


def test_a_videos_materialization_carries_its_attempt_as_typed_metadata(settings):
    session = ExperimentSession(settings)
    (request, *_) = read_request_table(settings.table_path).requests
    (attempt,) = (
        session.ledger()
        .record_intents([request], table_hash="h", run_id=None, now=0.0, server="embedded")
        .values()
    )

    typed = RemixMetadataSet.extract(attempt_metadata(attempt, session.prices))

    assert (typed.key, typed.attempt) == (request.key, 1)


def test_the_attempt_of_an_event_stored_before_the_typed_metadata_is_still_read():
    assert RemixMetadataSet.attempt_of({"attempt": dg.MetadataValue.int(2)}) == 2
