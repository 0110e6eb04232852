"""The completion sensor: polls in-flight jobs in bulk, reports finished videos exactly once
and requests their download."""

import time

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
        attempt = RemixMetadataSet.attempt_of(materialization.metadata)
        if attempt is not None:
            found.add((materialization.partition, attempt))
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
