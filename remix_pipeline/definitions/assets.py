"""The assets of one experiment: table, submissions, videos, media, lineage."""

import time
from collections import Counter

import dagster as dg

from remix_pipeline.budget import (
    BatchEstimate,
    BudgetExceededError,
    enforce_budget,
    estimate_batch,
)
from remix_pipeline.definitions.keys import RETRY_FAILED_TAG
from remix_pipeline.definitions.metadata import (
    column_lineage,
    column_schema,
    markdown_preview,
    table_metadata,
)
from remix_pipeline.definitions.runs import run_is_gone
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.ledger import Attempt, AttemptState
from remix_pipeline.lineage import build_lineage_frame, status_counts, write_parquet_atomically
from remix_pipeline.manifest import MANIFEST_FILE_NAME, build_manifest, write_manifest_atomically
from remix_pipeline.planning import unpaid_requests
from remix_pipeline.report import variant_matrix_markdown, write_report
from remix_pipeline.requests import TableUnreadableError, VariantRequest, read_request_table
from remix_pipeline.servers import ServerChangedError
from remix_pipeline.submission import Action, Outcome, submit_variants
from remix_pipeline.tracking import download_media, servers_to_download

ROUTINE_ACTIONS = frozenset({Action.SUBMITTED, Action.ALREADY_DONE})
PREVIEW_COLUMNS = ["key", "attempt", "source_video_id", "variant", "status", "video_id"]


def build_assets(session: ExperimentSession) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    settings, keys = session.settings, session.keys
    group = settings.name

    @dg.asset(
        key=keys.request_table,
        group_name=group,
        owners=settings.owners,
        kinds={"csv"},
        description="The validated request table: one row per source video and prompt.",
    )
    def request_table(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        try:
            table = read_request_table(settings.table_path, strict=settings.strict)
        except TableUnreadableError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        if table.problems:
            context.log.warning(f"{len(table.problems)} invalid rows; the valid rows proceed")
        return dg.MaterializeResult(metadata=table_metadata(table))

    @dg.asset(
        key=keys.submissions,
        deps=[keys.request_table],
        partitions_def=keys.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.pool,
        group_name=group,
        owners=settings.owners,
        kinds={"api"},
        description=(
            "One remix job per variant, submitted exactly once: the intent is recorded "
            "before the paid call and interrupted attempts are resolved before resending."
        ),
    )
    def submissions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        table = read_request_table(settings.table_path, strict=settings.strict)
        wanted = set(context.partition_keys)
        requests = [r for r in table.requests if r.key in wanted]
        gone = sorted(wanted - {r.key for r in requests})
        if gone:
            context.log.info(f"{len(gone)} variants are no longer in the table; left as they are")
        ledger = session.ledger()
        latest = ledger.latest(r.key for r in requests)
        try:
            again = session.to_pay_again(
                ledger,
                latest,
                time.time(),
                refresh=context.run.tags.get(RETRY_FAILED_TAG) == "true",
            )
        except ServerChangedError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

        def pay_again(attempt: Attempt) -> bool:
            return attempt.key in again

        to_pay = unpaid_requests(requests, ledger, pay_again)
        if to_pay and not session.run(lambda client: client.supports_remix()):
            raise dg.Failure(
                description=(
                    f"The server at {session.server.label} has no remix operation "
                    "(POST /videos/{id}/remix), so none of the "
                    f"{len(to_pay)} variants was submitted. Point {settings.base_url_env} "
                    "at a server or gateway that supports remix."
                ),
                allow_retries=False,
            )
        estimate = _estimate_before_fan_out(context, to_pay)

        def observe(outcome: Outcome) -> None:
            # A routine submission is recorded by the ledger and summarised in the
            # materialization below; an event per variant would cost a Dagster event-log
            # write each (about a sixth of a 1,000-variant run, benchmarks/RESULTS.md).
            if outcome.action in ROUTINE_ACTIONS:
                return
            attempt = outcome.attempt
            context.log_event(
                dg.AssetObservation(
                    asset_key=keys.submissions,
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

        outcomes = session.run(
            lambda client: submit_variants(
                requests,
                ledger=ledger,
                client=client,
                table_hash=table.content_hash,
                run_id=context.run_id,
                policy=settings.on_unknown_outcome,
                owner_gone=lambda attempt: run_is_gone(context.instance, attempt.run_id),
                pay_again=pay_again,
                on_outcome=observe,
            )
        )
        actions = Counter(o.action.value for o in outcomes)
        context.log.info(f"submission outcomes: {dict(actions)}")
        jobs = {
            o.key: o.attempt.video_id
            for o in outcomes
            if o.attempt is not None and o.attempt.video_id
        }
        return dg.MaterializeResult(
            metadata={
                "variants": len(requests),
                **estimate.metadata(),
                **{f"{k}": v for k, v in actions.items()},
                "video_ids": dg.MetadataValue.json(jobs),
            }
        )

    def _estimate_before_fan_out(
        context: dg.AssetExecutionContext, to_pay: list[VariantRequest]
    ) -> BatchEstimate:
        """Price the batch, record the estimate, and refuse it over budget before any POST."""
        prices = session.prices
        estimate = (
            session.run(lambda client: estimate_batch(to_pay, client, prices))
            if to_pay
            else BatchEstimate(variants=0, total_usd=0.0)
        )
        budget = {} if settings.max_cost_usd is None else {"max_cost_usd": settings.max_cost_usd}
        context.log.info(estimate.describe())
        context.log_event(
            dg.AssetObservation(
                asset_key=keys.submissions, metadata={**estimate.metadata(), **budget}
            )
        )
        try:
            enforce_budget(estimate, settings.max_cost_usd)
        except BudgetExceededError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={**estimate.metadata(), **budget},
                allow_retries=False,
            ) from None
        return estimate

    videos = dg.AssetSpec(
        key=keys.videos,
        deps=[keys.submissions],
        partitions_def=keys.partitions,
        group_name=group,
        owners=settings.owners,
        kinds={"video"},
        description=(
            "The finished remix jobs, reported by the completion sensor with each Video record."
        ),
    )

    @dg.asset(
        key=keys.media,
        deps=[keys.videos],
        group_name=group,
        owners=settings.owners,
        kinds={"mp4"},
        description="Video, thumbnail and spritesheet of every completed variant, downloaded.",
    )
    def media(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        ledger = session.ledger()
        completed = [a for a in ledger.latest().values() if a.state is AttemptState.COMPLETED]
        downloaded, problems = 0, 0
        # Each video is fetched from the server that made it.
        for server in sorted(servers_to_download(completed)):
            report = session.run(
                lambda client: download_media(ledger, client, session.media_root, completed),
                server=server,
            )
            for problem in report.problems:
                context.log.warning(problem)
            downloaded += len(report.downloaded)
            problems += len(report.problems)
        return dg.MaterializeResult(
            metadata={
                "downloaded_files": downloaded,
                "problems": problems,
                "media_root": dg.MetadataValue.path(str(session.media_root)),
            }
        )

    @dg.asset(
        key=keys.lineage,
        deps=[keys.videos, keys.media],
        group_name=group,
        owners=settings.owners,
        kinds={"pandas", "parquet"},
        automation_condition=dg.AutomationCondition.eager(),
        description="One row per variant attempt: request, Video record, media and cost.",
    )
    def lineage(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        partition_keys = set(context.instance.get_dynamic_partitions(keys.partitions.name))
        frame = build_lineage_frame(session.ledger(), prices=session.prices)
        frame = frame[frame["key"].isin(partition_keys)].reset_index(drop=True)
        path = write_parquet_atomically(frame, session.lineage_path)
        table = read_request_table(settings.table_path, strict=settings.strict)
        manifest = build_manifest(
            settings, frame, table_hash=table.content_hash, run_id=context.run_id
        )
        output_dir = settings.resolved_output_dir.rstrip("/")
        manifest_path = write_manifest_atomically(manifest, f"{output_dir}/{MANIFEST_FILE_NAME}")
        report_path = write_report(
            frame, output_dir, title=f"Experiment {settings.name}", manifest=manifest
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(frame),
                "dagster/column_schema": column_schema(frame),
                "dagster/column_lineage": column_lineage(keys.request_table),
                "path": dg.MetadataValue.path(path),
                "report": dg.MetadataValue.path(report_path),
                "manifest_path": dg.MetadataValue.path(manifest_path),
                "manifest": dg.MetadataValue.json(manifest),
                "rows_by_state": dg.MetadataValue.json(status_counts(frame)),
                "rows_by_status": dg.MetadataValue.json(status_counts(frame, "status")),
                "variant_matrix": dg.MetadataValue.md(variant_matrix_markdown(frame)),
                "preview": markdown_preview(frame, PREVIEW_COLUMNS),
            }
        )

    return [request_table, submissions, videos, media, lineage]
