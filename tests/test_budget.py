"""The batch estimate and the budget guard, on the real embedded service and a real instance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from remix_pipeline.budget import (
    BatchEstimate,
    BudgetExceededError,
    enforce_budget,
    estimate_batch,
)
from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.planning import unpaid_requests
from remix_pipeline.request_table import read_request_table
from tests.support.jobs import remix_jobs
from tests.support.projects import SAMPLE_ROWS, write_table

# harbor and forest: sora-2 1280x720 4 s ($0.40); city: sora-2 8 s ($0.80);
# dunes: sora-2-pro 1280x720 4 s ($1.20).
MIXED_ROWS = [
    "video_src_harbor,noir,Re-grade as film noir,t,3",
    "video_src_forest,noir,Re-grade as film noir,t,1",
    "video_src_city,noir,Re-grade as film noir,t,1",
    "video_src_dunes,noir,Re-grade as film noir,t,2",
]


def requests_of(settings: ExperimentSettings) -> list:
    return list(read_request_table(settings.table_path).requests)


async def estimate(settings: ExperimentSettings, **kwargs: object) -> tuple[BatchEstimate, int]:
    async with VideosClient.from_settings(ClientSettings()) as client:
        result = await estimate_batch(requests_of(settings), client, **kwargs)  # type: ignore[arg-type]
        return result, client.stats.requests["retrieve"]


async def test_estimate_prices_each_variant_by_its_sources_model_size_and_seconds(settings):
    write_table(settings.table_path, MIXED_ROWS)

    result, _ = await estimate(settings)

    assert result.variants == 7
    assert result.total_usd == pytest.approx(3 * 0.40 + 0.40 + 0.80 + 2 * 1.20)
    assert result.unpriced_variants == 0


async def test_estimate_retrieves_each_distinct_source_once(settings):
    write_table(settings.table_path, MIXED_ROWS)

    _, retrieves = await estimate(settings)

    assert retrieves == 4


async def test_estimate_uses_configured_price_overrides(settings):
    write_table(settings.table_path, MIXED_ROWS)
    custom = ExperimentSettings(
        name="t", table=str(settings.table_path), prices={"sora-2": {"*": 1.0}}
    )

    result, _ = await estimate(settings, prices=custom.price_table())

    # sora-2 now $1/s; sora-2-pro keeps its default $0.30/s at 720p.
    assert result.total_usd == pytest.approx(3 * 4.0 + 4.0 + 8.0 + 2 * 1.20)


async def test_a_source_the_server_does_not_know_is_counted_unpriced(settings):
    write_table(settings.table_path, ["video_src_nowhere,a,Anything,t,2", MIXED_ROWS[1]])

    result, _ = await estimate(settings)

    assert result.unpriced_variants == 2
    assert result.total_usd == pytest.approx(0.40)
    assert "could not be priced" in result.describe()


def test_enforce_budget_refuses_an_estimate_over_the_budget_naming_both():
    over = BatchEstimate(variants=3, total_usd=1.2)

    with pytest.raises(BudgetExceededError) as caught:
        enforce_budget(over, 1.0)

    assert "$1.20" in str(caught.value)
    assert "max_cost_usd=$1.00" in str(caught.value)


def test_enforce_budget_accepts_an_estimate_at_the_budget_or_without_one():
    enforce_budget(BatchEstimate(variants=3, total_usd=1.2), 1.2)
    enforce_budget(BatchEstimate(variants=3, total_usd=99.0), None)


def test_submissions_step_over_budget_fails_and_sends_no_remix_request(project, settings, instance):
    # Four variants at $0.40 each: $1.60 against a $1.00 budget.
    limited = settings.model_copy(update={"max_cost_usd": 1.0})
    runner = HeadlessRunner(limited, instance, poll_seconds=0.1)

    with pytest.raises(dg.DagsterError) as caught:
        runner.run(timeout_seconds=30)

    assert "$1.60" in str(caught.value)
    assert "max_cost_usd=$1.00" in str(caught.value)
    assert remix_jobs(project) == []
    assert ExperimentSession(limited).ledger().latest() == {}


def test_submissions_records_the_estimate_before_fan_out(project, settings, instance):
    limited = settings.model_copy(update={"max_cost_usd": 1.0})
    with pytest.raises(dg.DagsterError):
        HeadlessRunner(limited, instance, poll_seconds=0.1).run(timeout_seconds=30)

    records = instance.fetch_observations(dg.AssetKey(["t", "submissions"]), limit=10).records
    recorded = [r.asset_observation.metadata for r in records if r.asset_observation]
    estimates = [m for m in recorded if "estimated_cost_usd" in m]
    assert estimates, "no estimate observation was recorded"
    assert estimates[0]["estimated_cost_usd"].value == pytest.approx(1.60)
    assert estimates[0]["max_cost_usd"].value == pytest.approx(1.0)


def test_submissions_within_budget_submits_the_batch(project, settings, instance):
    within = settings.model_copy(update={"max_cost_usd": 1.60})

    summary = HeadlessRunner(within, instance, poll_seconds=0.1).run(timeout_seconds=120)

    assert summary.finished
    assert len(remix_jobs(project)) == 4


def test_unpaid_requests_leave_out_variants_the_ledger_already_holds(project, settings, instance):
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    write_table(settings.table_path, [*SAMPLE_ROWS, "video_src_city,x,Something new,t,1"])
    ledger = ExperimentSession(settings).ledger()

    pending = unpaid_requests(requests_of(settings), ledger)

    assert [(r.source_video_id, r.prompt) for r in pending] == [("video_src_city", "Something new")]


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remix_pipeline.cli", "run", "--name", "t", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_command_over_budget_exits_1_with_the_message_and_no_traceback(project):
    result = run_cli(project, "--max-cost-usd", "0.5")

    assert result.returncode == 1
    assert "estimated cost $1.60 for 4 new variants (budget $0.50)" in result.stdout
    assert "exceeds the budget max_cost_usd=$0.50" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert remix_jobs(project) == []


async def test_every_operation_is_priced_by_what_it_makes(settings):
    settings.table_path.write_text(
        "operation,source_video_id,variant,source_variant,prompt,seconds,size,model\n"
        "create,,made,,A lighthouse,8,,\n"  # sora-2, 8 s: $0.80
        "create,,pro,,A pro lighthouse,4,1280x720,sora-2-pro\n"  # 4 s at $0.30: $1.20
        "extend,,longer,pro,The storm,8,,\n"  # adds 8 s to the pro video: $2.40
        "extend,video_src_harbor,tide,,The tide,4,,\n"  # adds 4 s at sora-2: $0.40
        "edit,video_src_city,sepia,,In sepia,,,\n"  # the city source, 8 s: $0.80
    )

    result, retrieves = await estimate(settings)

    assert result.unpriced_variants == 0
    assert result.total_usd == pytest.approx(0.80 + 1.20 + 2.40 + 0.40 + 0.80)
    assert retrieves == 2
