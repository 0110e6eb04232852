"""Fixtures for the reliability cases: a temporary project on disk (driven by
`python -m remix_pipeline.cli run` subprocesses), or run in this process by HeadlessRunner.
Its helpers and checks live in `tests/support/reliability.py`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.support.reliability import Project, variant_rows


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    def make(count: int, **service: object) -> Project:
        project = Project(tmp_path, variant_rows(count))
        (project.home / "dagster_home").mkdir(parents=True)
        (project.root / "data").mkdir()
        project.serve(**service)
        project.write_table()
        return project

    return make


@pytest.fixture
def in_process(
    make_project: Callable[..., Project], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pd.DataFrame]:
    """A project run by HeadlessRunner in this process, as `remix-pipeline run` runs it."""
    import dagster as dg

    from remix_pipeline.definitions.headless import HeadlessRunner
    from remix_pipeline.experiment import ExperimentSettings

    def run(
        project: Project, timeout: float = 120, base_url: str | None = None, **settings: object
    ) -> pd.DataFrame:
        """`base_url` points the run at a served service, as OPENAI_BASE_URL does."""
        monkeypatch.chdir(project.root)
        for name, value in project.env().items():
            monkeypatch.setenv(name, value)
        for name in [n for n in os.environ if n.startswith("OPENAI_")]:
            monkeypatch.delenv(name)
        if base_url is not None:
            monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        experiment = ExperimentSettings(name="t", table=str(project.table), **settings)
        with dg.DagsterInstance.get() as instance:
            summary = HeadlessRunner(experiment, instance, poll_seconds=0.1).run(
                timeout_seconds=timeout
            )
        assert summary.finished
        return project.lineage()

    return run
