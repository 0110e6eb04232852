"""Reading a request table from CSV, JSON Lines or Parquet into cells by column."""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from remix_pipeline.request_table.model import (
    EXPERIMENT,
    INPUT_REFERENCE,
    PROMPT,
    REPLICATES,
    ROW,
    SOURCE,
    SOURCE_PATH,
    SOURCE_VARIANT,
    VARIANT,
    RawTable,
    RequestTable,
    RowProblem,
    TableInvalidError,
    TableUnreadableError,
)
from remix_pipeline.request_table.validate import validate_table

SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# Columns that name other files: a table with them is read in full every time, because what
# it validates to depends on those files as well as on its own bytes.
FILE_COLUMNS = frozenset({INPUT_REFERENCE, SOURCE_PATH})
# Tables kept by the memo below; a process rarely reads more than one experiment's table.
MEMO_ENTRIES = 4

# The last reading of each table, by path and sha256 of its bytes. Sensors and assets
# read the same table again and again (every fan-out tick, the lineage run and its checks),
# and validating 100,000 rows takes seconds where reading and hashing the bytes takes 10 ms.
# Keyed by content, not by mtime: a table rewritten within the same second is read anew.
_memo: dict[tuple[str, str], RequestTable] = {}
_memo_lock = threading.Lock()  # sensors of a code server are evaluated on threads


def read_request_table(path: str | os.PathLike[str], *, strict: bool = False) -> RequestTable:
    """Read and validate a request table; raise `TableUnreadableError` if it is not a table."""
    file_path = Path(path)
    kind = SUFFIXES.get(file_path.suffix.lower())
    if kind is None:
        supported = ", ".join(SUFFIXES)
        raise TableUnreadableError(
            f"{file_path}: unsupported file type {file_path.suffix or '(none)'!r}; "
            f"use one of {supported}"
        )
    data = _read_bytes(file_path)
    memo_key = (str(file_path), hashlib.sha256(data).hexdigest())
    table = _memo.get(memo_key)
    if table is None:
        with _cyclic_gc_paused():
            raw = READERS[kind](file_path, data)
            table = validate_table(str(file_path), memo_key[1], raw)
        if not FILE_COLUMNS & set(raw.columns):
            _remember(memo_key, table)
    if strict and table.problems:
        raise TableInvalidError(table)
    return table


def _remember(key: tuple[str, str], table: RequestTable) -> None:
    """Keep `table` as its path's reading, dropping the path's older one (and the oldest
    path's, past MEMO_ENTRIES), so an edited table does not keep its old rows alive."""
    with _memo_lock:
        for old in [k for k in _memo if k[0] == key[0]]:
            del _memo[old]
        while len(_memo) >= MEMO_ENTRIES:
            del _memo[next(iter(_memo))]
        _memo[key] = table


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Reading allocates millions of acyclic objects (cells, rows, requests); letting the
    cyclic collector rescan them again and again made a 50 MB table take 60% longer."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise TableUnreadableError(f"{path}: is a directory, not a table file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise TableUnreadableError(f"{path}: no such file") from None
    except PermissionError:
        raise TableUnreadableError(f"{path}: permission denied") from None
    except OSError as exc:
        raise TableUnreadableError(f"{path}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise TableUnreadableError(f"{path}: the file is empty")
    return data


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableUnreadableError(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            "cannot be decoded; save the table as UTF-8"
        ) from None


def _header(path: Path, names: list[object]) -> tuple[list[str], list[RowProblem]]:
    """Normalised column names; a repeated name is a table problem (which cell would win?)."""
    columns = [str(name).strip().lower() for name in names]
    problems = []
    seen: set[str] = set()
    for name in columns:
        if name and name in seen:
            problems.append(RowProblem(None, name, "the column appears more than once"))
        seen.add(name)
    return columns, problems


def _read_csv(path: Path, data: bytes) -> RawTable:
    text = _decode(path, data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _next_record(path, reader)
    columns, problems = _header(path, header)
    width = len(columns)
    records: list[list[str]] = []
    numbers: list[int] = []
    row = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row += 1
            problems.append(RowProblem(row, None, f"malformed CSV: {_csv_reason(exc)}"))
            continue
        if not record:
            continue
        row += 1
        if len(record) > width:
            problems.append(
                RowProblem(
                    row,
                    None,
                    f"row has {len(record)} fields but the header has {width}; "
                    "quote prompts that contain commas",
                )
            )
            continue
        if len(record) < width:
            record = record + [""] * (width - len(record))
        records.append(record)
        numbers.append(row)
    frame = pd.DataFrame(records, columns=range(width), dtype=object)
    frame.columns = [f"{i}" for i in range(width)]
    return _named(columns, frame, numbers, problems, row, typed=False)


def _next_record(path: Path, reader: Iterator[list[str]]) -> list[str]:
    try:
        for record in reader:
            if record:
                return record
    except csv.Error as exc:
        raise TableUnreadableError(f"{path}: malformed CSV header: {_csv_reason(exc)}") from None
    raise TableUnreadableError(f"{path}: the file is empty")


def _csv_reason(exc: csv.Error) -> str:
    message = str(exc)
    if message == "unexpected end of data":
        return "a quoted field is never closed (everything after it was read into this row)"
    return message


def _named(
    columns: list[str],
    frame: pd.DataFrame,
    numbers: list[int],
    problems: list[RowProblem],
    row_count: int,
    *,
    typed: bool,
) -> RawTable:
    """Keep the first column of each name (repeats are already problems) and attach rows."""
    keep: dict[str, str] = {}
    for position, name in enumerate(columns):
        if name and name not in keep:
            keep[name] = frame.columns[position]
    named = frame[list(keep.values())].copy()
    named.columns = list(keep)
    named[ROW] = np.asarray(numbers, dtype=np.int64)
    return RawTable(list(keep), named.reset_index(drop=True), problems, row_count, typed)


def _read_jsonl(path: Path, data: bytes) -> RawTable:
    text = _decode(path, data)
    objects: list[dict[str, object]] = []
    numbers: list[int] = []
    problems: list[RowProblem] = []
    names: dict[str, None] = {}
    row = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        row += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                RowProblem(row, None, f"not valid JSON: {exc.msg} at column {exc.colno}")
            )
            continue
        if not isinstance(value, dict):
            problems.append(RowProblem(row, None, "the line is not a JSON object"))
            continue
        normalised = {str(k).strip().lower(): v for k, v in value.items()}
        names.update(dict.fromkeys(normalised))
        objects.append(normalised)
        numbers.append(row)
    columns = list(names)
    frame = pd.DataFrame(
        {
            f"{i}": pd.Series([_json_cell(o.get(name)) for o in objects], dtype=object)
            for i, name in enumerate(columns)
        },
        index=range(len(objects)),
    )
    return _named(columns, frame, numbers, problems, row, typed=True)


def _read_parquet(path: Path, data: bytes) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TableUnreadableError(f"{path}: not a readable Parquet file: {reason}") from None
    columns, problems = _header(path, arrow.column_names)
    cells: dict[str, pd.Series] = {}
    for position, name in enumerate(columns):
        column = arrow.column(position)
        problem = _parquet_type_problem(name, column.type)
        if problem is not None:
            problems.append(problem)
            cells[f"{position}"] = pd.Series([None] * arrow.num_rows, dtype=object)
            continue
        cells[f"{position}"] = pd.Series(column.to_pylist(), dtype=object)
    frame = pd.DataFrame(cells) if cells else pd.DataFrame(index=range(arrow.num_rows))
    numbers = list(range(1, arrow.num_rows + 1))
    return _named(columns, frame, numbers, problems, arrow.num_rows, typed=True)


def _parquet_type_problem(name: str, arrow_type: object) -> RowProblem | None:
    """A whole column of the wrong type is one table problem, not one per row."""
    import pyarrow.types as pt

    if pt.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    texty = pt.is_string(arrow_type) or pt.is_large_string(arrow_type) or pt.is_null(arrow_type)
    if name in (SOURCE, PROMPT, SOURCE_VARIANT):
        ok = texty
    elif name == REPLICATES:
        ok = texty or pt.is_integer(arrow_type) or pt.is_floating(arrow_type)
    elif name in (VARIANT, EXPERIMENT):
        ok = texty or pt.is_integer(arrow_type)
    else:
        return None
    if ok:
        return None
    return RowProblem(None, name, f"the column has type {arrow_type}; expected text")


def _json_cell(value: object) -> object:
    """JSON's NaN literal (Python's json accepts it) is a missing cell, like null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
