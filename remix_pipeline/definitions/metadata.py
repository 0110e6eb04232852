"""How ledger attempts and tables appear in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

# Not re-exported by `dagster` in 1.13; dagster-fivetran and dagster-dbt import it from here.
from dagster._core.definitions.metadata import NamespacedMetadataSet

from remix_pipeline.ledger import Attempt, LedgerEvent
from remix_pipeline.lineage import COLUMN_DESCRIPTIONS
from remix_pipeline.previews import attempt_preview
from remix_pipeline.pricing import estimate_cost_usd
from remix_pipeline.request_table import RequestTable

PREVIEW_ROWS = 20
PriceTable = Mapping[str, Mapping[str, float]]

# Lineage columns and the request-table columns they come from.
REQUEST_TABLE_COLUMNS: dict[str, str] = {
    "source_video_id": "The video to remix (an id the server knows).",
    "prompt": "What the remix should change.",
    "variant": "A label, unique per source.",
    "experiment": "A free-form experiment label.",
    "replicates": "How many times to run the same prompt (default 1).",
}
LINEAGE_FROM_TABLE: dict[str, tuple[str, ...]] = {
    "source_video_id": ("source_video_id",),
    "prompt": ("prompt",),
    "prompt_sha256": ("prompt",),
    "variant": ("variant",),
    "experiment": ("experiment",),
    "replicate": ("replicates",),
    "row_number": ("source_video_id", "prompt", "variant", "experiment", "replicates"),
    "key": ("source_video_id", "prompt", "replicates"),
}


def attempt_metadata(
    attempt: Attempt, prices: PriceTable, history: Sequence[LedgerEvent] = ()
) -> dict[str, Any]:
    """A variant attempt's request, its history in the ledger and, when known, its Video
    record, priced with the experiment's price table (the one its estimate and its lineage
    use)."""
    video = attempt.video or {}
    error = video.get("error") or {}
    metadata: dict[str, Any] = {
        "key": attempt.key,
        "attempt": attempt.attempt,
        "state": attempt.state.value,
        "source_video_id": attempt.source_video_id,
        "variant": attempt.variant,
        "experiment": attempt.experiment,
        "replicate": attempt.replicate,
        "prompt": attempt.prompt,
        "prompt_sha256": attempt.prompt_sha256,
        "table_hash": attempt.table_hash,
        "adopted": attempt.adopted,
    }
    if attempt.video_id:
        metadata["video_id"] = attempt.video_id
    if video:
        metadata["video"] = dg.MetadataValue.json(video)
        metadata["status"] = str(video.get("status"))
        cost = estimate_cost_usd(
            video.get("model"), video.get("size"), video.get("seconds"), prices
        )
        if cost is not None:
            metadata["estimated_cost_usd"] = cost
    metadata.update(
        RemixMetadataSet(
            key=attempt.key,
            attempt=attempt.attempt,
            video_id=attempt.video_id,
            estimated_cost_usd=metadata.get("estimated_cost_usd"),
        )
    )
    code = attempt.error_code or error.get("code")
    if code:
        metadata["error_code"] = str(code)
        metadata["error_message"] = str(attempt.error_message or error.get("message") or "")
    metadata["preview"] = attempt_preview(attempt)
    if history:
        metadata["history"] = history_markdown(history)
    return metadata


def history_markdown(history: Sequence[LedgerEvent]) -> dg.MetadataValue:
    """The attempt's steps (intent, sent, submitted or adopted, ended) as a table: how it got
    where it is, for an audit."""
    rows = [
        (
            datetime.fromtimestamp(event.at, tz=UTC).isoformat(timespec="seconds"),
            event.from_state.value if event.from_state else "",
            event.to_state.value,
            event.detail or "",
        )
        for event in history
    ]
    frame = pd.DataFrame(rows, columns=["at (UTC)", "from", "to", "detail"])
    return dg.MetadataValue.md(frame.to_markdown(index=False))


def markdown_preview(frame: pd.DataFrame, columns: list[str] | None = None) -> dg.MetadataValue:
    if not len(frame):
        return dg.MetadataValue.md("_(no rows)_")
    view = frame if columns is None else frame.loc[:, columns]
    text = view.head(PREVIEW_ROWS).astype(str).to_markdown(index=False)
    if len(frame) > PREVIEW_ROWS:
        text += f"\n\n_{len(frame) - PREVIEW_ROWS} more rows_"
    return dg.MetadataValue.md(text)


def column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=str(name),
                type=str(dtype),
                description=COLUMN_DESCRIPTIONS.get(str(name)),
            )
            for name, dtype in frame.dtypes.items()
        ]
    )


def column_lineage(request_table: dg.AssetKey) -> dg.TableColumnLineage:
    """Which request-table columns each lineage column derives from."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=request_table, column_name=c) for c in sources]
            for column, sources in LINEAGE_FROM_TABLE.items()
        }
    )


def request_table_schema() -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name, type="string" if name != "replicates" else "int", description=text
            )
            for name, text in REQUEST_TABLE_COLUMNS.items()
        ]
    )


def table_metadata(table: RequestTable) -> dict[str, Any]:
    problems = "\n".join(f"- {p}" for p in table.problems[:200]) or "_(none)_"
    return {
        "table_path": dg.MetadataValue.path(table.path),
        "table_hash": table.content_hash,
        "dagster/row_count": table.row_count,
        "dagster/column_schema": request_table_schema(),
        "variants": len(table.requests),
        "invalid_rows": len(table.problems),
        "problems": dg.MetadataValue.md(problems),
    }


class RemixMetadataSet(NamespacedMetadataSet):
    """The typed part of a variant attempt's metadata, under `remix_pipeline/`: what the
    completion sensor dedups by and what tools read back. The plain keys beside it are the
    view for people in the UI."""

    key: str | None = None
    attempt: int | None = None
    video_id: str | None = None
    estimated_cost_usd: float | None = None

    @classmethod
    def namespace(cls) -> str:
        return "remix_pipeline"

    @classmethod
    def attempt_of(cls, metadata: Mapping[str, Any]) -> int | None:
        """The attempt a materialization reports; events stored before the typed set existed
        carry it as the plain `attempt` key."""
        attempt = cls.extract(metadata).attempt
        if attempt is None and "attempt" in metadata:
            value = metadata["attempt"]
            attempt = int(getattr(value, "value", value))
        return attempt
