"""What `remix-pipeline lineage` and the summary of `run` print: every id, key and path whole.

The command runs for real in a subprocess, its stdout a pipe (as under CI, in a log or piped
to grep) or a pseudo-terminal, against a lineage Parquet built by the lineage module from a
real ledger. Ids come in the shapes servers use: 38 characters from the embedded service and
OpenAI, 300 from some gateways (which also makes the key of a variant remixed from such a
video 300 characters long).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from rich.console import Console

from remix_pipeline.console import _print_summary
from remix_pipeline.contract import Video
from remix_pipeline.ledger import Ledger, MediaRecord
from remix_pipeline.lineage import build_lineage_frame, write_parquet_atomically
from remix_pipeline.request_table import VariantRequest, variant_key

REMIX_PIPELINE = Path(sys.executable).parent / "remix-pipeline"
ELLIPSIS = "…"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# Detection of a terminal must come from the file descriptor alone.
TERMINAL_OVERRIDES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS")


def video_id(seed: str, length: int = 38) -> str:
    digits = ""
    while len(digits) < length - len("video_"):
        digits += hashlib.sha256(f"{seed}{len(digits)}".encode()).hexdigest()
    return "video_" + digits[: length - len("video_")]


SHORT_ID = video_id("storm")  # 38 characters
LONG_ID = video_id("gateway", 300)
CHAINED_ID = video_id("chained")
SOURCE = "video_src_harbor"


def request(source: str, prompt: str, variant: str, row: int) -> VariantRequest:
    return VariantRequest(
        key=variant_key(source, prompt, 1),
        source_video_id=source,
        prompt=prompt,
        prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
        variant=variant,
        experiment="t",
        replicate=1,
        row_number=row,
    )


def completed(vid: str, source: str, prompt: str) -> Video:
    return Video.model_validate(
        {
            "id": vid,
            "model": "sora-2",
            "status": "completed",
            "progress": 100,
            "created_at": 1_700_000_000,
            "completed_at": 1_700_000_060,
            "expires_at": 1_700_003_660,
            "prompt": prompt,
            "size": "720x1280",
            "seconds": "4",
            "remixed_from_video_id": source,
            "error": None,
        }
    )


def build_frame(where: Path) -> pd.DataFrame:
    """Three variants: a 38-character id, a 300-character id, and a remix of the latter
    (so its source id and its key are 300 characters and more)."""
    rows = [
        (request(SOURCE, "Turn the harbor into a storm", "storm", 1), SHORT_ID),
        (request(SOURCE, "Through a gateway", "gateway", 2), LONG_ID),
        (request(LONG_ID, "And once more", "chained", 3), CHAINED_ID),
    ]
    media_root = where / "media" / ("deep" * 20)
    with Ledger.for_path(where / "ledger.db") as ledger:
        ledger.record_intents([r for r, _ in rows], table_hash="c" * 64, run_id="r1", now=1.7e9)
        for req, vid in rows:
            ledger.mark_submitted(
                req.key, 1, completed(vid, req.source_video_id, req.prompt), now=1.7e9 + 0.25
            )
            ledger.record_media(
                [
                    MediaRecord(
                        key=req.key,
                        attempt=1,
                        variant="video",
                        path=str(media_root / req.key / "video.mp4"),
                        sha256="d" * 64,
                        size_bytes=1,
                    )
                ]
            )
        return build_lineage_frame(ledger)


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    where = tmp_path_factory.mktemp("lineage")
    frame = build_frame(where)
    path = write_parquet_atomically(frame, str(where / "lineage.parquet"))
    return Path(path), frame


def environment(columns: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_OVERRIDES}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return env


def piped(path: Path, *args: str, columns: int | None = None) -> str:
    ran = subprocess.run(
        [str(REMIX_PIPELINE), "lineage", "--path", str(path), *args],
        env=environment(columns),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stderr == ""
    return ran.stdout


def on_terminal(path: Path, *args: str, columns: int) -> str:
    """The command with a pseudo-terminal as stdout, as a person at a terminal sees it."""
    leader, follower = pty.openpty()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [str(REMIX_PIPELINE), "lineage", "--path", str(path), *args],
            env={**environment(columns), "TERM": "xterm-256color"},
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=errors,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert process.wait(timeout=120) == 0, errors.seek(0) or errors.read()
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return ANSI.sub("", text).replace("\r\n", "\n")


def whole(text: str) -> set[str]:
    """The words of `text`, split on whitespace and table rules only."""
    return set(re.split(r"[\s│┃|]+", text))


def test_piped_table_shows_every_id_key_and_source_whole_one_line_per_attempt(lineage):
    path, frame = lineage

    out = piped(path)

    assert ELLIPSIS not in out
    lines = out.splitlines()
    for row in frame.itertuples():
        (line,) = [line for line in lines if line.split()[0] == row.key]
        assert {row.source_video_id, row.video_id} <= whole(line)


def test_piped_table_is_plain_columns_at_any_terminal_width(lineage):
    path, frame = lineage

    narrow, wide = piped(path, columns=40), piped(path, columns=500)

    assert narrow == wide
    header, *rows = narrow.splitlines()
    assert header.split()[:3] == ["key", "source_video_id", "variant"]
    assert len(rows) == len(frame)
    assert LONG_ID in whole(narrow) and max(map(len, narrow.splitlines())) > 600


def test_piped_trace_shows_the_whole_chain_with_whole_ids(lineage):
    path, _ = lineage

    out = piped(path, "--trace", CHAINED_ID, columns=40)

    assert ELLIPSIS not in out
    words = whole(out)
    assert {CHAINED_ID, LONG_ID, SOURCE} <= words
    assert [line.split()[0] for line in out.splitlines()[1:]] == [CHAINED_ID, LONG_ID, SOURCE]


def test_json_and_csv_output_carry_times_as_iso_8601_utc(lineage):
    path, frame = lineage

    records = json.loads(piped(path, "--format", "json"))
    table = pd.read_csv(io.StringIO(piped(path, "--format", "csv")), dtype=str)

    for listed in (records, table.to_dict("records")):
        assert [r["created_at"] for r in listed] == ["2023-11-14T22:13:20Z"] * 3
        assert [r["expires_at"] for r in listed] == ["2023-11-14T23:14:20Z"] * 3
        assert [r["submitted_at"] for r in listed] == ["2023-11-14T22:13:20.250000Z"] * 3
    assert [r["video_id"] for r in records] == frame["video_id"].tolist()


def test_terminal_table_keeps_a_300_character_id_whole_at_40_columns(lineage):
    path, frame = lineage

    out = on_terminal(path, columns=40)

    assert ELLIPSIS not in out
    for value in (*frame["video_id"], *frame["key"], *frame["source_video_id"]):
        assert value in out


def test_terminal_trace_keeps_ids_whole_at_40_columns(lineage):
    path, _ = lineage

    out = on_terminal(path, "--trace", CHAINED_ID, columns=40)

    assert ELLIPSIS not in out
    for value in (CHAINED_ID, LONG_ID, SOURCE):
        assert value in out


def test_terminal_table_that_fits_is_a_table_with_whole_ids(tmp_path):
    frame = build_frame(tmp_path).iloc[:1]
    path = write_parquet_atomically(frame, str(tmp_path / "lineage.parquet"))

    out = on_terminal(Path(path), columns=160)

    assert ELLIPSIS not in out
    assert "┃" in out
    assert {SHORT_ID, frame["key"][0], SOURCE} <= whole(out)


def summary_text(path: Path, console: Console) -> str:
    summary = SimpleNamespace(lineage_path=str(path), checks={"every_variant": True})
    _print_summary(console, summary)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.mark.parametrize(
    ("terminal", "width"), [(False, 80), (False, 40), (True, 40), (True, 120), (True, 400)]
)
def test_run_summary_shows_every_id_and_the_lineage_path_whole(lineage, terminal, width):
    path, frame = lineage
    console = Console(
        file=io.StringIO(), force_terminal=terminal, width=width, soft_wrap=True, no_color=True
    )

    out = ANSI.sub("", summary_text(path, console))

    assert ELLIPSIS not in out
    for value in (*frame["video_id"], *frame["source_video_id"]):
        assert value in out
    assert f"lineage table: {path}" in out.splitlines()
