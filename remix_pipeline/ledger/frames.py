"""The ledger as one pandas frame: every attempt with its media as wide columns.

The only pandas import of the ledger: the lineage table and the benchmarks read it here.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from remix_pipeline.ledger.records import MEDIA_VARIANTS
from remix_pipeline.ledger.schema import ATTEMPT_COLUMNS, attempts_table, media_table

MEDIA_FIELDS = ("path", "sha256", "bytes", "derived")


def attempts_frame(conn: Connection) -> pd.DataFrame:
    """Every attempt with its media as wide columns (`<variant>_path`, `_sha256`, `_bytes`,
    `_derived`).

    Two bulk reads and one merge, so the lineage table costs no per-row queries. `video`
    is left as JSON text: parse it where it is needed.
    """
    rows = conn.execute(
        sa.select(*ATTEMPT_COLUMNS).order_by(attempts_table.c.key, attempts_table.c.attempt)
    ).all()
    media_rows = conn.execute(sa.select(media_table)).all()
    frame = pd.DataFrame(list(map(tuple, rows)), columns=[c.name for c in ATTEMPT_COLUMNS])
    for flag in ("adopted", "reported"):
        frame[flag] = frame[flag].astype(bool)
    media = pd.DataFrame(
        list(map(tuple, media_rows)), columns=[c.name for c in media_table.columns]
    )
    frame = frame.merge(media_wide(media), on=["key", "attempt"], how="left")
    return frame.astype(
        {f"{variant}_bytes": "Int64" for variant in MEDIA_VARIANTS}
        | {f"{variant}_derived": "boolean" for variant in MEDIA_VARIANTS}
    )


def media_wide(media: pd.DataFrame) -> pd.DataFrame:
    """One row per (key, attempt), four columns per media variant, always all present."""
    columns = ["key", "attempt"] + [
        f"{variant}_{field}" for variant in MEDIA_VARIANTS for field in MEDIA_FIELDS
    ]
    if media.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns}).astype(
            {"attempt": "int64"}
        )
    media = media.rename(columns={"size_bytes": "bytes"})
    media["derived"] = media["derived"].astype(bool)
    wide = media.pivot(index=["key", "attempt"], columns="variant", values=list(MEDIA_FIELDS))
    wide.columns = [f"{variant}_{field}" for field, variant in wide.columns]
    wide = wide.reset_index()
    for name in columns:
        if name not in wide.columns:
            wide[name] = None
    return wide[columns]
