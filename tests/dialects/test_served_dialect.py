"""The pipeline against `remix-pipeline serve --dialect litellm` in another process, with a
bearer key, configured only through OPENAI_BASE_URL and OPENAI_API_KEY, as a user points it
at a LiteLLM gateway: it completes, and each kind of deviation is warned about once."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pandas as pd
import pytest

from remix_pipeline.service.dialects import decode_litellm_id
from tests.support.servers import CommandRun, Served, run_against, served_process

TABLE = """\
source_video_id,variant,prompt
video_src_harbor,storm,Turn the dawn harbor into a thunderstorm
video_src_forest,fog,Fill the forest with low morning fog
video_src_city,retro,Restyle the scene as 1970s film
"""
DEVIATION = re.compile(r"deviates from the Videos API contract: (?P<kind>[^;]+); e\.g\.")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    where = tmp_path_factory.mktemp("server")
    with served_process(where, "--dialect", "litellm", key=f"sk-marker-{uuid.uuid4().hex}") as s:
        yield s


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, served: Served) -> CommandRun:
    """`remix-pipeline run` in a fresh project, told about the server by the two variables."""
    ran = run_against(served, tmp_path_factory.mktemp("project"), TABLE)
    assert ran.result.returncode == 0, ran.output[-6000:]
    return ran


def test_run_against_the_litellm_dialect_completes_every_variant(ran: CommandRun, served: Served):
    lineage = pd.read_parquet(ran.project / "data/output/sample/lineage.parquet")
    assert len(lineage) == 3
    assert set(lineage["state"]) == {"completed"}
    assert (lineage["remixed_from_video_id"] == lineage["source_video_id"]).all()
    assert lineage["video_sha256"].notna().all()
    # The lineage keeps the gateway's own (re-encoded) ids, which the gateway answers for.
    assert all(decode_litellm_id(v) != v for v in lineage["video_id"])
    with httpx.Client(headers={"Authorization": f"Bearer {served.key}"}) as http:
        for video_id in lineage["video_id"]:
            answer = http.get(f"{served.base_url}/videos/{quote(video_id, safe='')}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["id"] == video_id


def test_each_deviation_kind_is_warned_about_once(ran: CommandRun, served: Served):
    kinds = Counter(m["kind"] for m in DEVIATION.finditer(ran.result.stderr))

    assert {k for k in kinds if k.startswith(("keys outside", "Video objects without"))} == {
        "keys outside the contract (ignored)",
        "Video objects without some optional keys (read as null)",
    }
    assert set(kinds.values()) == {1}, kinds
    assert served.base_url in ran.result.stderr


def test_every_media_file_is_what_its_name_says(ran: CommandRun):
    """Through LiteLLM, `thumbnail` and `spritesheet` come back as the MP4 (video/mp4): a file
    named thumbnail.webp must still hold a WebP, and spritesheet.jpg a JPEG."""
    media = sorted(
        p for p in (ran.project / "data/output/sample/media").rglob("*.*") if p.is_file()
    )
    assert {p.name for p in media} >= {"video.mp4", "thumbnail.webp", "spritesheet.jpg"}
    for path in media:
        head = path.read_bytes()[:12]
        if path.suffix == ".mp4":
            assert head[4:8] == b"ftyp", path
        elif path.suffix == ".webp":
            assert head[:4] == b"RIFF" and head[8:12] == b"WEBP", path
        elif path.suffix == ".jpg":
            assert head[:3] == b"\xff\xd8\xff", path


def test_the_key_is_in_no_output_of_the_run(ran: CommandRun, served: Served):
    assert served.key not in ran.result.stdout + ran.result.stderr
