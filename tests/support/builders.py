"""Values the tests build in memory: variant requests, lineage rows, and ids a caller might
pass. Several test modules build the same ones, so they are written here once."""

from __future__ import annotations

import pandas as pd

from remix_pipeline.lineage import LINEAGE_COLUMNS
from remix_pipeline.request_table import VariantRequest, variant_key

SOURCE = "video_src_harbor"
# Video ids that must never reach a URL path: traversal, separators, control characters,
# blanks and oversize ones.
HOSTILE_IDS = [
    "../x",
    "..",
    "a/b",
    "/etc/passwd",
    "%2e%2e",
    "%2F",
    "video_1?variant=x",
    "video_1#frag",
    "",
    " ",
    " video_1",
    "video_1\n",
    "video\x00_1",
    "video\t1",
    "x" * 5000,
    "vidéo",
    "video 1",
    "-leading-dash",
    "a\\b",
]


def requests(count: int) -> list[VariantRequest]:
    """`count` distinct variants of one source, one replicate each."""
    return [
        VariantRequest(
            key=variant_key(SOURCE, f"prompt {i}", 1),
            source_video_id=SOURCE,
            prompt=f"prompt {i}",
            prompt_sha256="0" * 64,
            variant=f"v{i}",
            experiment="t",
            replicate=1,
            row_number=i + 1,
        )
        for i in range(count)
    ]


def lineage_row(**values: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(LINEAGE_COLUMNS)
    row.update(attempt=1, replicate=1, state="completed", status="completed", experiment="t")
    row.update(values)
    return row


def frame_of(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=list(LINEAGE_COLUMNS))
