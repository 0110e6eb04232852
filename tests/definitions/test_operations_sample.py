"""The second sample (data/operations.csv: create, edit, extend and a chain across them) run
headless on the embedded service, as the README runs it."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import dagster as dg

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.lineage import read_lineage

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "operations.csv"


def test_the_operations_sample_completes_once_each_with_every_check_passing(
    project: Path, instance: dg.DagsterInstance
):
    table = project / "data" / "operations.csv"
    shutil.copy(SAMPLE, table)
    settings = ExperimentSettings(name="operations", table=str(table))
    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)

    assert summary.finished and summary.unresolved == []
    assert summary.checks and all(summary.checks.values()), summary.checks
    frame = read_lineage(summary.lineage_path)
    assert set(frame["state"]) == {"completed"}
    assert Counter(frame["operation"]) == {"create": 1, "edit": 2, "extend": 2, "remix": 1}
    created = frame[frame["operation"] == "create"]
    assert created["source_video_id"].isna().all()
    with sqlite3.connect(project / ".remix-pipeline" / "service.db") as db:
        kinds = Counter(
            kind for (kind,) in db.execute("SELECT kind FROM videos WHERE kind != 'catalogue'")
        )
    assert kinds == {"create": 1, "edit": 2, "extension": 2, "remix": 1}  # one job each
