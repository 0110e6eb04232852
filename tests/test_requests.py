"""The request table: the bad-table corpus, keys, formats, strict mode, and a 50 MB table."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remix_pipeline.contract import PROMPT_MAX_CHARS, id_problem
from remix_pipeline.request_table import (
    KEY_MAX_CHARS,
    KEY_PATTERN,
    RequestTable,
    RowProblem,
    TableInvalidError,
    TableUnreadableError,
    VariantRequest,
    read_request_table,
    readers,
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
    "operations_bad_cells.csv": (
        [
            *[(3, "seconds"), (4, "source_video_id"), (5, "seconds"), (6, "seconds")],
            *[(7, "size"), (8, "model"), (9, "operation")],
        ],
        [1, 2],
    ),
    "operations_chain_limits.csv": (
        [(8, "source_variant"), (9, "source_variant"), (16, "source_variant")],
        [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15],
    ),
    "operations_sources.csv": (
        [
            *[(1, "source_path"), (2, "input_reference"), (3, "characters")],
            *[(4, "source_variant"), (5, "source_path"), (6, "source_video_id")],
        ],
        [],
    ),
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


# Operations beyond remix (issue 12) -----------------------------------------------------

# Keys of the sample table as every release before operations wrote them to ledgers.
SAMPLE_KEYS_BEFORE_OPERATIONS = {
    "video_src_city.0ff5363294cc.r1",
    "video_src_city.1b44edee39d8.r1",
    "video_src_city.fca48fa36212.r1",
    "video_src_dunes.14a0028ceebe.r1",
    "video_src_dunes.9cabc75ff980.r1",
    "video_src_forest.2547c959494b.r1",
    "video_src_forest.5fe1bf98ca55.r1",
    "video_src_forest.83436141ab37.r1",
    "video_src_harbor.3882dd17d84f.r1",
    "video_src_harbor.3882dd17d84f.r2",
    "video_src_harbor.6427a15527c4.r1",
    "video_src_harbor.9c9f3708649c.r1",
}


def test_remix_keys_are_those_written_before_operations_existed(tmp_path: Path) -> None:
    assert variant_key("video_src_harbor", "Make the sea calm", 1) == (
        "video_src_harbor."
        + hashlib.sha256(b"video_src_harbor\0Make the sea calm").hexdigest()[:12]
        + ".r1"
    )
    keys = {r.key for r in read_request_table(SAMPLE).requests}
    assert keys == SAMPLE_KEYS_BEFORE_OPERATIONS
    plain = write(tmp_path / "plain.csv", GOOD_ROWS)
    explicit = write(
        tmp_path / "explicit.csv",
        "operation,source_video_id,variant,prompt\nremix,video_src_harbor,calm,Make the sea calm\n",
    )
    assert [r.key for r in read_request_table(plain).requests] == [
        r.key for r in read_request_table(explicit).requests
    ]
    assert read_request_table(explicit).requests[0].operation == "remix"


def operations_table(tmp_path: Path, rows: str, name: str = "ops.csv") -> RequestTable:
    header = "operation,source_video_id,variant,source_variant,prompt,seconds,size,model\n"
    return read_request_table(write(tmp_path / name, header + rows))


def test_each_operation_keys_by_its_parameters_and_a_create_by_its_defaults(
    tmp_path: Path,
) -> None:
    def key(row: str) -> str:
        (request,) = operations_table(tmp_path, row).requests
        return request.key

    create_default = key("create,,,,A fox in snow,,,\n")
    assert create_default == key("create,,,,A fox in snow,4,720x1280,sora-2\n")
    assert create_default.startswith("create.")
    assert len({create_default, key("create,,,,A fox in snow,8,,\n")}) == 2
    assert len({create_default, key("create,,,,A fox in snow,,1280x720,\n")}) == 2
    assert len({create_default, key("create,,,,A fox in snow,,,sora-2-pro\n")}) == 2
    remix = key("remix,video_src_harbor,,,Noir,,,\n")
    edit = key("edit,video_src_harbor,,,Noir,,,\n")
    extend_4 = key("extend,video_src_harbor,,,Noir,4,,\n")
    extend_8 = key("extend,video_src_harbor,,,Noir,8,,\n")
    assert len({remix, edit, extend_4, extend_8}) == 4
    assert edit.startswith("edit-video_src_harbor.")
    (request,) = operations_table(tmp_path, "create,,,,A fox in snow,,,\n").requests
    assert (request.operation, request.source_video_id, request.model) == ("create", "", "sora-2")
    assert (request.seconds, request.size) == ("4", "720x1280")
    for k in (create_default, remix, edit, extend_4):
        assert KEY_PATTERN.fullmatch(k), k


def test_chains_cross_operations_and_keys_follow_the_ancestors(tmp_path: Path) -> None:
    rows = (
        "create,,base,,A quiet lighthouse,8,,\n"
        "extend,,longer,base,The storm arrives,12,,\n"
        "remix,,noir,longer,In black and white,,,\n"
        "edit,,sepia,base,In sepia,,,\n"
    )
    table = operations_table(tmp_path, rows)
    assert table.problems == ()
    base, longer, noir, sepia = table.requests
    assert (longer.parent_key, noir.parent_key, sepia.parent_key) == (
        base.key,
        longer.key,
        base.key,
    )
    assert [r.operation for r in table.requests] == ["create", "extend", "remix", "edit"]
    changed = operations_table(
        tmp_path, rows.replace("The storm arrives,12", "The storm arrives,16")
    )
    assert changed.requests[0].key == base.key
    assert all(
        a.key != b.key for a, b in zip(table.requests[1:3], changed.requests[1:3], strict=True)
    )
    assert changed.requests[3].key == sepia.key


def test_uploaded_footage_keys_by_its_content_not_its_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "clip.mp4").write_bytes(b"footage one")
    (tmp_path / "b" / "clip.mp4").write_bytes(b"footage one")
    header = "operation,source_path,prompt,seconds\n"

    def read(folder: str, row: str) -> VariantRequest:
        (request,) = read_request_table(write(tmp_path / folder / "t.csv", header + row)).requests
        return request

    one = read("a", "edit,clip.mp4,Make it rain,\n")
    assert one.key == read("b", "edit,clip.mp4,Make it rain,\n").key
    assert one.source_path == str((tmp_path / "a" / "clip.mp4").resolve())
    assert one.source_sha256 == hashlib.sha256(b"footage one").hexdigest()
    assert one.key.startswith("edit-upload.")
    (tmp_path / "b" / "clip.mp4").write_bytes(b"footage two")
    assert one.key != read("b", "edit,clip.mp4,Make it rain,\n").key
    assert read("a", "extend,clip.mp4,Go on,8\n").seconds == "8"


def test_create_takes_an_image_reference_and_characters(tmp_path: Path) -> None:
    (tmp_path / "frame.png").write_bytes(b"png bytes")
    header = "operation,prompt,input_reference,characters\n"
    rows = (
        "create,From a file,frame.png,\n"
        "create,From a URL,https://example.com/frame.jpg,\n"
        'create,Two friends,," char_1 , char_2 "\n'
    )
    table = read_request_table(write(tmp_path / "t.csv", header + rows))
    assert table.problems == ()
    local, url, friends = table.requests
    assert local.input_reference == str((tmp_path / "frame.png").resolve())
    assert url.input_reference == "https://example.com/frame.jpg"
    assert friends.characters == ("char_1", "char_2")


def test_a_table_of_creates_needs_no_source_column(tmp_path: Path) -> None:
    table = read_request_table(write(tmp_path / "t.csv", "operation,prompt\ncreate,A fox\n"))
    assert table.problems == ()
    assert [r.operation for r in table.requests] == ["create"]
    without = read_request_table(write(tmp_path / "u.csv", "prompt\nA fox\n"))
    assert [(p.row_number, p.column) for p in without.problems] == [(None, "source_video_id")]


def _counting_validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths validated from here on (the memo's misses)."""
    validated: list[str] = []
    original = readers.validate_table

    def counted(path: str, content_hash: str, raw: object) -> RequestTable:
        validated.append(path)
        return original(path, content_hash, raw)  # type: ignore[arg-type]

    monkeypatch.setattr(readers, "validate_table", counted)
    return validated


def test_an_unchanged_table_read_again_is_not_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = _counting_validations(monkeypatch)
    path = write(tmp_path / "t.csv", "source_video_id,prompt\nvideo_a,Rain\nvideo_b,Snow\n")
    first = read_request_table(path)
    again = read_request_table(path)
    assert validated == [str(path)]
    assert again == first


def test_a_table_rewritten_with_the_same_size_and_time_is_read_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = _counting_validations(monkeypatch)
    path = write(tmp_path / "t.csv", "source_video_id,prompt\nvideo_a,Rain\n")
    before = path.stat()
    assert [r.prompt for r in read_request_table(path).requests] == ["Rain"]
    write(path, "source_video_id,prompt\nvideo_a,Hail\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert [r.prompt for r in read_request_table(path).requests] == ["Hail"]
    assert len(validated) == 2


def test_a_remembered_table_with_problems_is_still_refused_in_strict_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = _counting_validations(monkeypatch)
    path = write(tmp_path / "t.csv", "source_video_id,prompt\nvideo_a,\nvideo_b,Snow\n")
    assert len(read_request_table(path).problems) == 1
    with pytest.raises(TableInvalidError):
        read_request_table(path, strict=True)
    assert validated == [str(path)]


def test_a_table_naming_other_files_is_validated_on_every_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = _counting_validations(monkeypatch)
    (tmp_path / "clip.mp4").write_bytes(b"footage one")
    path = write(tmp_path / "t.csv", "operation,source_path,prompt\nedit,clip.mp4,Rain\n")
    first = read_request_table(path).requests[0]
    (tmp_path / "clip.mp4").write_bytes(b"footage two")
    second = read_request_table(path).requests[0]
    assert len(validated) == 2
    assert second.source_sha256 == hashlib.sha256(b"footage two").hexdigest()
    assert second.key != first.key
