"""One remix job per variant, submitted exactly once, in one run for the whole batch."""

import time
from collections import Counter
from collections.abc import Callable, Sequence

import dagster as dg

from remix_pipeline.budget import (
    BatchEstimate,
    BudgetExceededError,
    enforce_budget,
    estimate_batch,
)
from remix_pipeline.client import VideosClient
from remix_pipeline.definitions.keys import RETRY_FAILED_TAG
from remix_pipeline.definitions.runs import run_is_gone
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import asset_attributes
from remix_pipeline.ledger import Ledger
from remix_pipeline.planning import PayAgain, unpaid_requests
from remix_pipeline.request_table import VariantRequest, read_request_table
from remix_pipeline.servers import ServerChangedError
from remix_pipeline.submission import Action, Outcome, submit_variants

ROUTINE_ACTIONS = frozenset({Action.SUBMITTED, Action.ALREADY_DONE})


def build_submissions_asset(session: ExperimentSession) -> dg.AssetsDefinition:
    keys, settings = session.keys, session.settings

    @dg.asset(
        key=keys.submissions,
        deps=[keys.request_table],
        partitions_def=keys.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.pool,
        kinds={"api"},
        description=(
            "One remix job per variant, submitted exactly once: the intent is recorded "
            "before the paid call and interrupted attempts are resolved before resending."
        ),
        **asset_attributes(settings),
    )
    def submissions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return run_submissions(session, context)

    return submissions


def run_submissions(
    session: ExperimentSession, context: dg.AssetExecutionContext
) -> dg.MaterializeResult:
    """Select, price and submit the run's variants: the remix probe, the estimate and the
    submissions share one event loop and one client."""
    settings = session.settings
    table = read_request_table(settings.table_path, strict=settings.strict)
    requests = _requested(context, table.requests)
    ledger = session.ledger()
    pay_again = _pay_again(session, context, ledger, requests)
    to_pay = unpaid_requests(requests, ledger, pay_again)

    async def submit(client: VideosClient) -> tuple[BatchEstimate, list[Outcome]]:
        if to_pay and not await client.supports_remix():
            raise _no_remix_failure(session, len(to_pay))
        estimate = (
            await estimate_batch(to_pay, client, session.prices)
            if to_pay
            else BatchEstimate(variants=0, total_usd=0.0)
        )
        _record_and_enforce(session, context, estimate)
        outcomes = await submit_variants(
            requests,
            ledger=ledger,
            client=client,
            table_hash=table.content_hash,
            run_id=context.run.run_id,
            policy=settings.on_unknown_outcome,
            owner_gone=lambda attempt: run_is_gone(context.instance, attempt.run_id),
            pay_again=pay_again,
            on_outcome=_observer(session, context),
        )
        return estimate, outcomes

    estimate, outcomes = session.run(submit)
    return _summary(context, requests, estimate, outcomes)


def _requested(
    context: dg.AssetExecutionContext, requests: Sequence[VariantRequest]
) -> list[VariantRequest]:
    """The table's variants among the run's partitions."""
    wanted = set(context.partition_keys)
    found = [r for r in requests if r.key in wanted]
    gone = wanted - {r.key for r in found}
    if gone:
        context.log.info(f"{len(gone)} variants are no longer in the table; left as they are")
    return found


def _pay_again(
    session: ExperimentSession,
    context: dg.AssetExecutionContext,
    ledger: Ledger,
    requests: Sequence[VariantRequest],
) -> PayAgain:
    latest = ledger.latest(r.key for r in requests)
    refresh = context.run.tags.get(RETRY_FAILED_TAG) == "true"
    try:
        again = session.to_pay_again(ledger, latest, time.time(), refresh=refresh)
    except ServerChangedError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    return lambda attempt: attempt.key in again


def _no_remix_failure(session: ExperimentSession, variants: int) -> dg.Failure:
    return dg.Failure(
        description=(
            f"The server at {session.server.label} has no remix operation "
            "(POST /videos/{id}/remix), so none of the "
            f"{variants} variants was submitted. Point {session.settings.base_url_env} "
            "at a server or gateway that supports remix."
        ),
        allow_retries=False,
    )


def _record_and_enforce(
    session: ExperimentSession, context: dg.AssetExecutionContext, estimate: BatchEstimate
) -> None:
    """Record the batch's estimate, and refuse it over budget before any POST."""
    max_cost = session.settings.max_cost_usd
    metadata = {**estimate.metadata(), **({} if max_cost is None else {"max_cost_usd": max_cost})}
    context.log.info(estimate.describe())
    context.log_event(dg.AssetObservation(asset_key=session.keys.submissions, metadata=metadata))
    try:
        enforce_budget(estimate, max_cost)
    except BudgetExceededError as exc:
        raise dg.Failure(description=str(exc), metadata=metadata, allow_retries=False) from None


def _observer(
    session: ExperimentSession, context: dg.AssetExecutionContext
) -> Callable[[Outcome], None]:
    def observe(outcome: Outcome) -> None:
        # A routine submission is recorded by the ledger and summarised in the
        # materialization; an event per variant would cost a Dagster event-log write each
        # (about a sixth of a 1,000-variant run, benchmarks/RESULTS.md).
        if outcome.action in ROUTINE_ACTIONS:
            return
        attempt = outcome.attempt
        context.log_event(
            dg.AssetObservation(
                asset_key=session.keys.submissions,
                partition=outcome.key,
                metadata={
                    "action": outcome.action.value,
                    "attempt": attempt.attempt if attempt else 0,
                    "state": attempt.state.value if attempt else "waiting",
                    "video_id": (attempt.video_id if attempt else None) or "",
                    "detail": outcome.detail[:500],
                },
            )
        )

    return observe


def _summary(
    context: dg.AssetExecutionContext,
    requests: Sequence[VariantRequest],
    estimate: BatchEstimate,
    outcomes: list[Outcome],
) -> dg.MaterializeResult:
    actions = Counter(o.action.value for o in outcomes)
    context.log.info(f"submission outcomes: {dict(actions)}")
    # A range run stores this metadata once per partition, so nothing in it may grow with
    # the run: a map of every variant's job made 10,000 variants write 7.8 GB of events (and
    # the run read them back into 22 GiB). Each variant's job is on its `videos` record.
    return dg.MaterializeResult(
        metadata={"variants": len(requests), **estimate.metadata(), **dict(actions)}
    )
