"""The lineage table: one row per variant attempt, with its manifest and report."""

from typing import Any

import dagster as dg
import pandas as pd

from remix_pipeline.definitions.metadata import column_lineage, column_schema, markdown_preview
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import asset_attributes
from remix_pipeline.lineage import build_lineage_frame, status_counts, write_parquet_atomically
from remix_pipeline.manifest import MANIFEST_FILE_NAME, build_manifest, write_manifest_atomically
from remix_pipeline.previews import variant_matrix_metadata
from remix_pipeline.report import write_report
from remix_pipeline.request_table import read_request_table

PREVIEW_COLUMNS = ["key", "attempt", "source_video_id", "variant", "status", "video_id"]


def build_lineage_asset(session: ExperimentSession) -> dg.AssetsDefinition:
    keys = session.keys

    @dg.asset(
        key=keys.lineage,
        deps=[keys.videos, keys.media],
        kinds={"pandas", "parquet"},
        automation_condition=dg.AutomationCondition.eager(),
        description="One row per variant attempt: request, Video record, media and cost.",
        **asset_attributes(session.settings),
    )
    def lineage(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        partition_keys = set(context.instance.get_dynamic_partitions(keys.partitions.name))
        frame = build_lineage_frame(session.ledger(), prices=session.prices)
        frame = frame[frame["key"].isin(partition_keys)].reset_index(drop=True)
        return dg.MaterializeResult(metadata=write_lineage(session, frame, context.run.run_id))

    return lineage


def write_lineage(session: ExperimentSession, frame: pd.DataFrame, run_id: str) -> dict[str, Any]:
    """Write the table, its manifest and its report; their metadata for the UI."""
    settings = session.settings
    path = write_parquet_atomically(frame, session.lineage_path)
    table = read_request_table(settings.table_path, strict=settings.strict)
    manifest = build_manifest(settings, frame, table_hash=table.content_hash, run_id=run_id)
    manifest_path = write_manifest_atomically(
        manifest, f"{session.output_dir}/{MANIFEST_FILE_NAME}"
    )
    report_path = write_report(
        frame, session.output_dir, title=f"Experiment {settings.name}", manifest=manifest
    )
    return {
        "dagster/row_count": len(frame),
        "dagster/column_schema": column_schema(frame),
        "dagster/column_lineage": column_lineage(session.keys.request_table),
        "path": dg.MetadataValue.path(path),
        "report": dg.MetadataValue.path(report_path),
        "manifest_path": dg.MetadataValue.path(manifest_path),
        "manifest": dg.MetadataValue.json(manifest),
        "rows_by_state": dg.MetadataValue.json(status_counts(frame)),
        "rows_by_status": dg.MetadataValue.json(status_counts(frame, "status")),
        "variant_matrix": variant_matrix_metadata(frame, report_path, settings),
        "preview": markdown_preview(frame, PREVIEW_COLUMNS),
    }
