"""Results as rows of one table: printed to the terminal and written to RESULTS.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmarks.plan import FloorSetting

WORKLOADS: dict[str, str] = {
    "1": "End to end",
    "1b": "End to end, Dagster storage on PostgreSQL",
    "2": "Status requests per completed video",
    "3": "Completion-sensor tick",
    "4": "Dagster runs",
    "5": "Lineage table from the ledger",
    "5b": "Lineage table, 1,000,000 attempts",
    "6": "Rate-limit utilisation",
    "7": "Service alone",
    "8": "Sample run, fresh state",
    "9": "Cluster against one process",
}


@dataclass(frozen=True)
class Row:
    workload: str
    case: str
    n: str
    value: float | None
    unit: str
    ratio: str = ""
    note: str = ""

    def cells(self) -> list[str]:
        shown = "not measured" if self.value is None else _number(self.value)
        title = f"{self.workload}. {WORKLOADS[self.workload]}"
        return [title, self.case, self.n, shown, self.unit, self.ratio, self.note]


HEADER = ["workload", "case", "N", "value", "unit", "ratio", "note"]


def _number(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.01:
        return f"{value:.2f}"
    return f"{value:.4f}"


def ratio(value: float | None, baseline: float | None, what: str) -> str:
    if value is None or not baseline or math.isnan(value) or math.isnan(baseline):
        return ""
    return f"{value / baseline:.2f}x {what}"


@dataclass
class Report:
    """The rows and findings of one run, and what one workload measured that a later one
    compares against (so that ratios always come from the same run)."""

    rows: list[Row] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    # The fastest floor setting of the sweep, and floor wall seconds by variant count.
    best_floor: FloorSetting | None = None
    floor_seconds: dict[int, float] = field(default_factory=dict)
    # Dagster runs that `remix-pipeline run` launched, by variant count.
    dagster_runs: dict[int, int] = field(default_factory=dict)
    # The workloads `--only` selected (None: all); a step measuring two asks before each.
    only: set[str] | None = None

    def wants(self, workload: str) -> bool:
        return self.only is None or workload in self.only

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(" | ".join(row.cells()), flush=True)
        return row

    def markdown_table(self) -> str:
        lines = [
            "| " + " | ".join(HEADER) + " |",
            "|" + "|".join("---" for _ in HEADER) + "|",
        ]
        for row in self.rows:
            cells = [c.replace("|", "/") for c in row.cells()]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def text_table(self) -> str:
        table = [HEADER, *(row.cells() for row in self.rows)]
        widths = [min(48, max(len(r[i]) for r in table)) for i in range(len(HEADER))]
        return "\n".join(
            "  ".join(cell[:48].ljust(width) for cell, width in zip(r, widths, strict=True))
            for r in table
        )
