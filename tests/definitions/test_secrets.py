"""The API key is used and never kept: not in Dagster's storage, the ledger, the outputs,
the command's output or the definitions' snapshot that the UI shows.

A served Videos API (`remix-pipeline serve`, as a separate process on a loopback port)
requires a marker key; `remix-pipeline run` is pointed at it through OPENAI_BASE_URL and
reads the key from OPENAI_API_KEY, the variable the sample experiment names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest

from tests.support.servers import CommandRun, Served, run_against, served_process

REPO = Path(__file__).resolve().parents[2]
TABLE = """\
source_video_id,variant,prompt
video_src_harbor,storm,Turn the dawn harbor into a thunderstorm
video_src_forest,fog,Fill the forest with low morning fog
video_src_city,retro,Restyle the scene as 1970s film
"""


@pytest.fixture(scope="module")
def marker() -> str:
    return f"sk-marker-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, marker: str) -> Iterator[Served]:
    """The Videos API served over HTTP, requiring the marker key; fast jobs."""
    with served_process(tmp_path_factory.mktemp("server"), key=marker) as served:
        yield served


@pytest.fixture(scope="module")
def headless_run(tmp_path_factory: pytest.TempPathFactory, served: Served) -> CommandRun:
    """`remix-pipeline run` on a 3-row table in a fresh project, against the served API."""
    return run_against(served, tmp_path_factory.mktemp("project"), TABLE)


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def test_served_api_refuses_requests_without_the_key(served: Served) -> None:
    assert httpx.get(f"{served.base_url}/videos").status_code == 401
    authorized = httpx.get(
        f"{served.base_url}/videos", headers={"Authorization": f"Bearer {served.key}"}
    )
    assert authorized.status_code == 200


def test_run_against_the_keyed_server_succeeds(headless_run: CommandRun, served: Served) -> None:
    assert headless_run.result.returncode == 0, headless_run.output
    lineage = pd.read_parquet(headless_run.project / "data/output/sample/lineage.parquet")
    assert len(lineage) == 3
    assert set(lineage["state"]) == {"completed"}
    jobs = httpx.get(
        f"{served.base_url}/videos",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {served.key}"},
    ).json()["data"]
    assert set(lineage["video_id"]) <= {job["id"] for job in jobs}


def test_no_stored_file_holds_the_key(headless_run: CommandRun, served: Served) -> None:
    assert headless_run.result.returncode == 0, headless_run.output
    project = headless_run.project
    stored = {
        "dagster home": project / ".remix-pipeline" / "dagster_home",
        "ledger": project / ".remix-pipeline" / "ledger.db",
        "lineage table": project / "data/output/sample/lineage.parquet",
        "media": project / "data/output/sample/media",
    }
    for what, path in stored.items():
        assert path.exists(), f"{what} not where expected: {path}"
    # The scan reads databases as bytes: a prompt is found in the ledger and the event log.
    with_prompt = _files_holding(project, b"Turn the dawn harbor into a thunderstorm")
    assert stored["ledger"] in with_prompt
    assert any(stored["dagster home"] in path.parents for path in with_prompt)
    assert _files_holding(project, served.key.encode()) == []


def test_command_output_does_not_show_the_key(headless_run: CommandRun, served: Served) -> None:
    assert headless_run.result.returncode == 0, headless_run.output
    assert served.base_url in headless_run.result.stdout
    assert served.key not in headless_run.output


def test_definitions_snapshot_does_not_hold_the_key(
    monkeypatch: pytest.MonkeyPatch, served: Served
) -> None:
    """What the webserver gets from the code location, built with the key in the environment."""
    from dagster._core.code_pointer import load_python_file
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    monkeypatch.setenv("OPENAI_API_KEY", served.key)
    monkeypatch.setenv("OPENAI_BASE_URL", served.base_url)
    module = load_python_file(REPO / "sample/remix_sample/definitions.py", str(REPO))
    repository = module.defs().get_repository_def()
    # Dynamic partitions resolve against the current instance, as in a code server.
    with dg.instance_for_test():
        snapshot = serialize_value(RepositorySnap.from_def(repository))
    assert "sample_fanout_sensor" in snapshot
    assert served.key not in snapshot
