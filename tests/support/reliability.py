"""A temporary project driven through `python -m remix_pipeline.cli run` subprocesses, and the
checks that every reliability case ends with: one job per variant, every variant in the
lineage, media matching their digests, no temporary files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from remix_pipeline.lineage import read_lineage

from .jobs import duplicates, remix_jobs_in
from .projects import write_service_settings, write_table

SOURCES = ("video_src_harbor", "video_src_forest", "video_src_city", "video_src_dunes")


def variant_rows(count: int) -> list[tuple[str, str]]:
    """(source, prompt) of `count` distinct variants spread over the seeded sources."""
    return [(SOURCES[i % len(SOURCES)], f"Variation number {i}") for i in range(count)]


@dataclass
class Project:
    root: Path
    variants: list[tuple[str, str]]
    service_db: Path | None = None  # a served (remote) service's store; None: the embedded one

    @property
    def home(self) -> Path:
        return self.root / ".remix-pipeline"

    @property
    def table(self) -> Path:
        return self.root / "data" / "requests.csv"

    @property
    def output(self) -> Path:
        return self.root / "data" / "output" / "t"

    @property
    def lineage_path(self) -> Path:
        return self.output / "lineage.parquet"

    def write_table(self, extra_lines: list[str] | None = None) -> None:
        lines = [f"{s},v{i},{p},t,1" for i, (s, p) in enumerate(self.variants)]
        write_table(self.table, lines + (extra_lines or []))

    def serve(self, **overrides: object) -> None:
        """Settings of the embedded service every later process of this project runs."""
        write_service_settings(self.home, **overrides)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REMIX_"))}
        env.update(REMIX_PIPELINE_HOME=str(self.home), DAGSTER_HOME=str(self.home / "dagster_home"))
        env.update(extra)
        return env

    def run(self, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "remix_pipeline.cli", "run"]
        command += ["--table", str(self.table), "--name", "t"]
        return subprocess.run(
            command,
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def remix_jobs(self) -> list[tuple[str, str]]:
        """(source, prompt) of every remix job the service holds, counted in its own SQLite."""
        return remix_jobs_in(self.service_db or self.home / "service.db")

    def ledger_rows(self, query: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.home / "ledger.db") as db:
            return db.execute(query).fetchall()

    def lineage(self) -> pd.DataFrame:
        return read_lineage(str(self.lineage_path))

    def temp_files(self) -> list[Path]:
        """Hidden files (download parts, Parquet temps) anywhere under the output folder."""
        if not self.output.exists():
            return []
        return sorted(p for p in self.output.rglob(".*") if p.is_file())


def assert_everything_once(project: Project) -> pd.DataFrame:
    """The promise: one job per variant, every variant completed in the lineage, media whole."""
    jobs = project.remix_jobs()
    assert duplicates(jobs) == 0
    assert sorted(jobs) == sorted(project.variants)
    frame = project.lineage()
    assert len(frame) == len(project.variants)  # one attempt each: nothing was paid twice
    assert set(frame["state"]) == {"completed"}
    assert sorted(zip(frame["source_video_id"], frame["prompt"], strict=True)) == sorted(
        project.variants
    )
    for row in frame.itertuples():
        for variant in ("video", "thumbnail", "spritesheet"):
            path = Path(getattr(row, f"{variant}_path"))
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == getattr(row, f"{variant}_sha256"), path
    assert project.temp_files() == []
    return frame


def video_reports(project: Project) -> Counter[tuple[str, int]]:
    """Materializations of the videos asset per (partition, attempt) in the event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(project.home / "dagster_home")) as instance:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["t", "videos"])), limit=10_000
        ).records
    counts: Counter[tuple[str, int]] = Counter()
    for record in records:
        materialization = record.asset_materialization
        assert materialization is not None and materialization.partition is not None
        counts[(materialization.partition, int(materialization.metadata["attempt"].value))] += 1
    return counts


def sends_per_attempt(project: Project) -> Counter[tuple[str, int]]:
    """POSTs sent per attempt, from the ledger's 'sent' events (each one a paid-call risk)."""
    rows = project.ledger_rows("SELECT key, attempt FROM events WHERE detail = 'sent'")
    return Counter((str(k), int(a)) for k, a in rows)
