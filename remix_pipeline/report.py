"""The experiment report: sources by variants, each cell what the variant produced.

A static HTML page beside the lineage table (`<output_dir>/report.html`) with inline CSS and
no script, so it opens from disk, from a copied folder or from a build artifact alike: media
are linked by paths relative to the page (also when page and media sit in an object store, so
the folder can be synced down as is). Every value from the table or the server is escaped
(prompts are user text). The Dagster UI shows the same layout as markdown
(`remix_pipeline.previews`).

The layout fits the data (`layout_for`): sources by variant labels when the labels are
shared across sources, otherwise one row of cards per source (each source's own labels
would leave most cells of a matrix empty).
"""

from __future__ import annotations

import html
import os
import posixpath
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from upath import UPath

from remix_pipeline.tempfiles import write_atomically

REPORT_FILE_NAME = "report.html"


@dataclass(frozen=True)
class Matrix:
    """Latest attempt of every replicate, placed by (source, variant label)."""

    sources: list[str]
    variants: list[str]
    cells: dict[tuple[str, str], list[dict[str, Any]]]


def present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and value != ""


def _label(row: dict[str, Any]) -> str:
    variant = row.get("variant")
    return str(variant) if present(variant) else f"row {row.get('row_number')}"


LAYOUT_MATRIX = "matrix"
LAYOUT_CARDS = "cards"


def layout_for(matrix: Matrix) -> str:
    """`matrix` when at least half of the variant labels are shared, i.e. appear for two or
    more sources (so most of the grid is filled); otherwise `cards`: one row per source with
    only its own variants. A single source is always cards."""
    sources_per_label = Counter(label for _, label in matrix.cells)
    shared = sum(1 for count in sources_per_label.values() if count >= 2)
    return LAYOUT_MATRIX if matrix.variants and 2 * shared >= len(matrix.variants) else LAYOUT_CARDS


def variant_matrix(frame: pd.DataFrame) -> Matrix:
    """Replicates stay side by side in their cell; earlier attempts give way to the latest."""
    if not len(frame):
        return Matrix([], [], {})
    ordered = frame.sort_values(["row_number", "key", "attempt"], kind="stable")
    attempts = ordered.groupby("key")["attempt"].count().to_dict()
    latest = ordered.groupby("key", sort=False).tail(1)
    sources: list[str] = []
    variants: list[str] = []
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in latest.to_dict("records"):
        source, label = str(row["source_video_id"]), _label(row)
        if source not in sources:
            sources.append(source)
        if label not in variants:
            variants.append(label)
        row["attempts"] = int(attempts.get(row["key"], 1))
        cells.setdefault((source, label), []).append(row)
    for found in cells.values():
        found.sort(key=lambda r: int(r.get("replicate") or 1))
    return Matrix(sources, variants, cells)


def status_of(row: dict[str, Any]) -> str:
    status = row.get("status")
    return str(status) if present(status) else str(row.get("state") or "unknown")


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#555;margin:0 0 16px}
.meta code{background:#eef;padding:0 3px}
table.matrix{border-collapse:collapse}
.matrix th,.matrix td{border:1px solid #d6d9e0;padding:8px;vertical-align:top;background:#fff}
.matrix th{background:#eef0f5;text-align:left}
table.cards,.cards tbody{display:block}
.cards tr{display:flex;gap:10px;align-items:flex-start;margin:0 0 12px}
.cards th{text-align:left;padding:8px 12px 8px 0;width:140px;flex:none;
overflow-wrap:anywhere}
.cards td{border:1px solid #d6d9e0;border-radius:6px;padding:8px;vertical-align:top;
background:#fff}
.label{font-weight:600;margin:0 0 6px}
.replicates{display:flex;gap:8px}
.matrix td.empty{background:#f3f3f3}
figure{margin:0 0 8px;width:200px}
figure img{display:block;width:200px;height:auto;border-radius:4px;background:#222}
figcaption{font-size:12px;color:#333;overflow-wrap:anywhere}
figcaption code{font-size:11px;word-break:break-all}
.status{font-weight:600;text-transform:uppercase;font-size:11px;padding:1px 5px;border-radius:3px}
.status-completed{background:#d9f2e0;color:#17612e}
.status-failed{background:#fbe0e0;color:#8a1c1c}
.status-queued,.status-in_progress,.status-submitted,.status-intent,.status-unknown{
background:#fff3cd;color:#7a5a00}
.prompt{font-size:12px;color:#444;max-width:200px;margin:4px 0 0}
.error{font-size:12px;color:#8a1c1c;max-width:200px;margin:4px 0 0}
"""


def _relative(path: object, base: str | Path) -> str | None:
    """A link from the page's folder `base` to `path`; a URL on another store stays whole."""
    if not present(path):
        return None
    text, folder = str(path), str(base)
    if "://" not in text and "://" not in folder:
        return Path(os.path.relpath(text, folder)).as_posix()
    target, home = UPath(text), UPath(folder)
    if target.protocol == home.protocol and target.storage_options == home.storage_options:
        return posixpath.relpath(target.path, home.path)
    return text


def _figure(row: dict[str, Any], base: str | Path) -> str:
    e = html.escape
    status = status_of(row)
    video = _relative(row.get("video_path"), base)
    thumb = _relative(row.get("thumbnail_path"), base)
    parts = ['<figure class="replicate">']
    if thumb:
        image = (
            f'<img class="thumb" src="{e(thumb)}" alt="thumbnail of {e(str(row.get("video_id")))}"'
            ' loading="eager">'
        )
        parts.append(f'<a href="{e(video)}">{image}</a>' if video else image)
    caption = [f'<span class="status status-{e(status)}">{e(status)}</span>']
    if present(row.get("video_id")):
        caption.append(f"<code>{e(str(row['video_id']))}</code>")
    cost = row.get("estimated_cost_usd")
    if present(cost):
        caption.append(f'<span class="cost">${float(cost):.2f}</span>')
    caption.append(f"replicate {e(str(row.get('replicate')))}")
    if row["attempts"] > 1:
        caption.append(f"({row['attempts']} attempts)")
    if video:
        caption.append(f'<a class="mp4" href="{e(video)}">MP4</a>')
    parts.append(f"<figcaption>{' · '.join(caption)}</figcaption>")
    if present(row.get("error_code")) or present(row.get("error_message")):
        parts.append(
            f'<p class="error"><code>{e(str(row.get("error_code") or ""))}</code> '
            f"{e(str(row.get('error_message') or ''))}</p>"
        )
    parts.append("</figure>")
    return "".join(parts)


def render_report(
    frame: pd.DataFrame,
    base: str | Path,
    *,
    title: str,
    manifest: dict[str, Any] | None = None,
) -> str:
    """The page for `frame`, with media links relative to `base` (the page's folder)."""
    e = html.escape
    matrix = variant_matrix(frame)
    latest = [row for rows in matrix.cells.values() for row in rows]
    statuses = pd.Series([status_of(r) for r in latest], dtype=object).value_counts().to_dict()
    total = sum(
        float(r["estimated_cost_usd"]) for r in latest if present(r.get("estimated_cost_usd"))
    )
    summary = ", ".join(f"{e(str(k))} {int(v)}" for k, v in sorted(statuses.items()))
    meta = [f"{len(latest)} variants ({summary or 'none'})", f"estimated cost ${total:.2f}"]
    if manifest:
        meta.append(
            f"table <code>{e(str(manifest.get('table', {}).get('sha256', ''))[:12])}</code>"
        )
        meta.append(f"server {e(str(manifest.get('server', '')))}")
        meta.append(f"models {e(', '.join(manifest.get('models', [])) or '-')}")
        meta.append(f"remix-pipeline {e(str(manifest.get('project_version', '')))}")
    layout = layout_for(matrix)
    rows = []
    for source in matrix.sources:
        cells = []
        for variant in matrix.variants:
            found = matrix.cells.get((source, variant))
            if not found:
                if layout == LAYOUT_MATRIX:
                    cells.append('<td class="empty"></td>')
                continue
            prompt = e(str(found[0].get("prompt") or ""))
            label = f'<p class="label">{e(variant)}</p>' if layout == LAYOUT_CARDS else ""
            figures = "".join(_figure(r, base) for r in found)
            cells.append(
                f'<td class="cell" data-source="{e(source)}" data-variant="{e(variant)}">'
                f'{label}<div class="replicates">{figures}</div>'
                f'<p class="prompt">{prompt}</p></td>'
            )
        rows.append(f"<tr><th scope='row'>{e(source)}</th>{''.join(cells)}</tr>")
    if layout == LAYOUT_MATRIX:
        head = "".join(f"<th scope='col'>{e(v)}</th>" for v in matrix.variants)
        table = (
            f"<table class='matrix'><thead><tr><th>source</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        table = f"<table class='cards'><tbody>{''.join(rows)}</tbody></table>"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body data-layout='{layout}'>"
        f"<h1>{e(title)}</h1><p class='meta'>{' · '.join(meta)}</p>"
        f"{table}</body></html>\n"
    )


def write_report(
    frame: pd.DataFrame,
    output_dir: str,
    *,
    title: str,
    manifest: dict[str, Any] | None = None,
) -> str:
    """Write `<output_dir>/report.html` atomically; returns its path."""
    target = UPath(output_dir.rstrip("/")) / REPORT_FILE_NAME
    local = target.protocol in ("", "file", "local")
    base: str | Path = Path(target.path).parent if local else str(target.parent)
    page = render_report(frame, base, title=title, manifest=manifest)
    return write_atomically(str(target), page.encode("utf-8"))
