"""The request table: the bad-table corpus, keys, formats, strict mode, and a 50 MB table."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remix_pipeline.contract import PROMPT_MAX_CHARS, id_problem
from remix_pipeline.requests import (
    KEY_MAX_CHARS,
    KEY_PATTERN,
    RowProblem,
    TableInvalidError,
    TableUnreadableError,
    read_request_table,
    variant_key,
)

DATA = Path(__file__).parent / "data"
SAMPLE = Path(__file__).parent.parent / "data" / "requests.csv"
CATALOGUE = Path(__file__).parent.parent / "data" / "catalogue.json"

# file -> (the (row, column) of every problem, the row numbers whose requests proceed)
CASES: dict[str, tuple[list[tuple[int | None, str | None]], list[int]]] = {
    "missing_prompt_column.csv": ([(None, "prompt")], []),
    "missing_source_column.csv": ([(None, "source_video_id")], []),
    "duplicate_header.csv": ([(None, "prompt")], []),
    "header_only.csv": ([(None, None)], []),
    "empty_prompt.csv": ([(2, "prompt")], [1, 3]),
    "whitespace_prompt.csv": ([(2, "prompt")], [1, 3]),
    "nan_cells.csv": ([(2, "source_video_id")], [1, 3]),
    "null_prompt.parquet": ([(2, "prompt")], [1, 3]),
    "hostile_dotdot.csv": ([(2, "source_video_id")], [1, 3]),
    "hostile_slash.csv": ([(2, "source_video_id")], [1, 3]),
    "hostile_percent.csv": ([(2, "source_video_id")], [1, 3]),
    "hostile_space.csv": ([(2, "source_video_id")], [1, 3]),
    "hostile_control_char.csv": ([(2, "source_video_id")], [1, 3]),
    "hostile_long_id.csv": ([(2, "source_video_id")], [1, 3]),
    "replicates_zero.csv": ([(2, "replicates")], [1, 3]),
    "replicates_negative.csv": ([(2, "replicates")], [1, 3]),
    "replicates_text.csv": ([(2, "replicates")], [1, 3]),
    "replicates_fraction.csv": ([(2, "replicates")], [1, 3]),
    "replicates_too_many.csv": ([(2, "replicates")], [1, 3]),
    "typed_columns.parquet": ([(2, "replicates")], [1, 3]),
    "duplicate_rows.csv": ([(3, "prompt")], [1, 2]),
    "duplicate_variant.csv": ([(3, "variant")], [1, 2]),
    "ragged_row.csv": ([(2, None)], [1, 3]),
    "unclosed_quote.csv": ([(3, None)], [1, 2]),
    "quoted_newline.csv": ([(2, "prompt")], [1, 3]),
    "blank_lines.csv": ([(2, "prompt")], [1, 3]),
    "broken_line.jsonl": ([(2, None)], [1, 3]),
    "not_an_object.jsonl": ([(2, None)], [1, 3]),
    "json_wrong_types.jsonl": ([(2, "prompt")], [1, 3]),
    "source_variant_chain.csv": ([(2, "source_variant")], [1, 3]),
    "wrong_types.parquet": ([(None, "prompt")], []),
    "all_rows_invalid.csv": (
        [(1, "replicates"), (2, "source_video_id"), (3, "source_video_id"), (4, "prompt")],
        [],
    ),
    "bom.csv": ([], [1, 2]),
    "crlf.csv": ([], [1, 2]),
    "unknown_columns.csv": ([], [1, 2]),
    "leading_zeros.csv": ([], [1]),
}

# file -> a fragment the file-level error must contain
UNREADABLE: dict[str, str] = {
    "empty.csv": "the file is empty",
    "non_utf8.csv": "not UTF-8",
    "not_parquet.parquet": "not a readable Parquet file",
    "corrupt.parquet": "not a readable Parquet file",
    "unsupported_type.xlsx": "unsupported file type '.xlsx'",
}

GOOD_ROWS = "source_video_id,variant,prompt\nvideo_src_harbor,calm,Make the sea calm\n"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def test_corpus_has_at_least_thirty_cases_and_every_file_is_listed_in_the_readme() -> None:
    files = sorted(p.name for p in DATA.iterdir() if p.name != "README.md")
    readme = (DATA / "README.md").read_text()
    assert len(files) >= 30
    assert sorted(CASES.keys() | UNREADABLE.keys()) == files
    assert [name for name in files if f"`{name}`" not in readme] == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case_names_the_exact_row_and_column_and_good_rows_proceed(name: str) -> None:
    expected_problems, good_rows = CASES[name]
    table = read_request_table(DATA / name)
    assert [(p.row_number, p.column) for p in table.problems] == expected_problems
    assert sorted({r.row_number for r in table.requests}) == good_rows
    assert all(p.reason for p in table.problems)


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_corpus_file_raises_a_clear_file_level_error(name: str) -> None:
    with pytest.raises(TableUnreadableError, match=name) as caught:
        read_request_table(DATA / name)
    assert UNREADABLE[name] in str(caught.value)


def test_non_utf8_error_names_the_byte_offset_of_the_bad_byte() -> None:
    data = (DATA / "non_utf8.csv").read_bytes()
    with pytest.raises(TableUnreadableError) as caught:
        read_request_table(DATA / "non_utf8.csv")
    offset = data.index(bytes([0xE9]))
    assert f"offset {offset}" in str(caught.value)


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "table.csv"
    folder.mkdir()
    with pytest.raises(TableUnreadableError, match="is a directory"):
        read_request_table(folder)


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(TableUnreadableError, match="no such file"):
        read_request_table(tmp_path / "absent.csv")


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    """Write `rows` as CSV (every cell as text), JSON Lines or Parquet, by `path`'s suffix."""
    if path.suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# A table whose only row is invalid: (cells over a valid row, the column named). Validation
# of an all-invalid table used to crash on the empty set of good rows (issue 13).
ONLY_ROW_INVALID: dict[str, tuple[dict[str, object], str]] = {
    "replicates_fraction": ({"replicates": "2.5"}, "replicates"),
    "replicates_zero": ({"replicates": "0"}, "replicates"),
    "source_dotdot": ({"source_video_id": "video..src"}, "source_video_id"),
    "source_newline": ({"source_video_id": "video_src\ncity"}, "source_video_id"),
    "prompt_40000_chars": ({"prompt": "x" * 40_000}, "prompt"),
    "prompt_empty": ({"prompt": ""}, "prompt"),
    "variant_too_long": ({"variant": "v" * 201}, "variant"),
    "source_variant_dangling": ({"variant": "b", "source_variant": "a"}, "source_variant"),
}
TYPED_ONLY_ROW_INVALID: dict[str, tuple[dict[str, object], str]] = {
    "replicates_float_fraction": ({"replicates": 2.5}, "replicates"),
    "replicates_int_zero": ({"replicates": 0}, "replicates"),
}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("case", sorted(ONLY_ROW_INVALID))
def test_a_table_whose_only_row_is_invalid_names_that_row(
    tmp_path: Path, case: str, suffix: str
) -> None:
    cells, column = ONLY_ROW_INVALID[case]
    row = {"source_video_id": "video_src_city", "prompt": "Rain", **cells}
    table = read_request_table(write_rows(tmp_path / f"t{suffix}", [row]))
    assert [(p.row_number, p.column) for p in table.problems] == [(1, column)]
    assert table.requests == ()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("case", sorted(TYPED_ONLY_ROW_INVALID))
def test_a_table_whose_only_row_has_a_bad_typed_cell_names_that_row(
    tmp_path: Path, case: str, suffix: str
) -> None:
    cells, column = TYPED_ONLY_ROW_INVALID[case]
    row = {"source_video_id": "video_src_city", "prompt": "Rain", **cells}
    table = read_request_table(write_rows(tmp_path / f"t{suffix}", [row]))
    assert [(p.row_number, p.column) for p in table.problems] == [(1, column)]
    assert table.requests == ()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_missing_labels_next_to_text_labels_are_defaults_not_wrong_types(
    tmp_path: Path, suffix: str
) -> None:
    rows: list[dict[str, object]] = [
        {
            "source_video_id": "video_src_city",
            "prompt": "Rain",
            "variant": "wet",
            "experiment": None,
        },
        {"source_video_id": "video_src_city", "prompt": "Snow", "variant": None, "experiment": "x"},
    ]
    table = read_request_table(write_rows(tmp_path / f"t{suffix}", rows))
    assert table.problems == ()
    assert [(r.variant[:2], r.experiment) for r in table.requests] == [
        ("we", "default"),
        ("v-", "x"),
    ]


def test_a_missing_label_next_to_a_wrongly_typed_one_is_not_a_problem(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"source_video_id": "video_src_city", "prompt": "Rain", "variant": 2.5},
        {"source_video_id": "video_src_city", "prompt": "Snow", "variant": None},
    ]
    table = read_request_table(write_rows(tmp_path / "t.jsonl", rows))
    assert [(p.row_number, p.column) for p in table.problems] == [(1, "variant")]
    assert "got a number" in table.problems[0].reason


def test_a_prompt_over_the_limit_is_a_row_problem_and_one_at_the_limit_is_not(
    tmp_path: Path,
) -> None:
    at_limit = "a" * PROMPT_MAX_CHARS
    over = "b" * (PROMPT_MAX_CHARS + 1)
    path = write(
        tmp_path / "long.csv",
        f"source_video_id,prompt\nvideo_src_city,{at_limit}\nvideo_src_city,{over}\n",
    )
    table = read_request_table(path)
    assert [(p.row_number, p.column) for p in table.problems] == [(2, "prompt")]
    assert "32,001 characters" in table.problems[0].reason
    assert [r.prompt for r in table.requests] == [at_limit]


def test_row_problem_reads_as_row_column_and_reason() -> None:
    assert (
        str(RowProblem(3, "prompt", "prompt is empty")) == "row 3, column prompt: prompt is empty"
    )
    assert str(RowProblem(None, "prompt", "required column is missing")) == (
        "table, column prompt: required column is missing"
    )


def test_duplicate_row_problem_names_the_row_it_duplicates() -> None:
    table = read_request_table(DATA / "duplicate_rows.csv")
    assert "duplicates row 1" in table.problems[0].reason


def test_bom_does_not_leak_into_the_first_column_name() -> None:
    table = read_request_table(DATA / "bom.csv")
    assert [r.source_video_id for r in table.requests] == ["video_src_harbor", "video_src_forest"]


def test_crlf_table_gives_the_same_prompts_and_keys_as_lf() -> None:
    crlf = read_request_table(DATA / "crlf.csv")
    lf = read_request_table(DATA / "bom.csv")
    assert [r.prompt for r in crlf.requests] == ["Make the sea calm", "Add falling snow"]
    assert [r.key for r in crlf.requests] == [r.key for r in lf.requests]


def test_quoted_newline_stays_inside_the_prompt() -> None:
    table = read_request_table(DATA / "quoted_newline.csv")
    assert table.requests[0].prompt == "First line\nsecond line"


def test_crlf_inside_a_quoted_prompt_is_normalised_to_lf(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'source_video_id,prompt\r\nvideo_src_city,"one\r\ntwo"\r\n')
    assert read_request_table(path).requests[0].prompt == "one\ntwo"


def test_leading_zeros_stay_as_written() -> None:
    request = read_request_table(DATA / "leading_zeros.csv").requests[0]
    assert (request.source_video_id, request.variant) == ("007", "007")
    assert request.key.startswith("007.")


def test_unknown_columns_are_ignored_with_a_note() -> None:
    table = read_request_table(DATA / "unknown_columns.csv")
    assert table.problems == ()
    assert table.notes == ("ignored unknown column(s): camera, notes",)


def test_key_is_source_hash_of_source_and_prompt_and_replicate() -> None:
    digest = hashlib.sha256(b"video_src_harbor\0Make the sea calm").hexdigest()[:12]
    table = read_request_table(DATA / "bom.csv")
    assert table.requests[0].key == f"video_src_harbor.{digest}.r1"
    assert table.requests[0].prompt_sha256 == hashlib.sha256(b"Make the sea calm").hexdigest()


def test_renaming_the_variant_label_keeps_the_key(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", GOOD_ROWS)
    renamed = write(tmp_path / "b.csv", GOOD_ROWS.replace(",calm,", ",tranquil,"))
    assert read_request_table(first).requests[0].key == read_request_table(renamed).requests[0].key


def test_changing_the_prompt_gives_a_new_key(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", GOOD_ROWS)
    changed = write(tmp_path / "b.csv", GOOD_ROWS.replace("calm", "rough"))
    assert read_request_table(first).requests[0].key != read_request_table(changed).requests[0].key


def test_surrounding_whitespace_is_stripped_before_hashing(tmp_path: Path) -> None:
    padded = write(
        tmp_path / "a.csv",
        'source_video_id,prompt\nvideo_src_harbor,"  Make the sea calm \t"\n',
    )
    request = read_request_table(padded).requests[0]
    assert request.prompt == "Make the sea calm"
    assert request.key == read_request_table(DATA / "bom.csv").requests[0].key


def test_replicates_expand_into_numbered_keys_of_one_row(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "source_video_id,prompt,replicates\nvideo_src_city,Rain,3\n")
    requests = read_request_table(path).requests
    assert [r.replicate for r in requests] == [1, 2, 3]
    assert [r.key.rsplit(".", 1)[1] for r in requests] == ["r1", "r2", "r3"]
    assert len({r.key for r in requests}) == 3
    assert {r.row_number for r in requests} == {1}


def test_defaults_for_variant_label_experiment_and_replicates(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "source_video_id,prompt\nvideo_src_city,Rain\n")
    (request,) = read_request_table(path).requests
    assert request.variant == f"v-{request.prompt_sha256[:10]}"
    assert request.experiment == "default"
    assert request.replicate == 1


def test_a_default_label_colliding_with_an_explicit_one_is_a_variant_problem(
    tmp_path: Path,
) -> None:
    sha = hashlib.sha256(b"Rain").hexdigest()
    path = write(
        tmp_path / "c.csv",
        f"source_video_id,prompt,variant\nvideo_src_city,Rain,\nvideo_src_city,Snow,v-{sha[:10]}\n",
    )
    table = read_request_table(path)
    assert [(p.row_number, p.column) for p in table.problems] == [(2, "variant")]


def test_the_same_prompt_on_different_sources_is_not_a_duplicate(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.csv",
        "source_video_id,prompt\nvideo_src_city,Rain\nvideo_src_dunes,Rain\n",
    )
    table = read_request_table(path)
    assert table.problems == ()
    assert len({r.key for r in table.requests}) == 2


def test_csv_jsonl_and_parquet_of_the_same_rows_give_the_same_keys(tmp_path: Path) -> None:
    rows = [
        {"source_video_id": "video_src_city", "prompt": "Rain", "replicates": "2"},
        {"source_video_id": "video_src_dunes", "prompt": "Wind", "replicates": "1"},
    ]
    with (tmp_path / "t.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    keys = [
        [r.key for r in read_request_table(tmp_path / name).requests]
        for name in ("t.csv", "t.jsonl", "t.parquet")
    ]
    assert keys[0] == keys[1] == keys[2]
    assert len(keys[0]) == 3


def test_long_source_ids_are_truncated_in_keys_that_stay_unique() -> None:
    first = "a" * 127 + "1"
    second = "a" * 127 + "2"
    keys = {variant_key(first, "Rain", 1000), variant_key(second, "Rain", 1000)}
    assert len(keys) == 2
    assert all(len(key) <= KEY_MAX_CHARS for key in keys)


@settings(max_examples=200, deadline=None)
@given(
    source=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}", fullmatch=True),
    prompt=st.text(min_size=1, max_size=200),
    replicate=st.integers(min_value=1, max_value=1000),
)
def test_keys_of_any_valid_source_are_safe_partition_keys(
    source: str, prompt: str, replicate: int
) -> None:
    assert id_problem(source) is None
    key = variant_key(source, prompt, replicate)
    assert KEY_PATTERN.fullmatch(key)
    assert "..." not in key
    assert len(key) <= KEY_MAX_CHARS


def test_content_hash_is_the_sha256_of_the_file_bytes() -> None:
    path = DATA / "crlf.csv"
    assert read_request_table(path).content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_row_count_includes_bad_rows() -> None:
    assert read_request_table(DATA / "ragged_row.csv").row_count == 3


def test_typed_parquet_variant_labels_become_text() -> None:
    table = read_request_table(DATA / "typed_columns.parquet")
    assert [r.variant for r in table.requests] == ["1", "1", "3"]
    assert [r.replicate for r in table.requests] == [1, 2, 1]


def test_strict_mode_rejects_a_table_with_any_problem() -> None:
    with pytest.raises(TableInvalidError) as caught:
        read_request_table(DATA / "empty_prompt.csv", strict=True)
    assert [(p.row_number, p.column) for p in caught.value.problems] == [(2, "prompt")]


def test_strict_mode_accepts_a_valid_table() -> None:
    assert len(read_request_table(DATA / "bom.csv", strict=True).requests) == 2


def test_sample_table_is_a_valid_experiment_over_the_seeded_sources() -> None:
    table = read_request_table(SAMPLE, strict=True)
    seeded = {video["id"] for video in json.loads(CATALOGUE.read_text())}
    assert {r.source_video_id for r in table.requests} == seeded
    assert {r.experiment for r in table.requests} == {"sample"}
    assert 10 <= len(table.requests) <= 14
    assert max(r.replicate for r in table.requests) == 2


def test_a_50_mb_table_validates_completely(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    path = tmp_path / "big.csv"
    rows = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_video_id", "variant", "prompt", "experiment", "replicates"])
        filler = "slow swells under a low sun, gulls and rigging, " * 3
        while handle.tell() < 50_000_000:
            rows += 1
            writer.writerow([f"video_src_{rows % 4}", f"v{rows}", f"{filler}take {rows}", "b", "1"])
    started = time.perf_counter()
    table = read_request_table(path)
    seconds = time.perf_counter() - started
    record_property("validate_50mb_seconds", round(seconds, 2))
    print(f"validated {path.stat().st_size / 1e6:.0f} MB, {rows} rows in {seconds:.2f} s")
    assert table.problems == ()
    assert table.row_count == rows
    assert len({r.key for r in table.requests}) == rows
