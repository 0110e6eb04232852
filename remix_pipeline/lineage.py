"""The lineage table: one row per variant attempt, and the chain from a video to its root.

Built from the ledger (the durable record of every attempt) so that it never depends on what
a single process remembers; written as Parquet atomically so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import pandas as pd
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


_VIDEO_FIELDS: tuple[str, ...] = tuple(
    c for c in VIDEO_COLUMNS if c not in ("video_id", "error_code", "error_message")
)


def _video_fields(frame: pd.DataFrame) -> pd.DataFrame:
    """Flatten the stored Video JSON into columns; the ledger's own error wins over the
    video's, since it also covers failures that never produced a video."""
    records = [json.loads(text) if isinstance(text, str) else {} for text in frame["video"]]
    fields = pd.DataFrame.from_records(
        [{name: record.get(name) for name in _VIDEO_FIELDS} for record in records],
        index=frame.index,
        columns=list(_VIDEO_FIELDS),
    )
    errors = [record.get("error") or {} for record in records]
    video_codes = pd.Series([e.get("code") for e in errors], index=frame.index, dtype=object)
    video_messages = pd.Series([e.get("message") for e in errors], index=frame.index, dtype=object)
    fields["error_code"] = frame["error_code"].where(frame["error_code"].notna(), video_codes)
    fields["error_message"] = frame["error_message"].where(
        frame["error_message"].notna(), video_messages
    )
    return fields


def build_lineage_frame(
    ledger: Ledger,
    experiment: str | None = None,
    prices: Mapping[str, Mapping[str, float]] = DEFAULT_PRICES_PER_SECOND,
) -> pd.DataFrame:
    """Every attempt of every variant, newest attempt last within a key.

    `prices` is the experiment's price table (`ExperimentSettings.price_table()`), the one
    its pre-run estimate used, so the cost column agrees with that estimate.
    """
    frame = ledger.attempts_frame()
    if experiment is not None and len(frame):
        frame = frame[frame["experiment"] == experiment]
    if len(frame):
        fields = _video_fields(frame)
        frame = frame.drop(columns=[c for c in fields.columns if c in frame.columns])
        frame = pd.concat([frame, fields], axis=1)
    for column in LINEAGE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    if len(frame):
        # A create, or an edit of an uploaded file, has no source video: null, not "".
        frame["source_video_id"] = frame["source_video_id"].where(
            frame["source_video_id"] != "", None
        )
        frame["estimated_cost_usd"] = [
            estimate_cost_usd(m, s, sec, prices)
            for m, s, sec in zip(frame["model"], frame["size"], frame["seconds"], strict=True)
        ]
        frame = frame.sort_values(["row_number", "key", "attempt"], kind="stable")
    for column in TIME_COLUMNS:
        frame[column] = _utc_times(frame[column])
    return frame.loc[:, list(LINEAGE_COLUMNS)].reset_index(drop=True)


def _utc_times(seconds: pd.Series) -> pd.Series:
    """Unix seconds (ints, floats or None) as UTC times; a float's digits below a microsecond
    are rounding noise of the clock, not information."""
    numbers = pd.to_numeric(seconds, errors="coerce")
    return pd.to_datetime(numbers, unit="s", utc=True).dt.round("us").astype(TIME_DTYPE)


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
