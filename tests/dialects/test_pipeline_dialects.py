"""The whole pipeline (`remix-pipeline run`'s engine) against the service in each dialect."""

from __future__ import annotations

import dagster as dg
import pytest

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.lineage import read_lineage
from tests.support.jobs import remix_jobs
from tests.support.projects import write_service_settings


@pytest.mark.parametrize("dialect", ["litellm", "sglang", "no-list"])
def test_run_completes_every_variant_against_a_deviating_server(
    project, settings, instance, dialect
):
    write_service_settings(project / ".remix-pipeline", dialect=dialect)

    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)

    assert summary.finished
    frame = read_lineage(summary.lineage_path)
    assert len(frame) == 4
    assert set(frame["status"]) == {"completed"}
    assert (frame["remixed_from_video_id"] == frame["source_video_id"]).all()
    assert frame["video_sha256"].notna().all()
    assert len(remix_jobs(project)) == 4


def test_a_server_without_remix_fails_before_any_job_with_a_clear_message(
    project, settings, instance
):
    write_service_settings(project / ".remix-pipeline", dialect="vllm")

    with pytest.raises(dg.DagsterError, match="has no remix operation"):
        HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=60)

    assert remix_jobs(project) == []
