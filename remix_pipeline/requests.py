"""Reading and validating the request table, and deriving each variant's stable key.

A request table lists (source video, prompt) rows, as CSV, Parquet or JSON Lines. Every
valid row becomes one `VariantRequest` per replicate, keyed by content so the same table
gives the same keys on any machine and a re-run never pays for finished work twice.

Rules that users can rely on:

- Cells are read as text, never guessed: "007" stays "007", and "NA", "null" or "None" are
  ordinary text. A missing cell is an empty CSV field, a JSON `null` or absent key, or a
  Parquet null.
- Prompts are stripped of surrounding whitespace and their line endings normalised to LF
  before hashing, so a table saved on Windows keys the same as on Linux. Nothing else in a
  prompt is changed. Source ids are taken exactly as written and must pass
  `remix_pipeline.contract.id_problem`.
- Renaming a variant label does not change its key: only (source, prompt, replicate) do.
- Each bad row gets one `RowProblem` (its first problem); good rows proceed unless
  `strict=True`. Unknown columns are ignored with a note, so later columns (such as
  `source_variant` for remix chains) can be added without breaking older tables.

CSV is tokenised with the standard `csv` module rather than `pandas.read_csv`: it reports
each record separately, so a ragged or malformed record becomes a problem for that row
instead of an error for the whole file, and row numbers count records even when quoted
prompts span several lines. Validation itself is vectorised with pandas.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from remix_pipeline.contract import PROMPT_MAX_CHARS, id_problem
from remix_pipeline.contract.models import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE
from remix_pipeline.contract.modes import ContractMode, allowed_values

SOURCE = "source_video_id"
PROMPT = "prompt"
VARIANT = "variant"
EXPERIMENT = "experiment"
REPLICATES = "replicates"
SOURCE_VARIANT = "source_variant"
OPERATION = "operation"
MODEL = "model"
SECONDS = "seconds"
SIZE = "size"
INPUT_REFERENCE = "input_reference"
SOURCE_PATH = "source_path"
CHARACTERS = "characters"

REMIX, EDIT, EXTEND, CREATE = "remix", "edit", "extend", "create"
OPERATIONS: tuple[str, ...] = (REMIX, EDIT, EXTEND, CREATE)
# The per-row parameters and the operations that take them (`model` on an edit or an
# extension only with `source_path`: with a source video the server uses that video's model).
PARAMETERS: dict[str, tuple[str, ...]] = {
    MODEL: (CREATE, EDIT, EXTEND),
    SECONDS: (CREATE, EXTEND),
    SIZE: (CREATE,),
    INPUT_REFERENCE: (CREATE,),
    CHARACTERS: (CREATE,),
    SOURCE_PATH: (EDIT, EXTEND),
}
# The contract's limits on extensions (the guide: "Each extension can add up to 20 seconds.
# A single video can be extended up to six times, for a maximum total length of 120 seconds").
MAX_EXTENSION_SECONDS = 20
MAX_EXTENSIONS = 6
MAX_TOTAL_SECONDS = 120
MAX_CHARACTERS = 2  # the guide: "A single video can include up to two characters"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_LENIENT = allowed_values(ContractMode.LENIENT)

REQUIRED_COLUMNS: tuple[str, ...] = (SOURCE, PROMPT)
KNOWN_COLUMNS: tuple[str, ...] = (
    SOURCE,
    PROMPT,
    VARIANT,
    EXPERIMENT,
    REPLICATES,
    SOURCE_VARIANT,
    OPERATION,
    *PARAMETERS,
)
DEFAULT_EXPERIMENT = "default"
MAX_REPLICATES = 1000
LABEL_MAX_CHARS = 200
KEY_HASH_CHARS = 12
KEY_SOURCE_CHARS = 48
KEY_MAX_CHARS = 80
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,80}")

SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHOLE_NUMBER = re.compile(r"\+?\d{1,12}(?:\.0*)?")


@dataclass(frozen=True)
class VariantRequest:
    """One paid remix to make: a (source, prompt) row's Nth replicate."""

    key: str
    source_video_id: str
    prompt: str
    prompt_sha256: str
    variant: str
    experiment: str
    replicate: int
    row_number: int
    parent_key: str | None = None  # a remix chain: remix this variant's result, not the source
    operation: str = REMIX
    model: str | None = None  # create (defaulted), or an edit or extension of an upload
    seconds: str | None = None  # create: the length (defaulted); extend: the seconds to ADD
    size: str | None = None  # create (defaulted)
    input_reference: str | None = None  # create: an image URL, or an absolute image path
    source_path: str | None = None  # edit, extend: an absolute path to the footage to upload
    source_sha256: str | None = None  # of `source_path`'s file when the table was read
    characters: tuple[str, ...] = ()  # create: character ids

    @property
    def source(self) -> str:
        """What the variant derives from, for messages: a video id, a file, or a prompt."""
        if self.source_video_id:
            return self.source_video_id
        if self.source_path:
            return f"upload {Path(self.source_path).name}"
        return "(prompt)"


@dataclass(frozen=True)
class RowProblem:
    """Why one row (or, with `row_number=None`, the whole table) cannot be used."""

    row_number: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = "table" if self.row_number is None else f"row {self.row_number}"
        if self.column is not None:
            where = f"{where}, column {self.column}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class RequestTable:
    """A read table: its valid requests (replicates expanded) and its problems."""

    path: str
    content_hash: str
    requests: tuple[VariantRequest, ...]
    problems: tuple[RowProblem, ...]
    row_count: int
    notes: tuple[str, ...] = field(default=())

    @property
    def is_valid(self) -> bool:
        return not self.problems


class TableUnreadableError(Exception):
    """The file cannot be read as a table at all."""


class TableInvalidError(ValueError):
    """Strict mode: the table has problems, so none of it may proceed."""

    def __init__(self, table: RequestTable) -> None:
        self.table = table
        self.problems = table.problems
        count = len(table.problems)
        first = table.problems[0] if table.problems else "no problems"
        super().__init__(f"{table.path}: {count} problem(s), first: {first}")


def variant_key(source_video_id: str, prompt: str, replicate: int) -> str:
    """The stable partition key of one replicate of (source, prompt).

    Long source ids are truncated in the key; the hash covers the full id, so keys stay unique.
    """
    digest = hashlib.sha256(f"{source_video_id}\0{prompt}".encode()).hexdigest()
    return f"{source_video_id[:KEY_SOURCE_CHARS]}.{digest[:KEY_HASH_CHARS]}.r{replicate}"


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
    with _cyclic_gc_paused():
        raw = _READERS[kind](file_path, data)
        table = _validate(str(file_path), hashlib.sha256(data).hexdigest(), raw)
    if strict and table.problems:
        raise TableInvalidError(table)
    return table


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


# Reading ---------------------------------------------------------------------------------


@dataclass
class _Raw:
    """What a reader hands to validation: cells by column, and problems found while reading."""

    columns: list[str]
    frame: pd.DataFrame  # object dtype, one row per readable record, row numbers in ROW
    problems: list[RowProblem]
    row_count: int
    typed: bool  # cells may be non-text (JSON, Parquet) and need type checks


_ROW = "__row__"


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


def _read_csv(path: Path, data: bytes) -> _Raw:
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
) -> _Raw:
    """Keep the first column of each name (repeats are already problems) and attach rows."""
    keep: dict[str, str] = {}
    for position, name in enumerate(columns):
        if name and name not in keep:
            keep[name] = frame.columns[position]
    named = frame[list(keep.values())].copy()
    named.columns = list(keep)
    named[_ROW] = np.asarray(numbers, dtype=np.int64)
    return _Raw(list(keep), named.reset_index(drop=True), problems, row_count, typed)


def _read_jsonl(path: Path, data: bytes) -> _Raw:
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


def _read_parquet(path: Path, data: bytes) -> _Raw:
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


_READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}


# Validation ------------------------------------------------------------------------------


class _Problems:
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


def _validate(path: str, content_hash: str, raw: _Raw) -> RequestTable:
    problems = list(raw.problems)
    notes = _notes(raw.columns)
    # A table of creates needs no source column; with an `operation` column, rows that need a
    # source say so one by one.
    required = [PROMPT] if OPERATION in raw.columns else list(REQUIRED_COLUMNS)
    missing = [name for name in REQUIRED_COLUMNS if name in required and name not in raw.columns]
    for name in missing:
        problems.append(RowProblem(None, name, "required column is missing"))
    if raw.row_count == 0:
        problems.append(RowProblem(None, None, "the table has no data rows"))
    table_problem = any(p.row_number is None for p in problems)
    if table_problem or raw.frame.empty:
        return RequestTable(path, content_hash, (), tuple(_ordered(problems)), raw.row_count, notes)
    requests, row_problems = _validate_rows(raw, Path(path).parent)
    return RequestTable(
        path,
        content_hash,
        requests,
        tuple(_ordered(problems + row_problems)),
        raw.row_count,
        notes,
    )


def _notes(columns: list[str]) -> tuple[str, ...]:
    unknown = [name for name in columns if name and name not in KNOWN_COLUMNS]
    if not unknown:
        return ()
    return (f"ignored unknown column(s): {', '.join(unknown)}",)


def _ordered(problems: list[RowProblem]) -> list[RowProblem]:
    return sorted(problems, key=lambda p: -1 if p.row_number is None else p.row_number)


def _validate_rows(raw: _Raw, base: Path) -> tuple[tuple[VariantRequest, ...], list[RowProblem]]:
    frame = raw.frame
    n = len(frame)
    rows = frame[_ROW].to_numpy()
    found = _Problems(rows)

    def column(name: str) -> pd.Series:
        if name in frame.columns:
            return frame[name]
        return pd.Series([None] * n, dtype=object)

    operation = _operation(found, column(OPERATION), raw.typed)
    creates = (operation == CREATE).to_numpy()
    chained_given = _present(column(SOURCE_VARIANT))
    upload_given = _present(column(SOURCE_PATH))
    # A row needs a source video unless it makes one from a prompt, uploads its footage or
    # derives from another row's result (whose source may be a create's empty one).
    needs_source = ~creates & ~upload_given & ~chained_given
    source = _text_column(found, column(SOURCE), SOURCE, raw.typed)
    found.flag(
        needs_source & (operation != REMIX).to_numpy() & ~_present(source),
        SOURCE,
        lambda op: f"an {op} row needs source_video_id, source_path or source_variant",
        operation,
    )
    found.flag(needs_source & source.isna().to_numpy(), SOURCE, f"{SOURCE} is missing")
    found.flag(needs_source & (source == "").to_numpy(), SOURCE, f"{SOURCE} is empty")
    source = source.fillna("").astype(object)
    found.flag(
        creates & (source != "").to_numpy(),
        SOURCE,
        "a create row makes a video from its prompt; leave source_video_id empty",
    )
    bad_ids = _id_problems(source.where(source != "", None))
    found.flag(bad_ids.notna().to_numpy(), SOURCE, str, bad_ids)

    prompt = _text_column(found, column(PROMPT), PROMPT, raw.typed, required=True)
    if prompt.str.contains("\r", regex=False).any():
        prompt = prompt.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    stripped = prompt.str.strip()
    found.flag((stripped == "").to_numpy(), PROMPT, "prompt is only whitespace")
    lengths = stripped.str.len()
    too_long = (lengths > PROMPT_MAX_CHARS).fillna(False).to_numpy()
    found.flag(
        too_long,
        PROMPT,
        lambda n: f"prompt is {n:,.0f} characters long (at most {PROMPT_MAX_CHARS:,})",
        lengths,
    )

    replicates = _replicates(found, column(REPLICATES))
    variant = _label(found, column(VARIANT), VARIANT, raw.typed)
    experiment = _label(found, column(EXPERIMENT), EXPERIMENT, raw.typed)
    chained = _text_column(found, column(SOURCE_VARIANT), SOURCE_VARIANT, raw.typed)
    parent_label = chained.fillna("").str.strip()
    params = _parameters(found, column, raw.typed, operation, source, parent_label, base)

    identity = _identity(operation, source, params)
    _flag_duplicates(found, rows, identity, stripped)
    ok = found.ok
    keep = pd.DataFrame(
        {
            SOURCE: source[ok].to_numpy(),
            PROMPT: stripped[ok].to_numpy(),
            VARIANT: variant[ok].to_numpy(),
            EXPERIMENT: experiment[ok].to_numpy(),
            REPLICATES: replicates[ok].to_numpy(),
            SOURCE_VARIANT: parent_label[ok].to_numpy(),
            OPERATION: operation[ok].to_numpy(),
            _ROW: rows[ok],
            **{name: values[ok].to_numpy() for name, values in params.items()},
        },
        dtype=object,
    )
    # Text dtype even when no row is valid: pandas types an empty list as float, and the
    # `.str` below then raised AttributeError for a table whose every row is bad (issue 13).
    keep["prompt_sha256"] = pd.Series(
        [hashlib.sha256(p.encode()).hexdigest() for p in keep[PROMPT]], index=keep.index, dtype=str
    )
    keep["key_hash"] = pd.Series(
        [
            hashlib.sha256(_content(op, spec, s, p).encode()).hexdigest()[:KEY_HASH_CHARS]
            for op, spec, s, p in zip(
                keep[OPERATION], keep[_SPEC], keep[SOURCE], keep[PROMPT], strict=True
            )
        ],
        index=keep.index,
        dtype=str,
    )
    keep[_STEM] = [
        _key_stem(op, s, path)
        for op, s, path in zip(keep[OPERATION], keep[SOURCE], keep[SOURCE_PATH], strict=True)
    ]
    defaults = keep[VARIANT].isna()
    keep.loc[defaults, VARIANT] = "v-" + keep.loc[defaults, "prompt_sha256"].str[:10]
    # Other operations on the same prompt differ by their parameters: label them by key.
    others = defaults & (keep[OPERATION] != REMIX)
    keep.loc[others, VARIANT] = keep.loc[others, OPERATION] + "-" + keep.loc[others, "key_hash"]
    _flag_duplicate_labels(found, keep)
    keep = keep[~keep[_ROW].isin(found.rows[~found.ok])]
    keep = _resolve_chains(found, keep)
    return _expand(keep), found.as_list()


_SPEC = "__spec__"  # an operation's parameters as canonical text, part of its key
_STEM = "__stem__"  # the key's readable prefix


def _content(operation: str, spec: str, source: str, prompt: str) -> str:
    """What a key hashes. A remix hashes (source, prompt), as keys always have, so ledgers
    written before other operations existed keep their keys."""
    if operation == REMIX:
        return f"{source}\0{prompt}"
    return f"{operation}\0{spec}\0{source}\0{prompt}"


def _chained_content(operation: str, spec: str, parent_key: str, prompt: str) -> str:
    if operation == REMIX:
        return f"{parent_key}\0{prompt}"
    return f"{operation}\0{spec}\0{parent_key}\0{prompt}"


def _key_stem(operation: str, source: str, source_path: object) -> str:
    if operation == REMIX:
        return source[:KEY_SOURCE_CHARS]
    if source:
        return f"{operation}-{source[:40]}"
    return f"{operation}-upload" if isinstance(source_path, str) and source_path else operation


def _identity(operation: pd.Series, source: pd.Series, params: dict[str, pd.Series]) -> pd.Series:
    """What two rows must share (with the prompt) to be the same request."""
    other = operation != REMIX
    identity = source.copy()
    if other.any():
        identity[other] = (
            operation[other] + "\0" + params[_SPEC][other].astype(str) + "\0" + source[other]
        )
    return identity


def _present(values: pd.Series) -> np.ndarray:
    return values.map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy(dtype=bool)


def _operation(found: _Problems, values: pd.Series, typed: bool) -> pd.Series:
    text = _text_column(found, values, OPERATION, typed).fillna("").str.strip().str.lower()
    text = text.where(text != "", REMIX)
    found.flag(
        (~text.isin(OPERATIONS)).to_numpy(),
        OPERATION,
        lambda v: f"operation must be one of {', '.join(OPERATIONS)}, got {v!r}",
        values,
    )
    return text.where(text.isin(OPERATIONS), REMIX).astype(object)


def _parameters(
    found: _Problems,
    column: Callable[[str], pd.Series],
    typed: bool,
    operation: pd.Series,
    source: pd.Series,
    parent_label: pd.Series,
    base: Path,
) -> dict[str, pd.Series]:
    """Each operation's own columns checked row by row against the contract; the values
    normalised (paths made absolute, a create's defaults filled in) with their key text."""
    cells: dict[str, pd.Series] = {}
    for name in PARAMETERS:
        values = column(name)
        if typed and name == SECONDS:
            values = pd.Series(
                [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values],
                index=values.index,
                dtype=object,
            )
        cells[name] = _text_column(found, values, name, typed).fillna("").str.strip()
    for name, takes in PARAMETERS.items():
        given = (cells[name] != "").to_numpy()
        found.flag(
            given & ~operation.isin(takes).to_numpy(),
            name,
            lambda op, name=name: f"a {op} row takes no {name}; leave it empty",
            operation,
        )
    op = operation.to_numpy()
    upload = (cells[SOURCE_PATH] != "").to_numpy()
    found.flag(
        upload & (source != "").to_numpy(),
        SOURCE_PATH,
        "give source_video_id or source_path, not both",
    )
    found.flag(
        upload & (parent_label != "").to_numpy(),
        SOURCE_PATH,
        "a row with a source_variant derives from that row's video; leave source_path empty",
    )
    found.flag(
        (op == CREATE) & (parent_label != "").to_numpy(),
        SOURCE_VARIANT,
        "a create row makes a new video from its prompt; it cannot have a source_variant",
    )
    found.flag(
        np.isin(op, (EDIT, EXTEND)) & ~upload & (cells[MODEL] != "").to_numpy(),
        MODEL,
        "model can be set on an edit or extend row only with source_path; "
        "a source video's own model is used",
    )
    seconds = cells[SECONDS]
    found.flag(
        (op == EXTEND) & (seconds == "").to_numpy(),
        SECONDS,
        "an extend row needs seconds: the length to add",
    )
    bad_seconds = ((seconds != "") & ~seconds.isin(_LENIENT.seconds)).to_numpy()
    allowed = ", ".join(_LENIENT.seconds)
    found.flag(
        bad_seconds & (op == EXTEND),
        SECONDS,
        lambda v: (
            f"an extension adds one of {allowed} seconds "
            f"(at most {MAX_EXTENSION_SECONDS}), got {v!r}"
        ),
        seconds,
    )
    found.flag(
        bad_seconds, SECONDS, lambda v: f"seconds must be one of {allowed}, got {v!r}", seconds
    )
    size = cells[SIZE]
    found.flag(
        ((size != "") & ~size.isin(_LENIENT.sizes)).to_numpy(),
        SIZE,
        lambda v: f"size must be one of {', '.join(_LENIENT.sizes)}, got {v!r}",
        size,
    )
    characters, character_problems = _distinct(cells[CHARACTERS], _characters)
    found.flag(character_problems.notna().to_numpy(), CHARACTERS, str, character_problems)
    reference, reference_problems = _distinct(cells[INPUT_REFERENCE], lambda v: _reference(v, base))
    found.flag(reference_problems.notna().to_numpy(), INPUT_REFERENCE, str, reference_problems)
    footage, footage_problems = _distinct(cells[SOURCE_PATH], lambda v: _footage(v, base))
    found.flag(footage_problems.notna().to_numpy(), SOURCE_PATH, str, footage_problems)

    creates = op == CREATE
    model = cells[MODEL].where(~(creates & (cells[MODEL] == "").to_numpy()), DEFAULT_MODEL)
    seconds = seconds.where(~(creates & (seconds == "").to_numpy()), DEFAULT_SECONDS)
    size = size.where(~(creates & (size == "").to_numpy()), DEFAULT_SIZE)
    out = {
        MODEL: model,
        SECONDS: seconds,
        SIZE: size,
        INPUT_REFERENCE: reference.map(lambda v: v[0] if v else ""),
        CHARACTERS: characters.map(lambda v: ",".join(v) if v else ""),
        SOURCE_PATH: footage.map(lambda v: v[0] if v else ""),
        "source_sha256": footage.map(lambda v: v[1] if v else ""),
    }
    reference_key = reference.map(lambda v: v[1] if v else "")
    out[_SPEC] = pd.Series(
        [
            ";".join(
                f"{k}={v}"
                for k, v in (
                    ("characters", c),
                    ("input_reference", r),
                    ("model", m),
                    ("seconds", sec),
                    ("size", sz),
                    ("source_sha256", sha),
                )
                if v
            )
            for c, r, m, sec, sz, sha in zip(
                out[CHARACTERS],
                reference_key,
                out[MODEL],
                out[SECONDS],
                out[SIZE],
                out["source_sha256"],
                strict=True,
            )
        ],
        index=operation.index,
        dtype=object,
    )
    return {name: values.astype(object) for name, values in out.items()}


def _distinct(
    values: pd.Series, check: Callable[[str], tuple[object, str | None]]
) -> tuple[pd.Series, pd.Series]:
    """Check each distinct non-empty cell once: (its normalised value, its problem)."""
    results = {value: check(value) for value in pd.unique(values[values != ""])}
    normal = values.map(lambda v: results[v][0] if v in results else None).astype(object)
    problems = values.map(lambda v: results[v][1] if v in results else None).astype(object)
    return normal, problems


def _characters(text: str) -> tuple[tuple[str, ...] | None, str | None]:
    """Character ids, comma-separated: `char_1, char_2`."""
    ids = tuple(part.strip() for part in text.split(","))
    if any(not part for part in ids):
        return None, "characters are character ids separated by commas, with none empty"
    if len(ids) > MAX_CHARACTERS:
        return None, f"a video can include at most {MAX_CHARACTERS} characters, got {len(ids)}"
    for character in ids:
        problem = id_problem(character, kind="character id")
        if problem is not None:
            return None, problem
    if len(set(ids)) != len(ids):
        return None, "a character is named twice"
    return ids, None


def _reference(text: str, base: Path) -> tuple[tuple[str, str] | None, str | None]:
    """An image URL as is, or a local image file (relative to the table's folder) as an
    absolute path, keyed by its content's sha256 so that the key is the same on any machine."""
    lowered = text.lower()
    if lowered.startswith(("http://", "https://", "data:image/")):
        return (text, text), None
    path = (base / text).resolve()
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, (
            f"input_reference must be an image URL or a {', '.join(IMAGE_SUFFIXES)} file, "
            f"got {text[:200]!r}"
        )
    digest, problem = _file_sha256(path, text, INPUT_REFERENCE)
    return (None, problem) if digest is None else ((str(path), f"sha256:{digest}"), None)


def _footage(text: str, base: Path) -> tuple[tuple[str, str] | None, str | None]:
    path = (base / text).resolve()
    digest, problem = _file_sha256(path, text, SOURCE_PATH)
    return (None, problem) if digest is None else ((str(path), digest), None)


def _file_sha256(path: Path, text: str, name: str) -> tuple[str | None, str | None]:
    try:
        if not path.is_file():
            return None, f"{name} {text[:200]!r} is not a file"
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        return None, f"{name} {text[:200]!r} cannot be read ({exc.strerror})"
    return digest.hexdigest(), None


def _text_column(
    found: _Problems, values: pd.Series, name: str, typed: bool, *, required: bool = False
) -> pd.Series:
    """Cells as text (None when missing); non-text cells from typed files are problems."""
    if typed:
        wrong = values.map(lambda v: v is not None and not isinstance(v, str))
        found.flag(
            wrong.to_numpy(), name, lambda v: f"{name} must be text, got {_type_name(v)}", values
        )
        values = values.where(~wrong, None)
    if required:
        found.flag(values.isna().to_numpy(), name, f"{name} is missing")
        found.flag((values == "").to_numpy(), name, f"{name} is empty")
    return values.astype(object)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | np.number):
        return "a number"
    return type(value).__name__


def _id_problems(source: pd.Series) -> pd.Series:
    """Check each distinct source id once: tables repeat a handful of ids many times."""
    distinct = pd.unique(source.dropna())
    reasons = {value: id_problem(value, kind=SOURCE) for value in distinct}
    return source.map(lambda v: None if v is None else reasons.get(v)).astype(object)


def _replicates(found: _Problems, values: pd.Series) -> pd.Series:
    text = values.map(_replicate_text)
    blank = text.isna() | (text.str.strip() == "")
    shaped = text.str.strip().str.fullmatch(_WHOLE_NUMBER.pattern).fillna(False).astype(bool)
    number = pd.to_numeric(text.where(shaped & ~blank).str.strip(), errors="coerce")
    good = blank | (shaped & (number >= 1) & (number <= MAX_REPLICATES))
    found.flag(
        (~good).to_numpy(),
        REPLICATES,
        lambda v: f"replicates must be a whole number from 1 to {MAX_REPLICATES}, got {v!r}",
        values,
    )
    return number.where(~blank & good, 1).fillna(1).astype(np.int64)


def _replicate_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "not-a-number"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(value)
    return "not-a-number"


def _label(found: _Problems, values: pd.Series, name: str, typed: bool) -> pd.Series:
    if typed:
        # Not `Series.map`: it re-infers the dtype, and pandas 3 turns ["calm", None] into a
        # string column holding NaN, which `_text_column` then rejects as "got a number".
        values = pd.Series(
            [
                str(v) if isinstance(v, int | np.integer) and not isinstance(v, bool) else v
                for v in values
            ],
            index=values.index,
            dtype=object,
        )
    text = _text_column(found, values, name, typed)
    stripped = text.str.strip()
    long = (stripped.str.len() > LABEL_MAX_CHARS).fillna(False).to_numpy()
    found.flag(long, name, f"{name} is longer than {LABEL_MAX_CHARS} characters")
    control = stripped.str.contains(_CONTROL.pattern, regex=True).fillna(False).to_numpy()
    found.flag(control, name, f"{name} contains a control character")
    blank = stripped.isna() | (stripped == "")
    if name == EXPERIMENT:
        return stripped.where(~blank, DEFAULT_EXPERIMENT).astype(object)
    return stripped.where(~blank, None).astype(object)


def _flag_duplicates(
    found: _Problems, rows: np.ndarray, source: pd.Series, prompt: pd.Series
) -> None:
    """A later row repeating an earlier (source, prompt) is the problem; it names the first."""
    ok = found.ok
    pairs = pd.DataFrame({SOURCE: source[ok], PROMPT: prompt[ok], _ROW: rows[ok]})
    first = pairs.groupby([SOURCE, PROMPT], sort=False)[_ROW].transform("first")
    repeated = pairs[_ROW] != first
    if not repeated.any():
        return
    earlier = pd.Series(None, index=source.index, dtype=object)
    earlier[repeated[repeated].index] = first[repeated]
    found.flag(
        earlier.notna().to_numpy(),
        PROMPT,
        lambda r: f"duplicates row {r} (same source_video_id and prompt); use replicates instead",
        earlier,
    )


def _flag_duplicate_labels(found: _Problems, keep: pd.DataFrame) -> None:
    first = keep.groupby([SOURCE, VARIANT], sort=False)[_ROW].transform("first")
    repeated = keep[_ROW] != first
    if not repeated.any():
        return
    reasons = {
        int(row): f"variant {label!r} is already used by row {int(by)} for this source"
        for row, label, by in zip(
            keep.loc[repeated, _ROW], keep.loc[repeated, VARIANT], first[repeated], strict=True
        )
    }
    mask = np.isin(found.rows, list(reasons))
    found.flag(mask, VARIANT, lambda row: reasons[int(row)], pd.Series(found.rows))


def _resolve_chains(found: _Problems, keep: pd.DataFrame) -> pd.DataFrame:
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
        (s, v): int(r) for s, v, r in zip(keep[SOURCE], keep[VARIANT], keep[_ROW], strict=True)
    }
    index_of = {int(r): i for i, r in zip(keep.index, keep[_ROW], strict=True)}
    parent_row: dict[int, int] = {}
    bad: dict[int, str] = {}
    for source, label, row in zip(
        keep.loc[chained, SOURCE],
        keep.loc[chained, SOURCE_VARIANT],
        keep.loc[chained, _ROW],
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
    keys: dict[int, str] = {}

    def key_of(row: int) -> str:
        if row not in keys:
            record = keep.loc[index_of[row]]
            parent = parent_row.get(row)
            if parent is not None:
                keep.at[index_of[row], "parent_key"] = key_of(parent)
                content = _chained_content(
                    record[OPERATION],
                    record[_SPEC],
                    keep.at[index_of[row], "parent_key"],
                    record[PROMPT],
                )
                keep.at[index_of[row], "key_hash"] = hashlib.sha256(content.encode()).hexdigest()[
                    :KEY_HASH_CHARS
                ]
            keys[row] = f"{record[_STEM]}.{keep.at[index_of[row], 'key_hash']}.r1"
        return keys[row]

    keep = keep[~keep[_ROW].isin(list(bad))]
    index_of = {int(r): i for i, r in zip(keep.index, keep[_ROW], strict=True)}
    for row in keep.loc[keep[SOURCE_VARIANT] != "", _ROW]:
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


def _expand(keep: pd.DataFrame) -> tuple[VariantRequest, ...]:
    """One request per replicate, in table order."""
    out: list[VariantRequest] = []
    names = (
        SOURCE,
        PROMPT,
        VARIANT,
        EXPERIMENT,
        REPLICATES,
        _ROW,
        "prompt_sha256",
        "key_hash",
        "parent_key",
        _STEM,
        OPERATION,
        MODEL,
        SECONDS,
        SIZE,
        INPUT_REFERENCE,
        SOURCE_PATH,
        "source_sha256",
        CHARACTERS,
    )
    columns = [keep[name].tolist() for name in names]
    for (
        source,
        prompt,
        variant,
        experiment,
        count,
        row,
        sha,
        digest,
        parent,
        key_stem,
        operation,
        model,
        seconds,
        size,
        reference,
        source_path,
        source_sha,
        characters,
    ) in zip(*columns, strict=True):
        stem = f"{key_stem}.{digest}.r"
        extra = {}
        if operation != REMIX:
            extra = {
                "operation": operation,
                "model": model or None,
                "seconds": seconds or None,
                "size": size or None,
                "input_reference": reference or None,
                "source_path": source_path or None,
                "source_sha256": source_sha or None,
                "characters": tuple(characters.split(",")) if characters else (),
            }
        for replicate in range(1, int(count) + 1):
            out.append(
                VariantRequest(
                    key=f"{stem}{replicate}",
                    source_video_id=source,
                    prompt=prompt,
                    prompt_sha256=sha,
                    variant=variant,
                    experiment=experiment,
                    replicate=replicate,
                    row_number=int(row),
                    parent_key=parent,
                    **extra,
                )
            )
    return tuple(out)
