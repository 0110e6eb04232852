"""What an experiment looks like in the Dagster UI itself: markdown with inline images.

Dagster's UI renders a markdown metadata value's `![alt](data:image/webp;base64,...)` as an
image, also inside a table cell, so the results can be seen without leaving it:

- the lineage asset's `variant_matrix`: every variant's thumbnail, status, label and short
  video id (the full id is the image's alt text and title), laid out by the report's rule
  (`report.layout_for`): a matrix where labels are shared across sources, otherwise one
  row of cards per source;
- a `videos` partition's `preview`: the thumbnail and the spritesheet (a filmstrip) of a
  completed variant, or the error code and message of a failed one.

Images are re-encoded small with Pillow (a WebP already within its bounds is kept as it
is), so each event's metadata stays under a stated bound however many variants an
experiment has. The images are read from where the media step
stored them (a local path or an fsspec URL); an image that cannot be read is left out and the
text stays.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import pandas as pd
from PIL import Image
from upath import UPath

from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.ledger import Attempt, AttemptState, Ledger, MediaRecord
from remix_pipeline.report import (
    LAYOUT_MATRIX,
    Matrix,
    layout_for,
    present,
    status_of,
    variant_matrix,
)

# A matrix thumbnail: at most 160 px wide (16:9 gives 160x90), re-encoded until it is at most
# 5 kB (6.7 kB as base64): about 3 kB at the first quality tried for the sample's clips.
MATRIX_THUMB_WIDTH = 160
MATRIX_THUMB_MAX_BYTES = 5_000
# A video partition's own preview: a larger thumbnail and the spritesheet as a filmstrip.
PREVIEW_THUMB_WIDTH = 320
PREVIEW_THUMB_MAX_BYTES = 12_000
FILMSTRIP_WIDTH = 480
FILMSTRIP_MAX_BYTES = 36_000
QUALITIES = (70, 55, 40, 28, 18)
# A preview is encoded for every downloaded video, so its cost is paid at the media step's
# pace: bilinear scaling and WebP's effort level 2 take 5.7 ms for a 640x360 spritesheet
# where Lanczos and the default level 4 took 13.4 ms, for a picture 10 % smaller and, at a
# filmstrip's size, no visible difference.
PREVIEW_RESAMPLING = Image.Resampling.BILINEAR
WEBP_METHOD = 2

# How many variants the UI matrix draws before it shows only the most recent ones.
MATRIX_MAX_CELLS = 48
# Each event's metadata is one row of Dagster's event log and the asset page loads the latest
# materialization's metadata whole, so one event must stay small whatever the experiment's
# size. 48 cells of at most 6.7 kB of image and about 1 kB of text (two copies of an id of
# up to 256 characters, status, label, error code) is about 370 kB; the bound rounds it up.
# Cells beyond it are left out, oldest first, even below MATRIX_MAX_CELLS.
MATRIX_MAX_BYTES = 400_000
# A partition's preview: one thumbnail (16 kB as base64), one filmstrip (48 kB) and text.
PREVIEW_MAX_BYTES = 72_000
ERROR_MESSAGE_CHARS = 2_000
DERIVED_CAPTION = "derived from the MP4"
_SHORT_ID_HEAD, _SHORT_ID_TAIL = 10, 4


def data_uri(source: object, width: int, max_bytes: int) -> str | None:
    """The image at `source` (path or URL) as a WebP data URI at most `width` px wide and at
    most `max_bytes` encoded; None when there is no image there to read."""
    if not present(source):
        return None
    try:
        with UPath(str(source)).open("rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    key = (hashlib.sha256(raw).hexdigest(), width, max_bytes)
    if key not in _ENCODED:
        if len(_ENCODED) >= _ENCODED_KEPT:
            _ENCODED.pop(next(iter(_ENCODED)))
        _ENCODED[key] = _encoded(raw, width, max_bytes)
    return _ENCODED[key]


# The same image shown again (by another event of the same process) is encoded once.
_ENCODED: dict[tuple[str, int, int], str | None] = {}
_ENCODED_KEPT = 256


def _encoded(raw: bytes, width: int, max_bytes: int) -> str | None:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format == "WEBP" and image.width <= width and len(raw) <= max_bytes:
                return _webp_uri(raw)  # already small enough: shown as the server sent it
            picture = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    target = min(width, picture.width)
    while True:
        height = max(1, round(picture.height * target / picture.width))
        scaled = picture.resize((target, height), PREVIEW_RESAMPLING)
        for quality in QUALITIES:
            buffer = io.BytesIO()
            scaled.save(buffer, "WEBP", quality=quality, method=WEBP_METHOD)
            if buffer.tell() <= max_bytes:
                return _webp_uri(buffer.getvalue())
        if target <= 16:
            return None
        target = max(16, target * 3 // 4)


def _webp_uri(webp: bytes) -> str:
    return f"data:image/webp;base64,{base64.b64encode(webp).decode('ascii')}"


def short_id(video_id: str) -> str:
    """A short form of an id for a crowded cell; the full id is always beside it in the same
    event (the image's alt text and title)."""
    if len(video_id) <= _SHORT_ID_HEAD + _SHORT_ID_TAIL + 1:
        return video_id
    return f"{video_id[:_SHORT_ID_HEAD]}…{video_id[-_SHORT_ID_TAIL:]}"


def _text(value: object) -> str:
    """Plain text safe inside a markdown table cell and as emphasis-free prose."""
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\n", " ")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _alt(value: object) -> str:
    return _text(value).replace("[", "(").replace("]", ")").replace('"', "'")


def _image(uri: str, alt: str) -> str:
    return f'![{_alt(alt)}]({uri} "{_alt(alt)}")'


def _truthy(value: object) -> bool:
    return present(value) and bool(value)


# --- the lineage asset's variant matrix ---------------------------------------------------


def _entry_caption(row: dict[str, Any], with_image: bool, several: bool) -> str:
    parts = [f"**{_text(status_of(row))}**", _text(row.get("_label"))]
    if several:
        parts.append(f"r{row.get('replicate')}")
    if present(row.get("video_id")):
        video_id = str(row["video_id"])
        parts.append(f"`{_text(short_id(video_id) if with_image else video_id)}`")
    if row["attempts"] > 1:
        parts.append(f"({row['attempts']} attempts)")
    if present(row.get("error_code")):
        parts.append(f"`{_text(row['error_code'])}`")
    caption = " · ".join(parts)
    if with_image and _truthy(row.get("thumbnail_derived")):
        caption += f" · _{DERIVED_CAPTION}_"
    return caption


def _cell(rows: list[dict[str, Any]]) -> str:
    """Replicates side by side: their images on one line, their captions below."""
    images, captions = [], []
    several = len(rows) > 1
    for row in rows:
        uri = data_uri(row.get("thumbnail_path"), MATRIX_THUMB_WIDTH, MATRIX_THUMB_MAX_BYTES)
        if uri:
            images.append(_image(uri, str(row.get("video_id") or "thumbnail")))
        captions.append(_entry_caption(row, uri is not None, several))
    # Dagster's renderer drops the <br> (GitHub's keeps it): the space keeps captions apart.
    return " <br>".join(([" ".join(images)] if images else []) + captions)


def _recent_keys(frame: pd.DataFrame, limit: int) -> tuple[set[str], int]:
    """The `limit` variants submitted last (their latest attempt), and how many there are."""
    latest = frame.sort_values(["key", "attempt"], kind="stable").groupby("key").tail(1)
    when = pd.to_datetime(latest["submitted_at"], utc=True, errors="coerce")
    order = latest.assign(_when=when).sort_values(
        ["_when", "row_number", "replicate"], ascending=False, kind="stable", na_position="last"
    )
    return set(order["key"].head(limit)), len(latest)


def _render(matrix: Matrix) -> str:
    def cell(source: str, label: str) -> str:
        rows = matrix.cells.get((source, label), [])
        for row in rows:
            row["_label"] = label
        return _cell(rows) if rows else "·"

    if layout_for(matrix) == LAYOUT_MATRIX:
        lines = [
            "| source | " + " | ".join(_text(v) for v in matrix.variants) + " |",
            "|" + " --- |" * (len(matrix.variants) + 1),
        ]
        for source in matrix.sources:
            cells = " | ".join(cell(source, label) for label in matrix.variants)
            lines.append(f"| {_text(source)} | {cells} |")
        return "\n".join(lines)
    blocks = []
    for source in matrix.sources:
        labels = [v for v in matrix.variants if (source, v) in matrix.cells]
        blocks.append(
            "\n".join(
                [
                    f"**{_text(source)}**",
                    "",
                    "| " + " | ".join(_text(v) for v in labels) + " |",
                    "|" + " --- |" * len(labels),
                    "| " + " | ".join(cell(source, v) for v in labels) + " |",
                ]
            )
        )
    return "\n\n".join(blocks)


def variant_matrix_markdown(
    frame: pd.DataFrame,
    *,
    report_path: str | None = None,
    max_cells: int = MATRIX_MAX_CELLS,
    max_bytes: int = MATRIX_MAX_BYTES,
) -> str:
    """The lineage's variants with their thumbnails inline, laid out as the report is.

    Above `max_cells` variants (or `max_bytes` of markdown) only the most recently submitted
    are drawn, and a last line says how many are left out and where the report is.
    """
    if not len(frame):
        return "_(no variants yet)_"
    keys, total = _recent_keys(frame, max_cells)
    while True:
        text = _render(variant_matrix(frame[frame["key"].isin(keys)]))
        if len(keys) < total:
            where = f" `{_text(report_path)}`" if report_path else ""
            text += (
                f"\n\n_{total - len(keys)} of {total} variants left out (only the "
                f"{len(keys)} submitted last are shown); all of them are in the report{where}_"
            )
        if len(text.encode("utf-8")) <= max_bytes or len(keys) <= 1:
            return text
        keys, _ = _recent_keys(frame[frame["key"].isin(keys)], max(1, len(keys) * 3 // 4))


def variant_matrix_metadata(
    frame: pd.DataFrame, report_path: str | None, settings: ExperimentSettings | None = None
) -> dg.MetadataValue:
    """The lineage asset's `variant_matrix` entry, drawing `settings.ui_matrix_cells`."""
    cells = settings.ui_matrix_cells if settings is not None else MATRIX_MAX_CELLS
    return dg.MetadataValue.md(
        variant_matrix_markdown(frame, report_path=report_path, max_cells=cells)
    )


# --- a video partition's preview ------------------------------------------------------------


def attempt_preview_markdown(
    attempt: Attempt, media: Mapping[str, MediaRecord] | None = None
) -> str:
    """A variant's result as the partition shows it: the thumbnail and filmstrip of a
    completed video (each marked when it was derived from the MP4), the error of a failed
    one, or where it stands."""
    video = attempt.video or {}
    status = str(video.get("status") or attempt.state.value)
    head = [f"**{_text(status)}**", _text(attempt.variant), f"replicate {attempt.replicate}"]
    if attempt.video_id:
        head.append(f"`{_text(attempt.video_id)}`")
    lines = [" · ".join(head)]
    if attempt.state is AttemptState.FAILED:
        error = video.get("error") or {}
        code = attempt.error_code or error.get("code") or "unknown_error"
        message = str(attempt.error_message or error.get("message") or "")
        lines.append(f"`{_text(code)}`: {_text(message[:ERROR_MESSAGE_CHARS])}")
        return "\n\n".join(lines)
    if attempt.state is not AttemptState.COMPLETED:
        return "\n\n".join(lines)
    if not media:
        lines.append(
            "_The media are downloaded by the next `media` run, which adds the thumbnail and "
            "the filmstrip to this partition as an observation._"
        )
        return "\n\n".join(lines)
    for variant, title, width, limit in (
        ("thumbnail", "thumbnail", PREVIEW_THUMB_WIDTH, PREVIEW_THUMB_MAX_BYTES),
        ("spritesheet", "filmstrip", FILMSTRIP_WIDTH, FILMSTRIP_MAX_BYTES),
    ):
        record = media.get(variant)
        uri = data_uri(record.path, width, limit) if record else None
        if record is None or uri is None:
            lines.append(f"_no {title}_")
            continue
        caption = title + (f" · _{DERIVED_CAPTION}_" if record.derived else "")
        lines.append(f"{_image(uri, f'{title} of {attempt.video_id}')}\n\n{caption}")
    return "\n\n".join(lines)


def attempt_preview(
    attempt: Attempt, media: Mapping[str, MediaRecord] | None = None
) -> dg.MetadataValue:
    return dg.MetadataValue.md(attempt_preview_markdown(attempt, media))


def preview_observations(
    asset_key: dg.AssetKey, ledger: Ledger, downloaded: Iterable[MediaRecord]
) -> list[dg.AssetObservation]:
    """One observation per attempt that has just got media (not one per file): its
    partition's preview with every image the attempt has by now."""
    pairs = sorted({(record.key, record.attempt) for record in downloaded})
    observations = []
    for key, number in pairs:
        attempt, media = ledger.get(key, number), ledger.media(key, number)
        metadata: dict[str, Any] = {
            "preview": attempt_preview(attempt, media),
            "attempt": number,
            "video_id": attempt.video_id or "",
        }
        for variant in ("thumbnail", "spritesheet"):
            if variant in media:
                metadata[f"{variant}_derived"] = media[variant].derived
        observations.append(
            dg.AssetObservation(asset_key=asset_key, partition=key, metadata=metadata)
        )
    return observations


def log_previews(
    context: dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    ledger: Ledger,
    downloaded: Iterable[MediaRecord],
) -> None:
    """Show freshly downloaded media on their `videos` partitions (the hook of the media
    step: the completion sensor reports a video before its media exist)."""
    for observation in preview_observations(asset_key, ledger, downloaded):
        context.log_event(observation)
