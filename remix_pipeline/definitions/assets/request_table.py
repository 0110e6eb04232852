"""The validated request table."""

import dagster as dg

from remix_pipeline.definitions.metadata import table_metadata
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import asset_attributes
from remix_pipeline.request_table import TableUnreadableError, read_request_table


def build_request_table_asset(session: ExperimentSession) -> dg.AssetsDefinition:
    settings = session.settings

    @dg.asset(
        key=session.keys.request_table,
        kinds={"csv"},
        description="The validated request table: one row per source video and prompt.",
        **asset_attributes(settings),
    )
    def request_table(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        try:
            table = read_request_table(settings.table_path, strict=settings.strict)
        except TableUnreadableError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        if table.problems:
            context.log.warning(f"{len(table.problems)} invalid rows; the valid rows proceed")
        return dg.MaterializeResult(metadata=table_metadata(table))

    return request_table
