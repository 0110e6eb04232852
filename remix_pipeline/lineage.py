"""The lineage table: one row per variant attempt, and the chain from a video to its root.

Built from the ledger (the durable record of every attempt) so that it never depends on what
a single process remembers; written as Parquet atomically so a reader never sees half a file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from upath import UPath

from remix_pipeline.contract import ContentVariant
from remix_pipeline.ledger import Ledger
from remix_pipeline.pricing import DEFAULT_PRICES_PER_SECOND, estimate_cost_usd
from remix_pipeline.tempfiles import write_atomically

VIDEO_COLUMNS: tuple[str, ...] = (
    "video_id",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error_code",
    "error_message",
)
REQUEST_COLUMNS: tuple[str, ...] = (
    "key",
    "attempt",
    "state",
    "source_video_id",
    "variant",
    "experiment",
    "replicate",
    "prompt",
    "prompt_sha256",
    "table_hash",
    "row_number",
    "run_id",
    "submitted_at",
    "adopted",
    "server",
    "operation",
    "source_sha256",
)
MEDIA_COLUMNS: tuple[str, ...] = tuple(
    f"{v.value}_{suffix}" for v in ContentVariant for suffix in ("path", "sha256", "derived")
)
LINEAGE_COLUMNS: tuple[str, ...] = (
    REQUEST_COLUMNS + VIDEO_COLUMNS + MEDIA_COLUMNS + ("estimated_cost_usd",)
)
# Unix seconds in the ledger and the Video record; datetime64[ns, UTC] in the table, NaT when
# not known (yet).
TIME_COLUMNS: tuple[str, ...] = ("submitted_at", "created_at", "completed_at", "expires_at")
TIME_DTYPE = "datetime64[ns, UTC]"
TIME_TYPE = pa.timestamp("ns", tz="UTC")

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "key": "Content-derived variant key (the Dagster partition).",
    "attempt": "1 for the first submission; retries of failed variants count up.",
    "state": "Ledger state of the attempt: intent, unknown, submitted, completed, failed.",
    "source_video_id": "The video derived from; empty for a create or an uploaded file.",
    "prompt_sha256": "sha256 of the prompt as submitted.",
    "table_hash": "sha256 of the request table file the variant came from.",
    "row_number": "Data row of the request table (1-based, header excluded).",
    "run_id": "Dagster run that recorded the submission intent.",
    "submitted_at": "When the server's answer accepting the job was recorded (UTC).",
    "adopted": "True when the job was recovered by orphan matching after a lost response.",
    "server": "Where the job was sent: the base URL without credentials, or 'embedded'.",
    "operation": "What was asked of the server: remix, edit, extend or create.",
    "source_sha256": "sha256 of the uploaded file an edit or extension derived from.",
    "thumbnail_derived": "True when the server could not supply the thumbnail and it was made "
    "here from the MP4.",
    "spritesheet_derived": "True when the server could not supply the spritesheet and it was "
    "made here from the MP4.",
    "video_id": "The remix job's id on the server.",
    "created_at": "When the server created the job (UTC).",
    "completed_at": "When the job completed (UTC); empty until it has.",
    "expires_at": "When the server stops serving the job's media (UTC); empty if never.",
    "estimated_cost_usd": "seconds x the per-second price of model and size.",
}


# Columns that are never null keep numpy dtypes; the others are pandas' nullable ones. Text is
# pandas' own `str`, named here because any mapper at all sends an unnamed type through
# Python objects: 0.4 s a column of 1,000,000 paths, where wrapping the Arrow array is free.
_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype("pyarrow", na_value=np.nan),
}
_NEVER_NULL = ("attempt", "replicate", "row_number", "adopted")


def build_lineage_frame(
    ledger: Ledger,
    experiment: str | None = None,
    prices: Mapping[str, Mapping[str, float]] = DEFAULT_PRICES_PER_SECOND,
) -> pd.DataFrame:
    """Every attempt of every variant in table order, newest attempt last within a key.

    Built in Arrow from the ledger's columns: 100,000 attempts take well under a second,
    with no Python object per attempt. `prices` is the experiment's price table
    (`ExperimentSettings.price_table()`), the one its pre-run estimate used, so the cost
    column agrees with that estimate.
    """
    table = ledger.lineage_columns(experiment)
    # A create, or an edit of an uploaded file, has no source video: null, not "".
    source = table["source_video_id"]
    table = table.set_column(
        table.schema.get_field_index("source_video_id"),
        "source_video_id",
        pc.if_else(pc.equal(source, ""), pa.scalar(None, pa.string()), source),
    )
    for column in TIME_COLUMNS:
        table = table.set_column(
            table.schema.get_field_index(column), column, _utc_times(table[column])
        )
    table = table.append_column("estimated_cost_usd", _costs(table, prices))
    table = table.select(list(LINEAGE_COLUMNS))
    return pd.DataFrame({name: _series(table[name], name) for name in LINEAGE_COLUMNS})


def _series(column: pa.ChunkedArray, name: str) -> pd.Series:
    if name in _NEVER_NULL:
        return column.to_pandas()
    return column.to_pandas(types_mapper=_NULLABLE.get)


def _utc_times(seconds: pa.ChunkedArray) -> pa.ChunkedArray:
    """Unix seconds as UTC times; a float's digits below a microsecond are rounding noise of
    the clock, not information."""
    micros = pc.round(pc.multiply(seconds.cast(pa.float64()), 1_000_000))
    return micros.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")).cast(TIME_TYPE)


def _costs(table: pa.Table, prices: Mapping[str, Mapping[str, float]]) -> pa.ChunkedArray:
    """`estimate_cost_usd` once per distinct (model, size, seconds), not once per attempt."""
    combos = (
        pc.binary_join_element_wise(table["model"], table["size"], table["seconds"], _SEPARATOR)
        .combine_chunks()
        .dictionary_encode()
    )
    costs = [
        estimate_cost_usd(*combo.split(_SEPARATOR), prices)
        for combo in combos.dictionary.to_pylist()
    ]
    return pa.chunked_array([pc.take(pa.array(costs, pa.float64()), combos.indices)])


_SEPARATOR = "\0"


def write_parquet_atomically(frame: pd.DataFrame, destination: str) -> str:
    """Write Parquet so that readers see the old file or the new one, never a partial one."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return write_atomically(destination, buffer.getvalue(), crash_label="lineage")


def read_lineage(source: str) -> pd.DataFrame:
    """The table at a local path or an fsspec URL.

    pyarrow reads a local file itself. A Python file object is read on one thread: pyarrow's
    reader threads on one can outlive the interpreter and abort the process as it exits
    ("terminate called without an active exception", exit 134; apache/arrow#34314), which
    `remix-pipeline lineage` did about one run in ten.
    """
    path = UPath(source)
    if path.protocol in ("", "file", "local"):
        return pd.read_parquet(path.path)
    with path.open("rb") as handle:
        return pd.read_parquet(handle, use_threads=False)


def trace(frame: pd.DataFrame, video_id: str) -> list[dict[str, object]]:
    """The chain from `video_id` back to its root source, the video itself first."""
    by_video = {
        row["video_id"]: row
        for row in frame.to_dict("records")
        if isinstance(row.get("video_id"), str)
    }
    chain: list[dict[str, object]] = []
    seen: set[str] = set()
    current: str | None = video_id
    while current and current not in seen:
        seen.add(current)
        row = by_video.get(current)
        if row is None:
            chain.append({"video_id": current, "source_video_id": None, "root": True})
            break
        chain.append(row)
        current = row.get("source_video_id")  # type: ignore[assignment]
        if not isinstance(current, str) or not current:
            # The root is no video: the uploaded file, or the prompt a create began with.
            sha = row.get("source_sha256")
            if isinstance(sha, str) and sha:
                chain.append({"video_id": None, "root": "upload", "source_sha256": sha})
            else:
                chain.append({"video_id": None, "root": "prompt", "prompt": row.get("prompt")})
            break
    return chain


def status_counts(frame: pd.DataFrame, column: str = "state") -> dict[str, int]:
    if not len(frame):
        return {}
    return {str(k): int(v) for k, v in frame.groupby(column).size().items()}
