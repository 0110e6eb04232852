"""The request table: (source video, prompt) rows in, one keyed `VariantRequest` per
replicate out.

A request table lists rows as CSV, Parquet or JSON Lines. Every valid row becomes one
`VariantRequest` per replicate, keyed by content (`keys`) so the same table gives the same
keys on any machine and a re-run never pays for finished work twice.

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

Modules: `model` (columns, limits, results), `readers` (bytes to cells), `validate` (cells
to requests), `chains` (rows built on other rows), `keys` (the key format), `problems`.
"""

from remix_pipeline.request_table.keys import (
    KEY_HASH_CHARS,
    KEY_MAX_CHARS,
    KEY_PATTERN,
    KEY_SOURCE_CHARS,
    variant_key,
)
from remix_pipeline.request_table.model import *  # noqa: F403 (the model names its exports)
from remix_pipeline.request_table.model import __all__ as _model_exports
from remix_pipeline.request_table.readers import SUFFIXES, read_request_table

__all__ = [
    "KEY_HASH_CHARS",
    "KEY_MAX_CHARS",
    "KEY_PATTERN",
    "KEY_SOURCE_CHARS",
    "SUFFIXES",
    "read_request_table",
    "variant_key",
    *_model_exports,
]
