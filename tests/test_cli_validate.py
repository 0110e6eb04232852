"""`remix-pipeline validate PATH`: exit codes 0/1/2, one line per bad row, never a traceback."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from remix_pipeline.cli import main
from remix_pipeline.request_table import read_request_table

DATA = Path(__file__).parent / "data"
SAMPLE = Path(__file__).parent.parent / "data" / "requests.csv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_valid_table_exits_0_with_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    table = read_request_table(SAMPLE)
    code, out, err = run(capsys, str(SAMPLE))
    assert code == 0
    assert err == []
    assert len(out) == 1
    assert f"{table.row_count} rows, {len(table.requests)} variants" in out[0]
    assert table.content_hash[:12] in out[0]


def test_bad_rows_exit_1_with_one_stderr_line_per_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = DATA / "replicates_zero.csv"
    code, _, err = run(capsys, str(path))
    assert code == 1
    assert err == [str(p) for p in read_request_table(path).problems]
    assert err[0].startswith("row 2, column replicates: ")


def test_empty_prompt_line_names_row_column_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, str(DATA / "empty_prompt.csv"))
    assert err == ["row 2, column prompt: prompt is empty"]


def test_a_valid_table_with_unknown_columns_exits_0_and_notes_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, str(DATA / "unknown_columns.csv"))
    assert code == 0
    assert err == ["note: ignored unknown column(s): camera, notes"]


@pytest.mark.parametrize("name", ["empty.csv", "non_utf8.csv", "corrupt.parquet", "absent.csv"])
def test_unreadable_file_exits_2_with_one_stderr_line(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, err = run(capsys, str(DATA / name))
    assert code == 2
    assert out == []
    assert len(err) == 1
    assert err[0].startswith("error: ")


def test_a_directory_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2
    assert len(err) == 1


# Only these corpus files are not tables; every other one parses, so it never exits 2.
UNREADABLE = {
    "empty.csv",
    "non_utf8.csv",
    "not_parquet.parquet",
    "corrupt.parquet",
    "unsupported_type.xlsx",
}


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir() if p.name != "README.md"))
def test_no_corpus_file_produces_a_traceback(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = run(capsys, str(DATA / name))
    assert code in ((2,) if name in UNREADABLE else (0, 1)), err
    assert not any("Traceback" in line for line in out + err)


def write_one_row(path: Path, row: dict[str, object]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)
    elif path.suffix == ".jsonl":
        path.write_text(json.dumps(row) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist([row]), path)
    return path


# Issue 13: each of these, as a table's only row, made validate exit 2 with
# "could not be read (AttributeError)".
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ({"replicates": "2.5"}, "replicates"),
        ({"source_video_id": "video..src"}, "source_video_id"),
        ({"source_video_id": "video_src\ncity"}, "source_video_id"),
        ({"prompt": "x" * 40_000}, "prompt"),
    ],
    ids=["replicates_2.5", "source_dotdot", "source_newline", "prompt_40000_chars"],
)
def test_a_table_whose_only_row_is_invalid_exits_1_naming_row_and_column(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    cells: dict[str, object],
    column: str,
    suffix: str,
) -> None:
    row = {"source_video_id": "video_src_city", "prompt": "Rain", **cells}
    code, out, err = run(capsys, str(write_one_row(tmp_path / f"t{suffix}", row)))
    assert code == 1, err
    assert len(err) == 1
    assert err[0].startswith(f"row 1, column {column}: ")
    assert out[0].startswith("invalid: 1 problem(s), 1 bad row(s); 1 rows, 0 variants")


def test_the_installed_console_script_validates_and_reports_exit_codes(tmp_path: Path) -> None:
    script = shutil.which("remix-pipeline", path=str(Path(sys.executable).parent))
    assert script is not None
    good = subprocess.run([script, "validate", str(SAMPLE)], capture_output=True, text=True)
    bad = subprocess.run(
        [script, "validate", str(DATA / "hostile_dotdot.csv")], capture_output=True, text=True
    )
    unreadable = subprocess.run(
        [script, "validate", str(tmp_path / "missing.csv")], capture_output=True, text=True
    )
    assert (good.returncode, bad.returncode, unreadable.returncode) == (0, 1, 2)
    assert good.stdout.startswith("valid: ")
    assert bad.stderr.splitlines()[0].startswith("row 2, column source_video_id: ")
    assert "Traceback" not in good.stderr + bad.stderr + unreadable.stderr
