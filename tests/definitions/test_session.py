"""One session per experiment and process: one server, one price table, one ledger engine."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from remix_pipeline.client import EMBEDDED_SERVER
from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.ledger import engine as ledger_engine
from remix_pipeline.manifest import build_manifest
from remix_pipeline.planning import listing_grace_seconds
from tests.support.projects import write_table

VARIANTS = 300


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Ledger engines created from here on, by URL."""
    created: Counter[str] = Counter()
    build = ledger_engine.build_engine

    def counting(parsed):  # type: ignore[no-untyped-def]
        created[str(parsed)] += 1
        return build(parsed)

    monkeypatch.setattr(ledger_engine, "build_engine", counting)
    return created


def test_a_headless_run_of_a_large_table_opens_one_ledger_engine(
    project: Path, instance: dg.DagsterInstance, engines: Counter[str]
) -> None:
    rows = [f"video_src_harbor,v{i},Variant number {i},t,1" for i in range(VARIANTS)]
    table = write_table(project / "data" / "requests.csv", rows)
    settings = ExperimentSettings(name="t", table=str(table))

    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=300)

    assert summary.finished and summary.progress.completed == VARIANTS
    assert list(engines.values()) == [1]


def test_sessions_of_one_process_share_the_ledger_of_a_url(
    settings: ExperimentSettings, engines: Counter[str]
) -> None:
    first, second = ExperimentSession(settings), ExperimentSession(settings)

    assert first.ledger() is second.ledger()
    assert list(engines.values()) == [1]


def test_a_closed_session_reopens_its_ledger_on_next_use(settings: ExperimentSettings) -> None:
    session = ExperimentSession(settings)
    session.ledger().latest()
    session.close()

    assert session.ledger().latest() == {}


def test_an_unset_base_url_env_means_embedded_whatever_openai_base_url_says(
    settings: ExperimentSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_VIDEOS_URL", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    mine = settings.model_copy(update={"base_url_env": "MY_VIDEOS_URL"})
    session = ExperimentSession(mine)

    async def base_url(client):  # type: ignore[no-untyped-def]
        return client.server_label

    manifest = build_manifest(mine, pd.DataFrame(), table_hash="h", run_id=None)
    assert mine.server_label() == session.server.label == EMBEDDED_SERVER
    assert manifest["server"] == EMBEDDED_SERVER
    assert session.run(base_url) == EMBEDDED_SERVER
    assert session.listing_grace_seconds == listing_grace_seconds(
        exhaustive=True, timeout_seconds=mine.request_timeout_seconds
    )
