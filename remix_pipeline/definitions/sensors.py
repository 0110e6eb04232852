"""Sensors: turn new table rows into partitions and one run; follow jobs to their end.

Both sensors keep their truth in the ledger and the event log, not in the cursor, so a tick
killed half-way, a restarted daemon or a tick evaluated twice neither loses nor repeats work.
"""

import hashlib
import time
from dataclasses import dataclass

import dagster as dg

from remix_pipeline import planning
from remix_pipeline.client import VideosAPIError
from remix_pipeline.definitions.keys import EXPERIMENT_TAG, STEP_TAG
from remix_pipeline.definitions.metadata import attempt_metadata
from remix_pipeline.definitions.runs import run_is_gone
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import sensor_status
from remix_pipeline.ledger import Attempt, AttemptState
from remix_pipeline.planning import parent_settled
from remix_pipeline.requests import RequestTable, TableUnreadableError, read_request_table
from remix_pipeline.servers import ServerChangedError
from remix_pipeline.tracking import PollReport, poll_in_flight, servers_in_flight

# Stay well inside the 60 s sensor evaluation timeout; what is left is done next tick.
TICK_BUDGET_SECONDS = 35.0
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
FINISHED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def partition_range_request(
    session: ExperimentSession,
    ordered_keys: list[str],
    needed: list[str],
    *,
    run_key: str | None,
    extra_tags: dict[str, str] | None = None,
) -> dg.RunRequest:
    """One run over the contiguous range of partitions that covers every needed key.

    Keys in the range that need nothing are no-ops for the submission asset, so one run
    always suffices, however the needed keys are scattered.
    """
    position = {key: i for i, key in enumerate(ordered_keys)}
    first = min(needed, key=position.__getitem__)
    last = max(needed, key=position.__getitem__)
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[session.keys.submissions],
        tags={
            RANGE_START_TAG: first,
            RANGE_END_TAG: last,
            EXPERIMENT_TAG: session.settings.name,
            STEP_TAG: "submit",
            **(extra_tags or {}),
        },
    )


def _submission_runs(
    instance: dg.DagsterInstance, session: ExperimentSession, statuses: list[dg.DagsterRunStatus]
) -> int:
    return instance.get_runs_count(
        filters=dg.RunsFilter(
            statuses=statuses,
            tags={EXPERIMENT_TAG: session.settings.name, STEP_TAG: "submit"},
        )
    )


def submission_run_in_progress(instance: dg.DagsterInstance, session: ExperimentSession) -> bool:
    return bool(_submission_runs(instance, session, UNFINISHED))


def submission_run_key(
    instance: dg.DagsterInstance, session: ExperimentSession, needed: list[str]
) -> str:
    """The same work is requested once; after each finished run it may be requested again,
    since a run that failed (server down) leaves its variants needing submission."""
    finished = _submission_runs(instance, session, FINISHED)
    return f"submit-{_digest(needed)}-{finished}"


@dataclass(frozen=True)
class TableState:
    """The table's variants set against the partitions and the ledger."""

    table: RequestTable
    keys: list[str]  # table order, no duplicates; chained variants only once their parent ended
    partitions: list[str]  # existing partitions, then the new ones
    new_partitions: list[str]
    latest: dict[str, Attempt]


def read_table_state(
    session: ExperimentSession, instance: dg.DagsterInstance
) -> TableState | dg.SkipReason:
    settings = session.settings
    try:
        table = read_request_table(settings.table_path, strict=settings.strict)
    except TableUnreadableError as exc:
        return dg.SkipReason(f"request table unreadable: {exc}")
    latest = session.ledger().latest(r.key for r in table.requests)
    keys = list(dict.fromkeys(r.key for r in table.requests if parent_settled(r, latest)))
    existing = instance.get_dynamic_partitions(session.keys.partitions.name)
    known = set(existing)
    new_partitions = [k for k in keys if k not in known]
    return TableState(
        table=table,
        keys=keys,
        partitions=existing + new_partitions,
        new_partitions=new_partitions,
        latest=latest,
    )


def variants_needing_submission(
    session: ExperimentSession, state: TableState, instance: dg.DagsterInstance, *, refresh: bool
) -> list[str]:
    """The table's variants a submission run has work for (`planning.needs_submission`).

    Raises ServerChangedError on a refresh whose attempts were sent to another server; the
    fan-out leaves those attempts alone and lets the submission step refuse the batch.
    """
    try:
        again = session.to_pay_again(session.ledger(), state.latest, time.time(), refresh=refresh)
    except ServerChangedError:
        if refresh:
            raise
        again = set()
    now = time.time()
    return [
        key
        for key in state.keys
        if planning.needs_submission(
            state.latest.get(key),
            pay_again=lambda attempt: attempt.key in again,
            grace_seconds=session.listing_grace_seconds,
            owner_gone=lambda attempt: run_is_gone(instance, attempt.run_id),
            now=now,
        )
    ]


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
        table, new_partitions = state.table, state.new_partitions
        needed = variants_needing_submission(session, state, context.instance, refresh=False)

        run_requests: list[dg.RunRequest] = []
        if context.cursor != table.content_hash:
            run_requests.append(
                dg.RunRequest(
                    run_key=f"table-{table.content_hash[:16]}",
                    asset_selection=[keys.request_table],
                    tags={EXPERIMENT_TAG: settings.name},
                )
            )
        if needed and not submission_run_in_progress(context.instance, session):
            run_requests.append(
                partition_range_request(
                    session,
                    state.partitions,
                    needed,
                    run_key=submission_run_key(context.instance, session, needed),
                )
            )
        if not run_requests and not new_partitions:
            return dg.SkipReason("no new or interrupted variants")
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=(
                [keys.partitions.build_add_request(new_partitions)] if new_partitions else []
            ),
            cursor=table.content_hash,
        )

    return fanout_sensor


def already_reported(
    instance: dg.DagsterInstance, session: ExperimentSession, attempts: list[Attempt]
) -> set[tuple[str, int]]:
    """Attempts whose completion is already in the event log (a tick that died after the
    daemon stored its events but before the ledger heard of it)."""
    if not attempts:
        return set()
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=session.keys.videos,
            asset_partitions=sorted({a.key for a in attempts}),
        ),
        limit=len(attempts) * 4 + 10,
    ).records
    found: set[tuple[str, int]] = set()
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        attempt_value = materialization.metadata.get("attempt")
        if attempt_value is not None:
            found.add((materialization.partition, int(attempt_value.value)))
    return found


def completion_events(
    instance: dg.DagsterInstance, session: ExperimentSession
) -> list[dg.AssetMaterialization]:
    """Materializations for finished attempts not yet in the event log, exactly once.

    An attempt is marked reported only once its materialization is found in the event log,
    so a tick whose events were never stored reports them again, and one whose events were
    stored never does.
    """
    ledger = session.ledger()
    partitions = set(instance.get_dynamic_partitions(session.keys.partitions.name))
    pending = [a for a in ledger.finished_unreported() if a.key in partitions]
    stored = already_reported(instance, session, pending)
    ledger.mark_reported(sorted(stored))
    return [
        dg.AssetMaterialization(
            asset_key=session.keys.videos,
            partition=attempt.key,
            metadata=attempt_metadata(attempt, session.prices),
        )
        for attempt in pending
        if (attempt.key, attempt.attempt) not in stored
    ]


def build_completion_sensor(session: ExperimentSession) -> dg.SensorDefinition:
    settings, keys = session.settings, session.keys

    @dg.sensor(
        name=f"{settings.name}_completion_sensor",
        minimum_interval_seconds=settings.poll_interval_seconds,
        asset_selection=[keys.media],
        default_status=sensor_status(settings),
        description=(
            "Polls in-flight jobs in bulk, reports finished videos and requests their download."
        ),
    )
    def completion_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        deadline = time.time() + TICK_BUDGET_SECONDS
        ledger = session.ledger()
        report = PollReport()
        # Each job is asked about on the server it was sent to.
        for server in sorted(servers_in_flight(ledger)):
            try:
                part = session.run(
                    lambda client: poll_in_flight(ledger, client, deadline=deadline),
                    server=server,
                )
            except VideosAPIError as exc:
                # The server is down or answering nonsense: what already finished is still
                # reported, and the jobs are polled again next tick.
                context.log.warning(f"Polling {server} failed; trying again next tick: {exc}")
                continue
            report.finished += part.finished
            report.out_of_time |= part.out_of_time
            if part.violations:
                worst = max(part.violations, key=lambda a: a.poll_violations)
                context.log.warning(
                    f"{server} answered {len(part.violations)} status request(s) against the "
                    f"contract ({worst.violation}); those jobs are asked again next tick."
                )
        if report.out_of_time:
            context.log.info("Approaching the sensor timeout; the rest is polled next tick.")
        events = completion_events(context.instance, session)
        completed = sorted(
            f"{a.key}:{a.attempt}" for a in report.finished if a.state is AttemptState.COMPLETED
        )
        run_requests = (
            [
                dg.RunRequest(
                    run_key=f"media-{_digest(completed)}",
                    asset_selection=[keys.media],
                    tags={EXPERIMENT_TAG: settings.name},
                )
            ]
            if completed
            else []
        )
        return dg.SensorResult(asset_events=events, run_requests=run_requests)

    return completion_sensor


def build_automation_sensor(session: ExperimentSession) -> dg.AutomationConditionSensorDefinition:
    """Keeps the lineage table fresh as videos and media arrive (running by default)."""
    return dg.AutomationConditionSensorDefinition(
        name=f"{session.settings.name}_automation_sensor",
        target=[session.keys.lineage],
        default_status=sensor_status(session.settings),
    )
