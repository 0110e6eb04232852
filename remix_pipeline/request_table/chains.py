"""Chains: rows that remix, edit or extend another row's result (`source_variant`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from remix_pipeline.request_table import keys
from remix_pipeline.request_table.model import (
    CREATE,
    EXTEND,
    MAX_EXTENSIONS,
    MAX_TOTAL_SECONDS,
    OPERATION,
    PROMPT,
    ROW,
    SECONDS,
    SOURCE,
    SOURCE_VARIANT,
    SPEC,
    STEM,
    VARIANT,
)
from remix_pipeline.request_table.problems import Problems


def resolve_chains(found: Problems, keep: pd.DataFrame) -> pd.DataFrame:
    """Give each chained row (one whose `source_variant` names another row of its source) the
    key of that row's first replicate as parent, and a key derived from it.

    A chained variant's content is (its parent's content, its prompt), so its key is stable
    and changes exactly when an ancestor's prompt does. Dangling references and cycles are row
    problems, and so is every row that descends from a bad one.
    """
    keep = keep.copy()
    keep["parent_key"] = None
    chained = keep[SOURCE_VARIANT] != ""
    if not chained.any():
        return keep
    row_of = {
        (s, v): int(r) for s, v, r in zip(keep[SOURCE], keep[VARIANT], keep[ROW], strict=True)
    }
    index_of = {int(r): i for i, r in zip(keep.index, keep[ROW], strict=True)}
    parent_row: dict[int, int] = {}
    bad: dict[int, str] = {}
    for source, label, row in zip(
        keep.loc[chained, SOURCE],
        keep.loc[chained, SOURCE_VARIANT],
        keep.loc[chained, ROW],
        strict=True,
    ):
        target = row_of.get((source, label))
        if target is None:
            of = f"source {source!r}" if source else "a create or upload row"
            bad[int(row)] = f"source_variant {label!r} names no valid row of {of}"
        else:
            parent_row[int(row)] = target
    for row in list(parent_row):
        seen = [row]
        current = parent_row.get(row)
        while current is not None and current not in seen:
            seen.append(current)
            current = parent_row.get(current)
        if current is not None:
            path = " -> ".join(f"row {r}" for r in [*seen[seen.index(current) :], current])
            bad[row] = f"source_variant forms a cycle: {path}"
    _check_chain_limits(keep, index_of, parent_row, bad)
    changed = True
    while changed:  # descendants of a bad row are bad too
        changed = False
        for row, parent in parent_row.items():
            if row not in bad and parent in bad:
                bad[row] = f"its source_variant row {parent} is invalid"
                changed = True
    if bad:
        mask = np.isin(found.rows, list(bad))
        found.flag(mask, SOURCE_VARIANT, lambda r: bad[int(r)], pd.Series(found.rows))
    found_keys: dict[int, str] = {}

    def key_of(row: int) -> str:
        if row not in found_keys:
            record = keep.loc[index_of[row]]
            parent = parent_row.get(row)
            if parent is not None:
                keep.at[index_of[row], "parent_key"] = key_of(parent)
                keep.at[index_of[row], "key_hash"] = keys.content_hash(
                    keys.chained_content(
                        record[OPERATION],
                        record[SPEC],
                        keep.at[index_of[row], "parent_key"],
                        record[PROMPT],
                    )
                )
            found_keys[row] = keys.compose(record[STEM], keep.at[index_of[row], "key_hash"], 1)
        return found_keys[row]

    keep = keep[~keep[ROW].isin(list(bad))]
    index_of = {int(r): i for i, r in zip(keep.index, keep[ROW], strict=True)}
    for row in keep.loc[keep[SOURCE_VARIANT] != "", ROW]:
        key_of(int(row))
    return keep


def _check_chain_limits(
    keep: pd.DataFrame, index_of: dict[int, int], parent_row: dict[int, int], bad: dict[int, str]
) -> None:
    """The contract's limits on a chain of extensions, before anything is paid: at most
    `MAX_EXTENSIONS` extensions, and at most `MAX_TOTAL_SECONDS` in all where the root's length
    is known (a create's); a remix or an edit keeps its source's length."""
    for row in parent_row:
        if row in bad or keep.at[index_of[row], OPERATION] != EXTEND:
            continue
        extensions, added, root_seconds = 0, 0, 0
        current: int | None = row
        seen: set[int] = set()
        while current is not None and current not in seen and current in index_of:
            seen.add(current)
            record = keep.loc[index_of[current]]
            if record[OPERATION] == EXTEND:
                extensions += 1
                added += int(record[SECONDS])
            elif record[OPERATION] == CREATE:
                root_seconds = int(record[SECONDS])
            current = parent_row.get(current)
        if extensions > MAX_EXTENSIONS:
            bad[row] = (
                f"the chain up to this row extends a video {extensions} times "
                f"(at most {MAX_EXTENSIONS})"
            )
        elif root_seconds + added > MAX_TOTAL_SECONDS:
            bad[row] = (
                f"the chain up to this row makes a video of {root_seconds + added} seconds "
                f"(at most {MAX_TOTAL_SECONDS})"
            )
