"""The pipeline against `remix-pipeline serve --dialect litellm` in another process, with a
bearer key, configured only through OPENAI_BASE_URL and OPENAI_API_KEY, as a user points it
at a LiteLLM gateway: it completes, and each kind of deviation is warned about once."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from remix_pipeline.service.dialects import decode_litellm_id

from ..served import REMIX_PIPELINE, SERVE_KEY_ENV, Served, served_process

TABLE = """\
source_video_id,variant,prompt
video_src_harbor,storm,Turn the dawn harbor into a thunderstorm
video_src_forest,fog,Fill the forest with low morning fog
video_src_city,retro,Restyle the scene as 1970s film
"""
DEVIATION = re.compile(r"deviates from the Videos API contract: (?P<kind>[^;]+); e\.g\.")


@dataclass
class Ran:
    project: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    where = tmp_path_factory.mktemp("server")
    with served_process(where, "--dialect", "litellm", key=f"sk-marker-{uuid.uuid4().hex}") as s:
        yield s


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, served: Served) -> Ran:
    """`remix-pipeline run` in a fresh project, told about the server by the two variables."""
    project = tmp_path_factory.mktemp("project")
    (project / "data").mkdir()
    (project / "data" / "requests.csv").write_text(TABLE)
    env = {
        **os.environ,
        "OPENAI_BASE_URL": served.base_url,
        "OPENAI_API_KEY": served.key,
        "REMIX_PIPELINE_HOME": str(project / ".remix-pipeline"),
        "COLUMNS": "200",
    }
    for name in ("DAGSTER_HOME", SERVE_KEY_ENV, "REMIX_PIPELINE_LEDGER_URL"):
        env.pop(name, None)
    result = subprocess.run(
        [str(REMIX_PIPELINE), "run", "--table", "data/requests.csv", "--timeout", "240"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Ran(project=project, result=result)


def test_run_against_the_litellm_dialect_completes_every_variant(ran: Ran, served: Served):
    lineage = pd.read_parquet(ran.project / "data/output/sample/lineage.parquet")
    assert len(lineage) == 3
    assert set(lineage["state"]) == {"completed"}
    assert (lineage["remixed_from_video_id"] == lineage["source_video_id"]).all()
    assert lineage["video_sha256"].notna().all()
    listed = httpx.get(
        f"{served.base_url}/videos",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {served.key}"},
    ).json()["data"]
    # The lineage keeps the gateway's own (re-encoded) ids, the ones the server lists.
    assert set(lineage["video_id"]) <= {job["id"] for job in listed}
    assert all(decode_litellm_id(v) != v for v in lineage["video_id"])


def test_each_deviation_kind_is_warned_about_once(ran: Ran, served: Served):
    kinds = Counter(m["kind"] for m in DEVIATION.finditer(ran.result.stderr))

    assert {k for k in kinds if k.startswith(("keys outside", "Video objects without"))} == {
        "keys outside the contract (ignored)",
        "Video objects without some optional keys (read as null)",
    }
    assert set(kinds.values()) == {1}, kinds
    assert served.base_url in ran.result.stderr


def test_the_key_is_in_no_output_of_the_run(ran: Ran, served: Served):
    assert served.key not in ran.result.stdout + ran.result.stderr
