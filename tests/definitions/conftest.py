"""Fixtures for the Dagster layer: a project-local state home, a fast embedded service and a
persistent Dagster instance, all in a temporary directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from remix_pipeline.experiment import ExperimentSettings

FAST_SERVICE = {"queued_seconds": 0.05, "run_seconds": 0.3, "poll_after_ms": 50}

TABLE_HEADER = "source_video_id,variant,prompt,experiment,replicates\n"
SAMPLE_ROWS = [
    "video_src_harbor,noir,Re-grade as 1940s film noir,t,1",
    "video_src_harbor,anime,Restyle as hand-drawn anime,t,2",
    "video_src_forest,noir,Re-grade as 1940s film noir,t,1",
]


def write_table(path: Path, rows: list[str]) -> Path:
    path.write_text(TABLE_HEADER + "".join(f"{row}\n" for row in rows))
    return path


def write_service_settings(home: Path, **overrides: object) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "service.json").write_text(json.dumps({**FAST_SERVICE, **overrides}))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with its own state home, service settings and sample table."""
    home = tmp_path / ".remix-pipeline"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMIX_PIPELINE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (home / "dagster_home").mkdir(parents=True)
    (home / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    write_service_settings(home)
    (tmp_path / "data").mkdir()
    write_table(tmp_path / "data" / "requests.csv", SAMPLE_ROWS)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> ExperimentSettings:
    return ExperimentSettings(name="t", table=str(project / "data" / "requests.csv"))


@pytest.fixture
def instance(project: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as persistent:
        yield persistent


def remix_jobs(project: Path) -> list[tuple[str, str]]:
    """(source, prompt) of every remix job the embedded service holds, counted at the source."""
    import sqlite3

    with sqlite3.connect(project / ".remix-pipeline" / "service.db") as db:
        rows = db.execute(
            "SELECT remixed_from_video_id, prompt FROM videos WHERE kind = 'remix' ORDER BY seq"
        ).fetchall()
    return [(str(source), str(prompt)) for source, prompt in rows]
