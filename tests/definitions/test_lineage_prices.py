"""The lineage cost column uses the experiment's price table, the one its estimate used."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.lineage import build_lineage_frame, read_lineage

PRICES = {"sora-2": {"*": 0.37}}


def submission_estimate(instance: dg.DagsterInstance, settings: ExperimentSettings) -> float:
    """The batch estimate the submissions step recorded before its fan-out."""
    records = instance.fetch_observations(ExperimentSession(settings).keys.submissions, limit=50)
    totals = [
        r.asset_observation.metadata["estimated_cost_usd"].value
        for r in records.records
        if r.asset_observation and "estimate_variants" in r.asset_observation.metadata
    ]
    assert totals, "no estimate was recorded"
    return float(totals[0])


def test_lineage_cost_agrees_with_the_estimate_when_prices_are_overridden(
    project: Path, instance: dg.DagsterInstance
) -> None:
    settings = ExperimentSettings(
        name="t", table=str(project / "data" / "requests.csv"), prices=PRICES
    )

    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)

    frame = read_lineage(summary.lineage_path)
    assert summary.finished and len(frame) == 4
    seconds = frame["seconds"].astype(float)
    assert frame["estimated_cost_usd"].tolist() == pytest.approx((seconds * 0.37).tolist())
    assert frame["estimated_cost_usd"].sum() == pytest.approx(
        submission_estimate(instance, settings)
    )


def test_build_lineage_frame_without_prices_keeps_the_default_rates(
    project: Path, instance: dg.DagsterInstance
) -> None:
    settings = ExperimentSettings(
        name="t", table=str(project / "data" / "requests.csv"), prices=PRICES
    )
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    ledger = ExperimentSession(settings).ledger()

    default = build_lineage_frame(ledger)
    priced = build_lineage_frame(ledger, prices=settings.price_table())

    seconds = default["seconds"].astype(float)
    assert default["estimated_cost_usd"].tolist() == pytest.approx((seconds * 0.10).tolist())
    assert priced["estimated_cost_usd"].tolist() == pytest.approx((seconds * 0.37).tolist())


def test_videos_materializations_are_priced_with_the_experiments_table(
    project: Path, instance: dg.DagsterInstance
) -> None:
    """The cost on a `videos` materialization is the lineage's, not the default rate's
    (an 8 s sora-2 video showed $0.80 there and $2.96 in the lineage)."""
    settings = ExperimentSettings(
        name="t", table=str(project / "data" / "requests.csv"), prices=PRICES
    )
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)

    records = instance.fetch_materializations(dg.AssetKey(["t", "videos"]), limit=50).records
    per_second = [
        r.asset_materialization.metadata["estimated_cost_usd"].value
        / float(r.asset_materialization.metadata["video"].value["seconds"])
        for r in records
        if r.asset_materialization is not None
    ]
    assert len(records) == 4
    assert per_second == pytest.approx([0.37] * 4)
