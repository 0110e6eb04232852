"""The refresh schedule: new and changed rows, and another try for retryable failures (and,
if asked, for videos whose media expired before download)."""

import dagster as dg

from remix_pipeline.definitions.keys import RETRY_FAILED_TAG
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import schedule_status
from remix_pipeline.definitions.submission_runs import (
    partition_range_request,
    read_table_state,
    variants_needing_submission,
)
from remix_pipeline.servers import ServerChangedError


def build_refresh_schedule(session: ExperimentSession) -> dg.ScheduleDefinition | None:
    settings, keys = session.settings, session.keys
    if not settings.refresh_cron:
        return None

    @dg.schedule(
        name=f"{settings.name}_refresh",
        cron_schedule=settings.refresh_cron,
        target=[keys.submissions],
        default_status=schedule_status(settings),
        description="Submits new and changed rows and retries variants that failed retryably "
        "(or, with reremix_expired_media, whose media expired before download).",
    )
    def refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        instance = context.instance
        state = read_table_state(session, instance)
        if isinstance(state, dg.SkipReason):
            return state
        if state.new_partitions:
            instance.add_dynamic_partitions(keys.partitions.name, state.new_partitions)
        try:
            needed = variants_needing_submission(session, state, instance, refresh=True)
        except ServerChangedError as exc:
            return dg.SkipReason(str(exc))
        if not needed:
            return dg.SkipReason("every variant has a job or a final outcome")
        return partition_range_request(
            session,
            state.partitions,
            needed,
            run_key=None,
            extra_tags={RETRY_FAILED_TAG: "true"},
        )

    return refresh
