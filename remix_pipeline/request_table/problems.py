"""The problems of a table's rows, collected in check order: the first problem of each row wins."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from remix_pipeline.request_table.model import (
    RowProblem,
)


class Problems:
    """The first problem of each row, filled in check order."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.column: np.ndarray = np.full(len(rows), None, dtype=object)
        self.reason: np.ndarray = np.full(len(rows), None, dtype=object)

    @property
    def ok(self) -> np.ndarray:
        return pd.isna(self.reason)

    def flag(
        self,
        mask: np.ndarray,
        column: str,
        reason: str | Callable[[object], str],
        values: pd.Series | None = None,
    ) -> None:
        """Record `reason` for rows in `mask` that have no problem yet.

        A callable reason is applied only to the newly flagged rows' cells in `values`, so
        messages naming the bad value cost nothing for the (usually many) good rows.
        """
        new = np.asarray(mask, dtype=bool) & self.ok
        if not new.any():
            return
        self.column[new] = column
        if isinstance(reason, str):
            self.reason[new] = reason
        else:
            assert values is not None
            cells = np.asarray(values, dtype=object)[new]
            self.reason[new] = np.array([reason(cell) for cell in cells], dtype=object)

    def as_list(self) -> list[RowProblem]:
        bad = ~self.ok
        return [
            RowProblem(int(row), column, reason)
            for row, column, reason in zip(
                self.rows[bad], self.column[bad], self.reason[bad], strict=True
            )
        ]
