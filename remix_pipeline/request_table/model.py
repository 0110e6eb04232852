"""The request table's columns, operations and limits, and what reading one yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = [
    "CHARACTERS",
    "CREATE",
    "DEFAULT_EXPERIMENT",
    "EDIT",
    "EXPERIMENT",
    "EXTEND",
    "IMAGE_SUFFIXES",
    "INPUT_REFERENCE",
    "KNOWN_COLUMNS",
    "LABEL_MAX_CHARS",
    "MAX_CHARACTERS",
    "MAX_EXTENSIONS",
    "MAX_EXTENSION_SECONDS",
    "MAX_REPLICATES",
    "MAX_TOTAL_SECONDS",
    "MODEL",
    "OPERATION",
    "OPERATIONS",
    "PARAMETERS",
    "PROMPT",
    # Operations and their limits.
    "REMIX",
    "REPLICATES",
    "REQUIRED_COLUMNS",
    "SECONDS",
    "SIZE",
    # Columns.
    "SOURCE",
    "SOURCE_PATH",
    "SOURCE_VARIANT",
    "VARIANT",
    "RequestTable",
    "RowProblem",
    "TableInvalidError",
    "TableUnreadableError",
    # What reading yields.
    "VariantRequest",
]

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

# Internal columns of the frame validation works on.
ROW = "__row__"
SPEC = "__spec__"  # an operation's parameters as canonical text, part of its key
STEM = "__stem__"  # the key's readable prefix


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


@dataclass
class RawTable:
    """What a reader hands to validation: cells by column, and problems found while reading."""

    columns: list[str]
    frame: pd.DataFrame  # object dtype, one row per readable record, row numbers in ROW
    problems: list[RowProblem]
    row_count: int
    typed: bool  # cells may be non-text (JSON, Parquet) and need type checks
