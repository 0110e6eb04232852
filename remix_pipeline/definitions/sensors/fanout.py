"""The fan-out sensor: a partition per new variant, and one submission run for all."""

import dagster as dg
from dagster._record import record
from dagster._serdes import whitelist_for_serdes

from remix_pipeline.definitions.keys import EXPERIMENT_TAG
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import sensor_status
from remix_pipeline.definitions.submission_runs import (
    partition_range_request,
    read_table_state,
    submission_run_in_progress,
    submission_run_key,
    variants_needing_submission,
)


@whitelist_for_serdes
@record
class FanoutCursor:
    """The version of the table whose run the sensor has requested."""

    table_hash: str = ""  # none seen yet

    def serialize(self) -> str:
        return dg.serialize_value(self)

    @staticmethod
    def parse(cursor: str | None) -> "FanoutCursor":
        """The stored cursor; an empty or malformed one (an older release's) starts afresh."""
        try:
            parsed = dg.deserialize_value(cursor, FanoutCursor) if cursor else FanoutCursor()
        except Exception:
            return FanoutCursor()
        return parsed


def build_fanout_sensor(session: ExperimentSession) -> dg.SensorDefinition:
    settings, keys = session.settings, session.keys

    @dg.sensor(
        name=f"{settings.name}_fanout_sensor",
        minimum_interval_seconds=settings.poll_interval_seconds,
        asset_selection=[keys.request_table, keys.submissions],
        default_status=sensor_status(settings),
        description="Adds a partition per new variant in the table and requests one run for them.",
    )
    def fanout_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        state = read_table_state(session, context.instance)
        if isinstance(state, dg.SkipReason):
            return state
        table_hash = state.table.content_hash
        needed = variants_needing_submission(session, state, context.instance, refresh=False)
        run_requests: list[dg.RunRequest] = []
        if FanoutCursor.parse(context.cursor).table_hash != table_hash:
            run_requests.append(
                dg.RunRequest(
                    run_key=f"table-{table_hash[:16]}",
                    asset_selection=[keys.request_table],
                    tags={EXPERIMENT_TAG: settings.name},
                )
            )
        if needed and not submission_run_in_progress(context.instance, session):
            run_key = submission_run_key(context.instance, session, needed)
            run_requests.append(
                partition_range_request(session, state.partitions, needed, run_key=run_key)
            )
        if not run_requests and not state.new_partitions:
            return dg.SkipReason("no new or interrupted variants")
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=(
                [keys.partitions.build_add_request(state.new_partitions)]
                if state.new_partitions
                else []
            ),
            cursor=FanoutCursor(table_hash=table_hash).serialize(),
        )

    return fanout_sensor
