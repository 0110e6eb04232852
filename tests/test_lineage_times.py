"""The lineage table's times are `datetime64[ns, UTC]` columns, missing ones NaT; the server's
raw unix seconds stay in the Video record the ledger keeps. Its text is pandas' own `str`."""

from __future__ import annotations

import hashlib
import io
import json
from math import nan
from pathlib import Path

import pandas as pd
import pytest

from remix_pipeline.console import _emit
from remix_pipeline.contract import Video
from remix_pipeline.definitions.metadata import column_schema
from remix_pipeline.ledger import Ledger
from remix_pipeline.lineage import (
    COLUMN_DESCRIPTIONS,
    TIME_COLUMNS,
    build_lineage_frame,
    read_lineage,
    trace,
    write_parquet_atomically,
)
from remix_pipeline.previews import variant_matrix_markdown
from remix_pipeline.report import render_report
from remix_pipeline.request_table import VariantRequest, variant_key

UTC_NS = "datetime64[ns, UTC]"
SOURCE = "video_src_harbor"
CREATED, COMPLETED, EXPIRES = 1_700_000_000, 1_700_000_060, 1_700_003_660
SUBMITTED = 1_700_000_000.123456


def request(prompt: str, row: int) -> VariantRequest:
    return VariantRequest(
        key=variant_key(SOURCE, prompt, 1),
        source_video_id=SOURCE,
        prompt=prompt,
        prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
        variant=f"v{row}",
        experiment="t",
        replicate=1,
        row_number=row,
    )


def video(video_id: str, status: str, **times: int | None) -> Video:
    return Video.model_validate(
        {
            "id": video_id,
            "model": "sora-2",
            "status": status,
            "progress": 100 if status == "completed" else 10,
            "created_at": CREATED,
            "completed_at": None,
            "expires_at": None,
            "prompt": "p",
            "size": "720x1280",
            "seconds": "4",
            "remixed_from_video_id": SOURCE,
            "error": None,
            **times,
        }
    )


@pytest.fixture
def ledger(tmp_path: Path):
    """Row 1 completed, row 2 still running (no completion, no expiry), row 3 only an
    intent (no video at all)."""
    completed, running, intent = request("done", 1), request("running", 2), request("intent", 3)
    with Ledger.for_path(tmp_path / "ledger.db") as opened:
        opened.record_intents([completed, running, intent], table_hash="c" * 64, run_id="r", now=1)
        opened.mark_submitted(
            completed.key,
            1,
            video("video_done", "completed", completed_at=COMPLETED, expires_at=EXPIRES),
            now=SUBMITTED,
        )
        opened.mark_submitted(running.key, 1, video("video_running", "in_progress"), now=SUBMITTED)
        yield opened


def test_the_four_times_are_utc_datetime_columns_with_nat_where_unknown(ledger: Ledger):
    frame = build_lineage_frame(ledger)

    assert {c: str(frame[c].dtype) for c in TIME_COLUMNS} == dict.fromkeys(TIME_COLUMNS, UTC_NS)
    done, running, intent = (frame.iloc[i] for i in range(3))
    assert done["created_at"] == pd.Timestamp("2023-11-14T22:13:20Z")
    assert done["completed_at"] == pd.Timestamp("2023-11-14T22:14:20Z")
    assert done["expires_at"] == pd.Timestamp("2023-11-14T23:14:20Z")
    assert done["submitted_at"] == pd.Timestamp("2023-11-14T22:13:20.123456Z")
    assert running["completed_at"] is pd.NaT and running["expires_at"] is pd.NaT
    assert all(intent[c] is pd.NaT for c in TIME_COLUMNS)


def test_text_columns_are_pandas_str_with_nan_where_unknown(ledger: Ledger):
    frame = build_lineage_frame(ledger)

    text = ["key", "prompt", "video_id", "model", "error_code", "video_path"]
    assert {c: frame[c].dtype for c in text} == dict.fromkeys(text, pd.StringDtype(na_value=nan))
    assert list(frame["video_id"].iloc[:2]) == ["video_done", "video_running"]
    missing = frame["video_id"].iloc[2]
    assert pd.isna(missing) and missing is not pd.NA


def test_the_raw_unix_seconds_stay_in_the_ledgers_video_record(ledger: Ledger):
    build_lineage_frame(ledger)

    done = ledger.latest([request("done", 1).key])[request("done", 1).key]

    assert done.video is not None
    assert (done.video["created_at"], done.video["completed_at"]) == (CREATED, COMPLETED)
    assert done.submitted_at == SUBMITTED


def test_an_empty_lineage_has_the_same_time_dtypes(tmp_path: Path):
    with Ledger.for_path(tmp_path / "empty.db") as empty:
        frame = build_lineage_frame(empty)

    assert len(frame) == 0
    assert all(str(frame[c].dtype) == UTC_NS for c in TIME_COLUMNS)


def test_parquet_round_trip_keeps_the_time_dtypes_and_values(ledger: Ledger, tmp_path: Path):
    frame = build_lineage_frame(ledger)

    path = write_parquet_atomically(frame, str(tmp_path / "out" / "lineage.parquet"))
    back = read_lineage(path)

    assert all(str(back[c].dtype) == UTC_NS for c in TIME_COLUMNS)
    pd.testing.assert_frame_equal(back[list(TIME_COLUMNS)], frame[list(TIME_COLUMNS)])


def test_the_ui_column_schema_shows_the_time_dtype_and_a_description(ledger: Ledger):
    frame = build_lineage_frame(ledger)

    schema = {column.name: column for column in column_schema(frame).columns}

    for name in TIME_COLUMNS:
        assert schema[name].type == UTC_NS
        assert "UTC" in (COLUMN_DESCRIPTIONS[name] or "")


def test_trace_report_and_matrix_read_a_lineage_with_times(ledger: Ledger, tmp_path: Path):
    frame = read_lineage(
        write_parquet_atomically(build_lineage_frame(ledger), str(tmp_path / "l.parquet"))
    )

    chain = trace(frame, "video_done")
    page = render_report(frame, tmp_path, title="t")
    matrix = variant_matrix_markdown(frame)

    assert [step["video_id"] for step in chain] == ["video_done", SOURCE]
    assert chain[0]["created_at"] == pd.Timestamp(CREATED, unit="s", tz="UTC")
    assert "video_done" in page and "video_running" in page
    assert "**completed** · " in matrix and "`video_done`" in matrix


def test_lineage_json_and_csv_write_iso_8601_utc_strings_and_nothing_for_nat(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
):
    frame = build_lineage_frame(ledger)

    _emit(frame, "json", [])
    done, running, intent = json.loads(capsys.readouterr().out)
    _emit(frame, "csv", [])
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)

    assert (done["created_at"], done["completed_at"], done["expires_at"]) == (
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:14:20Z",
        "2023-11-14T23:14:20Z",
    )
    assert done["submitted_at"] == running["submitted_at"] == "2023-11-14T22:13:20.123456Z"
    assert (running["completed_at"], running["expires_at"]) == (None, None)
    assert [intent[c] for c in TIME_COLUMNS] == [None] * 4
    assert table["created_at"].tolist() == ["2023-11-14T22:13:20Z"] * 2 + [""]
    assert table["submitted_at"][0] == "2023-11-14T22:13:20.123456Z"
    parsed = pd.to_datetime(table["submitted_at"], utc=True, format="ISO8601")
    assert parsed.astype(UTC_NS).tolist() == frame["submitted_at"].tolist()
