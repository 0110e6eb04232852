"""The refresh schedule: new and changed rows, and another try for retryable failures."""

import dagster as dg

from remix_pipeline.definitions.runtime import (
    RETRY_FAILED_TAG,
    ExperimentRuntime,
    is_retryable,
)
from remix_pipeline.definitions.sensors import needs_submission, partition_range_request
from remix_pipeline.ledger import AttemptState
from remix_pipeline.requests import TableUnreadableError, read_request_table


def build_refresh_schedule(runtime: ExperimentRuntime) -> dg.ScheduleDefinition | None:
    settings, keys = runtime.settings, runtime.keys
    if not settings.refresh_cron:
        return None

    @dg.schedule(
        name=f"{settings.name}_refresh",
        cron_schedule=settings.refresh_cron,
        target=[keys.submissions],
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if settings.automation_running
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description="Submits new and changed rows and retries variants that failed retryably.",
    )
    def refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        try:
            table = read_request_table(settings.table_path, strict=settings.strict)
        except TableUnreadableError as exc:
            return dg.SkipReason(f"request table unreadable: {exc}")
        table_keys = list(dict.fromkeys(r.key for r in table.requests))
        instance = context.instance
        existing = instance.get_dynamic_partitions(keys.partitions.name)
        new = [k for k in table_keys if k not in set(existing)]
        if new:
            instance.add_dynamic_partitions(keys.partitions.name, new)
        latest = runtime.ledger().latest(table_keys)
        needed = [
            k
            for k in table_keys
            if needs_submission(latest.get(k), instance)
            or (latest[k].state is AttemptState.FAILED and is_retryable(latest[k]))
        ]
        if not needed:
            return dg.SkipReason("every variant has a job or a final outcome")
        return partition_range_request(
            runtime,
            existing + new,
            needed,
            run_key=None,
            extra_tags={RETRY_FAILED_TAG: "true"},
        )

    return refresh
