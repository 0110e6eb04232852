"""The completion sensor: polls in-flight jobs in bulk, reports finished videos exactly once
and requests their download."""

import time
from collections.abc import Iterator, Sequence

import dagster as dg
from dagster._grpc.client import DEFAULT_SENSOR_GRPC_TIMEOUT

from remix_pipeline.client import VideosAPIError
from remix_pipeline.definitions.keys import EXPERIMENT_TAG
from remix_pipeline.definitions.metadata import RemixMetadataSet, attempt_metadata
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import sensor_status
from remix_pipeline.definitions.submission_runs import digest
from remix_pipeline.ledger import Attempt, AttemptState
from remix_pipeline.tracking import PollReport, poll_in_flight, servers_in_flight

# Polling stops this long before Dagster's sensor evaluation timeout (60 s unless
# DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS says otherwise), leaving time to read the ledger and
# the event log and return the events; what is left is polled next tick. As dagster-fivetran.
TICK_BUDGET_SECONDS = max(DEFAULT_SENSOR_GRPC_TIMEOUT - 20, 5)
# Dagster's most records per event-log fetch, and the partitions asked about per fetch.
RECORDS_PER_FETCH = 10_000
PARTITIONS_PER_FETCH = 1_000


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
        report = poll_every_server(session, context.log, time.time() + TICK_BUDGET_SECONDS)
        events = completion_events(context.instance, session)
        completed = sorted(
            f"{a.key}:{a.attempt}" for a in report.finished if a.state is AttemptState.COMPLETED
        )
        run_requests = (
            [
                dg.RunRequest(
                    run_key=f"media-{digest(completed)}",
                    asset_selection=[keys.media],
                    tags={EXPERIMENT_TAG: settings.name},
                )
            ]
            if completed
            else []
        )
        return dg.SensorResult(asset_events=events, run_requests=run_requests)

    return completion_sensor


def poll_every_server(
    session: ExperimentSession, log: dg.DagsterLogManager, deadline: float
) -> PollReport:
    """Ask each in-flight job about itself on the server it was sent to, until `deadline`."""
    ledger = session.ledger()
    report = PollReport()
    for server in sorted(servers_in_flight(ledger)):
        try:
            part = session.run(
                lambda client: poll_in_flight(ledger, client, deadline=deadline), server=server
            )
        except VideosAPIError as exc:
            # The server is down or answering nonsense: what already finished is still
            # reported, and the jobs are polled again next tick.
            log.warning(f"Polling {server} failed; trying again next tick: {exc}")
            continue
        report.finished += part.finished
        report.out_of_time |= part.out_of_time
        if part.violations:
            worst = max(part.violations, key=lambda a: a.poll_violations)
            log.warning(
                f"{server} answered {len(part.violations)} status request(s) against the "
                f"contract ({worst.violation}); those jobs are asked again next tick."
            )
    if report.out_of_time:
        log.info("Approaching the sensor timeout; the rest is polled next tick.")
    return report


def already_reported(
    instance: dg.DagsterInstance, session: ExperimentSession, attempts: list[Attempt]
) -> set[tuple[str, int]]:
    """Attempts whose completion is already in the event log (a tick that died after the
    daemon stored its events but before the ledger heard of it).

    Read a slice of partitions at a time and page by page: Dagster refuses a fetch of more
    than 10,000 records, and 10,000 videos can finish between two ticks."""
    partitions = sorted({a.key for a in attempts})
    found: set[tuple[str, int]] = set()
    for start in range(0, len(partitions), PARTITIONS_PER_FETCH):
        records_filter = dg.AssetRecordsFilter(
            asset_key=session.keys.videos,
            asset_partitions=partitions[start : start + PARTITIONS_PER_FETCH],
        )
        cursor = None
        while True:
            page = instance.fetch_materializations(
                records_filter, limit=RECORDS_PER_FETCH, cursor=cursor
            )
            found.update(_reported_attempts(page.records))
            if not page.has_more:
                break
            cursor = page.cursor
    return found


def _reported_attempts(records: Sequence[dg.EventLogRecord]) -> Iterator[tuple[str, int]]:
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        attempt = RemixMetadataSet.attempt_of(materialization.metadata)
        if attempt is not None:
            yield materialization.partition, attempt


def completion_events(
    instance: dg.DagsterInstance, session: ExperimentSession
) -> list[dg.AssetMaterialization]:
    """Materializations for finished attempts not yet in the event log, exactly once.

    An attempt is marked reported only once its materialization is found in the event log,
    so a tick whose events were never stored reports them again, and one whose events were
    stored never does.
    """
    ledger = session.ledger()
    finished = ledger.finished_unreported()
    if not finished:  # most ticks: no need to read every partition key of the experiment
        return []
    partitions = set(instance.get_dynamic_partitions(session.keys.partitions.name))
    pending = [a for a in finished if a.key in partitions]
    stored = already_reported(instance, session, pending)
    ledger.mark_reported(sorted(stored))
    new = [a for a in pending if (a.key, a.attempt) not in stored]
    histories = ledger.history((a.key, a.attempt) for a in new)
    return [
        dg.AssetMaterialization(
            asset_key=session.keys.videos,
            partition=attempt.key,
            metadata=attempt_metadata(
                attempt, session.prices, histories[(attempt.key, attempt.attempt)]
            ),
        )
        for attempt in new
    ]
