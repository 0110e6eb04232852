"""The refresh schedule retries variants that failed for a retryable reason."""

from __future__ import annotations

import time
import warnings

import dagster as dg

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.definitions.keys import RETRY_FAILED_TAG
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.lineage import read_lineage
from tests.support.projects import write_service_settings


def test_refresh_retries_failed_generations_and_the_lineage_keeps_every_attempt(
    project, settings, instance
):
    write_service_settings(project / ".remix-pipeline", faults={"failure_rate": 1.0})
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=60)
    write_service_settings(project / ".remix-pipeline")
    scheduled = ExperimentSettings(**{**settings.model_dump(), "refresh_cron": "0 * * * *"})
    runner = HeadlessRunner(scheduled, instance, poll_seconds=0.1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedule = runner.defs.get_schedule_def("t_refresh")
        (request,) = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance)
        ).run_requests
    assert request.tags[RETRY_FAILED_TAG] == "true"
    runner.execute(list(request.asset_selection or []), dict(request.tags))
    summary = runner.run(timeout_seconds=60)

    frame = read_lineage(summary.lineage_path)
    assert len(frame) == 8  # four variants, two attempts each
    first, second = frame[frame["attempt"] == 1], frame[frame["attempt"] == 2]
    assert set(first["error_code"]) == {"generation_failed"}
    assert set(second["state"]) == {"completed"}


def test_refresh_skips_when_every_variant_has_a_final_outcome(project, settings, instance):
    write_service_settings(project / ".remix-pipeline", faults={"moderation_terms": ["noir"]})
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=60)
    scheduled = ExperimentSettings(**{**settings.model_dump(), "refresh_cron": "0 * * * *"})
    runner = HeadlessRunner(scheduled, instance)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = runner.defs.get_schedule_def("t_refresh").evaluate_tick(
            dg.build_schedule_context(instance=instance)
        )

    assert data.run_requests == []  # moderation failures are not paid for again


def _refresh_requests(runner: HeadlessRunner, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedule = runner.defs.get_schedule_def("t_refresh")
        return list(
            schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests
        )


def test_refresh_re_remixes_videos_whose_media_expired_before_download_only_when_asked(
    project, settings, instance
):
    write_service_settings(project / ".remix-pipeline", expires_after_seconds=1)
    scheduled = settings.model_copy(update={"refresh_cron": "0 * * * *"})
    runner = HeadlessRunner(scheduled, instance, poll_seconds=0.1)
    runner.last_media_run = time.monotonic()  # no download before the media expire
    runner.evaluate_sensor("t_fanout_sensor")
    ledger = runner.session.ledger()
    while not all(a.is_terminal for a in ledger.latest().values()):
        runner.evaluate_sensor("t_completion_sensor")
        time.sleep(0.1)
    time.sleep(2.1)  # past every expires_at (whole seconds after completion)

    unasked = _refresh_requests(runner, instance)
    # The retries' media must outlive their download, however slow the machine: only the
    # first attempts were meant to expire (their expires_at is already fixed on the server).
    write_service_settings(project / ".remix-pipeline", expires_after_seconds=600)
    asking = HeadlessRunner(
        scheduled.model_copy(update={"reremix_expired_media": True}), instance, poll_seconds=0.1
    )
    (request,) = _refresh_requests(asking, instance)
    asking.execute(list(request.asset_selection or []), dict(request.tags))
    summary = asking.run(timeout_seconds=60)

    assert unasked == []
    frame = read_lineage(summary.lineage_path)
    assert len(frame) == 8  # four variants, two attempts each
    first, second = frame[frame["attempt"] == 1], frame[frame["attempt"] == 2]
    assert set(first["state"]) == set(second["state"]) == {"completed"}
    assert first["video_path"].isna().all()  # expired before it could be fetched
    assert second["video_path"].notna().all()
    assert ((second["expires_at"] - second["completed_at"]).dt.total_seconds() > 60).all()
