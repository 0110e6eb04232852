"""Which submission run to request: the table's variants set against the partitions and the
ledger, and one run over the range of partitions that covers every variant that needs one.

The fan-out sensor and the refresh schedule both ask here; what needs a run is decided by
`remix_pipeline.planning`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import dagster as dg

from remix_pipeline import planning
from remix_pipeline.definitions.keys import EXPERIMENT_TAG, STEP_TAG
from remix_pipeline.definitions.runs import run_is_gone
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.ledger import Attempt
from remix_pipeline.request_table import RequestTable, TableUnreadableError, read_request_table
from remix_pipeline.servers import ServerChangedError

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


def digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


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
    keys = list(dict.fromkeys(r.key for r in table.requests if planning.parent_settled(r, latest)))
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
    return f"submit-{digest(needed)}-{finished}"
