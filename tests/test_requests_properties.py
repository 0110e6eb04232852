"""Property: `remix-pipeline validate` names exactly the bad rows of any small table.

Tables of 1 to 5 rows mix valid and invalid cells of every column the reader knows, written
as CSV, JSON Lines and Parquet. Each row is generated valid or invalid (in one or more
chosen columns), and the expectation is exact: valid rows have unique (source, prompt) and
unique labels, so only a remix chain can make a valid row bad, and the oracle below follows
chains itself. The command must exit 0 or 1 (never 2: the table parses), print no traceback,
name every invalid row once with its row number and the column of one of its problems, and
name no valid row. Issue 13: a table whose every row was bad exited 2.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from remix_pipeline.cli import main
from remix_pipeline.contract import ID_MAX_CHARS, PROMPT_MAX_CHARS
from remix_pipeline.request_table import (
    EXPERIMENT,
    LABEL_MAX_CHARS,
    PROMPT,
    REPLICATES,
    REQUIRED_COLUMNS,
    SOURCE,
    SOURCE_VARIANT,
    VARIANT,
    read_request_table,
)

# The remix table's columns; the operation columns (issue 12) have their own per-operation
# tests in tests/test_requests.py, and a table without `operation` is a remix table.
OPTIONAL_COLUMNS = (VARIANT, EXPERIMENT, REPLICATES, SOURCE_VARIANT)
FORMATS = ("csv", "jsonl", "parquet")

# A cell is a value or a function of the row's index (to keep valid rows' prompts and labels
# unique). REF names the label of an earlier row of the same source; SELF names its own row.
REF = object()
SELF = object()
Cell = object
Pool = tuple[list[Cell], list[Cell]]  # (valid cells, invalid cells)

OVER_LONG_PROMPT = "x" * 40_000
LIMIT_PROMPT = "p" * (PROMPT_MAX_CHARS - 6)  # plus a six-digit row index: exactly the limit

TEXT: dict[str, Pool] = {
    SOURCE: (
        ["video_src_a", "video_src_b", "S" * ID_MAX_CHARS],
        [
            None,
            "",
            "video..src",
            "../../etc/passwd",
            "video_1/remix",
            "%2e%2e",
            "video 1",
            "video\n1",
            "video\r\n1",
            "video\x1b1",
            "video\x001",
            "S" * (ID_MAX_CHARS + 1),
            " video_src_a",
            "video_src_a\t",
            "-video",
            "vidéo",
        ],
    ),
    PROMPT: (
        [
            lambda i: f"Prompt {i}",
            lambda i: f"  padded prompt {i} \t",
            lambda i: f"line one {i}\nline two",
            lambda i: f"line one {i}\r\nline two",
            lambda i: f"ünïcödé ✓ {i}\u2028",
            lambda i: f"{LIMIT_PROMPT}{i:06d}",
        ],
        [None, "", "   \t ", "\n\r\n", OVER_LONG_PROMPT],
    ),
    VARIANT: (
        [
            None,
            "",
            "   ",
            lambda i: f"v{i}",
            lambda i: f"  v{i} ",
            lambda i: f"{i:03d}",
            lambda i: "L" * (LABEL_MAX_CHARS - 4) + f"{i:04d}",
        ],
        [
            "V" * (LABEL_MAX_CHARS + 1),
            lambda i: f"bell\x07{i}",
            lambda i: f"tab\t{i}",
            lambda i: f"new\nline {i}",
            lambda i: f"\x7f{i}",
        ],
    ),
    EXPERIMENT: (
        [None, "", "   ", "exp", " spaced exp ", "E" * LABEL_MAX_CHARS],
        ["E" * (LABEL_MAX_CHARS + 1), "e\x01x", "a\nb"],
    ),
    REPLICATES: (
        [None, "", "  ", "1", "3", " 2 ", "+4", "5.0", "7.", "0001", "1000"],
        ["0", "-1", "2.5", "abc", "1001", "1e3", "0.0", "NaN", "1,000", "999999999999"],
    ),
    SOURCE_VARIANT: ([None, "", REF, REF], ["nothing_here", SELF]),
}

# Non-text cells, as JSON gives them (any mix per column).
TYPED: dict[str, Pool] = {
    SOURCE: ([], [42, True, ["video_src_a"]]),
    PROMPT: ([], [7, 1.5, False, ["Rain"]]),
    VARIANT: ([lambda i: 1000 + i], [2.5, True, {"label": "x"}]),
    EXPERIMENT: ([3], [1.5, False]),
    REPLICATES: (
        [2, 3.0, 1000, float("nan")],
        [0, -1, 1001, 2.5, -0.0, float("inf"), True, [2]],
    ),
    SOURCE_VARIANT: ([], [5, True, {}]),
}

# Parquet columns have one type each: (arrow type, pool). A "table" kind is a whole column of
# a type the reader refuses, which rejects the table as a whole (no row is named).
PARQUET_KINDS: dict[str, dict[str, tuple[pa.DataType, Pool | None]]] = {
    SOURCE: {"text": (pa.string(), TEXT[SOURCE]), "table": (pa.int64(), None)},
    PROMPT: {"text": (pa.string(), TEXT[PROMPT]), "table": (pa.int64(), None)},
    VARIANT: {
        "text": (pa.string(), TEXT[VARIANT]),
        "int": (pa.int64(), ([None, lambda i: 1000 + i, lambda i: -i], [])),
        "table": (pa.float64(), None),
    },
    EXPERIMENT: {
        "text": (pa.string(), TEXT[EXPERIMENT]),
        "int": (pa.int64(), ([None, 3, 0], [])),
    },
    REPLICATES: {
        "text": (pa.string(), TEXT[REPLICATES]),
        "int": (pa.int64(), ([None, 1, 2, 1000], [0, -1, 1001, 10**15])),
        "float": (pa.float64(), ([None, 3.0, float("nan")], [2.5, -0.0, float("inf"), 0.0])),
        "table": (pa.bool_(), None),
    },
    SOURCE_VARIANT: {"text": (pa.string(), TEXT[SOURCE_VARIANT]), "table": (pa.int64(), None)},
}
TABLE_KIND_CELLS: dict[str, list[Cell]] = {
    "int64": [None, 7, 42],
    "double": [None, 2.5],
    "bool": [None, True, False],
}


@dataclass
class Generated:
    fmt: str
    names: list[str]  # the columns as written, in file order
    rows: list[dict[str, object]]  # cells by column; a missing key is an absent JSON key
    types: dict[str, pa.DataType]  # Parquet only
    bad: dict[int, set[str]]  # row number -> the columns of its problems
    table_columns: set[str]  # Parquet columns of a refused type
    chains: int  # rows whose source_variant names an earlier row

    def __repr__(self) -> str:  # a failing example stays readable despite 40,000-char cells
        def short(value: object) -> object:
            if isinstance(value, str) and len(value) > 60:
                return f"{value[:20]}...<{len(value)} chars>"
            return value

        rows = [{name: short(cell) for name, cell in row.items()} for row in self.rows]
        types = {name: str(kind) for name, kind in self.types.items()}
        return (
            f"Generated({self.fmt!r}, rows={rows!r}, "
            f"types={types if self.fmt == 'parquet' else {}!r}, bad={self.bad!r}, "
            f"refused={sorted(self.table_columns)!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))


def effective_label(row: dict[str, object]) -> str:
    """The label a row's chain children must name: its stripped label or the default."""
    label = row.get(VARIANT)
    if isinstance(label, int) and not isinstance(label, bool):
        return str(label)
    if isinstance(label, str) and label.strip():
        return label.strip()
    if label not in (None, "") and not isinstance(label, str):
        return f"not a label: {label!r}"
    prompt = row.get(PROMPT)
    if not isinstance(prompt, str):
        return "v-unknown"
    text = prompt.replace("\r\n", "\n").replace("\r", "\n").strip()
    return "v-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def pool_for(fmt: str, name: str, kind: str) -> Pool:
    if fmt == "parquet":
        pool = PARQUET_KINDS[name][kind][1]
        assert pool is not None
        return pool
    if fmt == "jsonl":
        return TEXT[name][0] + TYPED[name][0], TEXT[name][1] + TYPED[name][1]
    return TEXT[name]


@st.composite
def tables(draw: st.DrawFn, fmt: str) -> Generated:
    present = [*REQUIRED_COLUMNS, *(name for name in OPTIONAL_COLUMNS if draw(st.booleans()))]
    kinds = {name: "text" for name in present}
    if fmt == "parquet":
        for name in present:
            typed = [kind for kind in PARQUET_KINDS[name] if kind not in ("text", "table")]
            kinds[name] = draw(st.sampled_from(["text", "text", *typed]))
        # A refused column hides every row problem, so at most one, in about a quarter.
        refusable = [name for name in present if "table" in PARQUET_KINDS[name]]
        refused = draw(st.sampled_from([None] * 3 * len(refusable) + refusable))
        if refused is not None:
            kinds[refused] = "table"
    table_columns = {name for name in present if kinds[name] == "table"}
    count = draw(st.integers(min_value=1, max_value=5))
    rows: list[dict[str, object]] = []
    bad: dict[int, set[str]] = {}
    refs: dict[int, int] = {}
    for i in range(count):
        eligible = sorted(
            name
            for name in present
            if kinds[name] != "table" and pool_for(fmt, name, kinds[name])[1]
        )
        wanted: set[str] = set()
        if eligible and draw(st.booleans()):
            wanted = set(draw(st.lists(st.sampled_from(eligible), min_size=1, max_size=3)))
        row: dict[str, object] = {}
        for name in present:
            if kinds[name] == "table":
                arrow_type = str(PARQUET_KINDS[name]["table"][0])
                row[name] = draw(st.sampled_from(TABLE_KIND_CELLS[arrow_type]))
                continue
            valid, invalid = pool_for(fmt, name, kinds[name])
            cell = draw(st.sampled_from(invalid if name in wanted else valid))
            row[name] = cell(i) if callable(cell) else cell
        if row.get(SOURCE_VARIANT) is REF:
            same = [j for j in range(i) if rows[j][SOURCE] == row[SOURCE]]
            row[SOURCE_VARIANT] = None
            if same:
                j = draw(st.sampled_from(same))
                refs[i] = j
                row[SOURCE_VARIANT] = effective_label(rows[j])
        if row.get(SOURCE_VARIANT) is SELF:
            row[SOURCE_VARIANT] = effective_label(row)
        if fmt == "jsonl":  # a missing optional cell is null or an absent key
            for name in OPTIONAL_COLUMNS:
                if name in row and row[name] is None and draw(st.booleans()):
                    del row[name]
        rows.append(row)
        problems = set(wanted)
        if i in refs and bad.get(refs[i] + 1):  # a chain from a bad row is bad
            problems.add(SOURCE_VARIANT)
        if problems:
            bad[i + 1] = problems
    order = draw(st.permutations(present))
    written = [draw(st.sampled_from([name, name.upper(), f" {name.title()} "])) for name in order]
    types = {written[k]: PARQUET_KINDS[name][kinds[name]][0] for k, name in enumerate(order)}
    renamed = [{written[k]: row[n] for k, n in enumerate(order) if n in row} for row in rows]
    return Generated(fmt, written, renamed, types, bad, table_columns, len(refs))


def write(table: Generated, folder: Path) -> Path:
    path = folder / f"table.{table.fmt}"
    if table.fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(table.names)
            for row in table.rows:
                writer.writerow(["" if row[n] is None else row[n] for n in table.names])
    elif table.fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in table.rows), encoding="utf-8")
    else:
        columns = {
            name: pa.array([row[name] for row in table.rows], type=table.types[name])
            for name in table.names
        }
        pq.write_table(pa.table(columns), path)
    return path


def validate(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue(), err.getvalue()


ROW_LINE = re.compile(r"row (\d+)(?:, column ([a-z_]+))?: .+")
TABLE_LINE = re.compile(r"table, column ([a-z_]+): .+")


def check_report(table: Generated, code: int, out: str, err: str) -> None:
    """`validate`'s exit code and lines are exactly what the generated table calls for."""
    assert "Traceback" not in out + err
    lines = err.splitlines()
    if table.table_columns:
        assert code == 1, err
        named = [TABLE_LINE.fullmatch(line) for line in lines]
        assert all(named), err
        assert sorted(m.group(1) for m in named if m) == sorted(table.table_columns)
        return
    assert code == (1 if table.bad else 0), err
    assert out.startswith("invalid: " if table.bad else "valid: "), out
    matches = [ROW_LINE.fullmatch(line) for line in lines]
    assert all(matches), err  # every stderr line names a row
    reported = {int(m.group(1)): m.group(2) for m in matches if m}
    assert len(reported) == len(lines), err  # one line per bad row
    assert set(reported) == set(table.bad), err
    for row, column in reported.items():
        assert column in table.bad[row], (row, column, table.bad[row], err)


def check(table: Generated) -> None:
    if table.table_columns:
        event("a column of a refused type")
    else:
        bad = len(table.bad)
        event("no row bad" if not bad else "every row bad" if bad == len(table.rows) else "mixed")
    if table.chains:
        event("a remix chain")
    with tempfile.TemporaryDirectory() as folder:
        path = write(table, Path(folder))
        check_report(table, *validate(path))
        proceeding = {r.row_number for r in read_request_table(path).requests}
    good = set() if table.table_columns else set(range(1, len(table.rows) + 1)) - set(table.bad)
    assert proceeding == good  # and the good rows still proceed


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validate_names_exactly_the_invalid_rows_of_any_small_table(
    fmt: str, data: st.DataObject
) -> None:
    check(data.draw(tables(fmt), label="table"))
