"""Remix chains end to end: parents first, children on their results, failures passed down."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.lineage import read_lineage, trace
from tests.support.jobs import remix_jobs
from tests.support.projects import write_service_settings

HEADER = "source_video_id,variant,prompt,source_variant\n"


def run(settings: ExperimentSettings, instance: dg.DagsterInstance, *rows: str):
    settings.table_path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    assert summary.finished
    return read_lineage(summary.lineage_path)


def test_three_generations_each_remix_the_previous_result(settings, instance):
    frame = run(
        settings,
        instance,
        "video_src_harbor,noir,Make it noir,",
        "video_src_harbor,rainy,Add heavy rain,noir",
        "video_src_harbor,night,Make it night,rainy",
    )

    by_variant = frame.set_index("variant")
    assert set(frame["state"]) == {"completed"}
    assert by_variant.loc["noir", "source_video_id"] == "video_src_harbor"
    assert by_variant.loc["rainy", "source_video_id"] == by_variant.loc["noir", "video_id"]
    assert by_variant.loc["night", "source_video_id"] == by_variant.loc["rainy", "video_id"]
    chain = trace(frame, by_variant.loc["night", "video_id"])
    assert [step.get("variant") for step in chain] == ["night", "rainy", "noir", None]
    assert chain[-1]["video_id"] == "video_src_harbor"


def test_a_child_of_a_failed_parent_ends_failed_without_a_paid_call(project, settings, instance):
    write_service_settings(project / ".remix-pipeline", faults={"moderation_terms": ["forbidden"]})

    frame = run(
        settings,
        instance,
        "video_src_harbor,bad,Something forbidden,",
        "video_src_harbor,child,Add rain,bad",
    )

    child = frame[frame["variant"] == "child"].iloc[0]
    assert child["state"] == "failed"
    assert child["error_code"] == "parent_failed"
    assert pd.isna(child["video_id"])
    assert [prompt for _, prompt in remix_jobs(project)] == ["Something forbidden"]
