"""Validating a table's cells into variant requests, vectorised with pandas."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from remix_pipeline.contract import PROMPT_MAX_CHARS, id_problem
from remix_pipeline.contract.models import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE
from remix_pipeline.contract.modes import ContractMode, allowed_values
from remix_pipeline.request_table import keys
from remix_pipeline.request_table.chains import resolve_chains
from remix_pipeline.request_table.model import (
    CHARACTERS,
    CREATE,
    DEFAULT_EXPERIMENT,
    EDIT,
    EXPERIMENT,
    EXTEND,
    IMAGE_SUFFIXES,
    INPUT_REFERENCE,
    KNOWN_COLUMNS,
    LABEL_MAX_CHARS,
    MAX_CHARACTERS,
    MAX_EXTENSION_SECONDS,
    MAX_REPLICATES,
    MODEL,
    OPERATION,
    OPERATIONS,
    PARAMETERS,
    PROMPT,
    REMIX,
    REPLICATES,
    REQUIRED_COLUMNS,
    ROW,
    SECONDS,
    SIZE,
    SOURCE,
    SOURCE_PATH,
    SOURCE_VARIANT,
    SPEC,
    STEM,
    VARIANT,
    RawTable,
    RequestTable,
    RowProblem,
    VariantRequest,
)
from remix_pipeline.request_table.problems import Problems

_LENIENT = allowed_values(ContractMode.LENIENT)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHOLE_NUMBER = re.compile(r"\+?\d{1,12}(?:\.0*)?")


def validate_table(path: str, content_hash: str, raw: RawTable) -> RequestTable:
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


def _validate_rows(
    raw: RawTable, base: Path
) -> tuple[tuple[VariantRequest, ...], list[RowProblem]]:
    frame = raw.frame
    n = len(frame)
    rows = frame[ROW].to_numpy()
    found = Problems(rows)

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
            ROW: rows[ok],
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
            keys.content_hash(keys.content(op, spec, s, p))
            for op, spec, s, p in zip(
                keep[OPERATION], keep[SPEC], keep[SOURCE], keep[PROMPT], strict=True
            )
        ],
        index=keep.index,
        dtype=str,
    )
    keep[STEM] = [
        keys.stem_of(op, s, path)
        for op, s, path in zip(keep[OPERATION], keep[SOURCE], keep[SOURCE_PATH], strict=True)
    ]
    defaults = keep[VARIANT].isna()
    keep.loc[defaults, VARIANT] = "v-" + keep.loc[defaults, "prompt_sha256"].str[:10]
    # Other operations on the same prompt differ by their parameters: label them by key.
    others = defaults & (keep[OPERATION] != REMIX)
    keep.loc[others, VARIANT] = keep.loc[others, OPERATION] + "-" + keep.loc[others, "key_hash"]
    _flag_duplicate_labels(found, keep)
    keep = keep[~keep[ROW].isin(found.rows[~found.ok])]
    keep = resolve_chains(found, keep)
    return _expand(keep), found.as_list()


def _identity(operation: pd.Series, source: pd.Series, params: dict[str, pd.Series]) -> pd.Series:
    """What two rows must share (with the prompt) to be the same request."""
    other = operation != REMIX
    identity = source.copy()
    if other.any():
        identity[other] = (
            operation[other] + "\0" + params[SPEC][other].astype(str) + "\0" + source[other]
        )
    return identity


def _present(values: pd.Series) -> np.ndarray:
    return values.map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy(dtype=bool)


def _operation(found: Problems, values: pd.Series, typed: bool) -> pd.Series:
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
    found: Problems,
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
    out[SPEC] = pd.Series(
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
    found: Problems, values: pd.Series, name: str, typed: bool, *, required: bool = False
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


def _replicates(found: Problems, values: pd.Series) -> pd.Series:
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


def _label(found: Problems, values: pd.Series, name: str, typed: bool) -> pd.Series:
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
    found: Problems, rows: np.ndarray, source: pd.Series, prompt: pd.Series
) -> None:
    """A later row repeating an earlier (source, prompt) is the problem; it names the first."""
    ok = found.ok
    pairs = pd.DataFrame({SOURCE: source[ok], PROMPT: prompt[ok], ROW: rows[ok]})
    first = pairs.groupby([SOURCE, PROMPT], sort=False)[ROW].transform("first")
    repeated = pairs[ROW] != first
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


def _flag_duplicate_labels(found: Problems, keep: pd.DataFrame) -> None:
    first = keep.groupby([SOURCE, VARIANT], sort=False)[ROW].transform("first")
    repeated = keep[ROW] != first
    if not repeated.any():
        return
    reasons = {
        int(row): f"variant {label!r} is already used by row {int(by)} for this source"
        for row, label, by in zip(
            keep.loc[repeated, ROW], keep.loc[repeated, VARIANT], first[repeated], strict=True
        )
    }
    mask = np.isin(found.rows, list(reasons))
    found.flag(mask, VARIANT, lambda row: reasons[int(row)], pd.Series(found.rows))


def _expand(keep: pd.DataFrame) -> tuple[VariantRequest, ...]:
    """One request per replicate, in table order."""
    out: list[VariantRequest] = []
    names = (
        SOURCE,
        PROMPT,
        VARIANT,
        EXPERIMENT,
        REPLICATES,
        ROW,
        "prompt_sha256",
        "key_hash",
        "parent_key",
        STEM,
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
                    key=keys.compose(key_stem, digest, replicate),
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
