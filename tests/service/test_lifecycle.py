"""Job state is a pure function of the record, the clock and the configured durations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from remix_pipeline.contract import VideoStatus
from remix_pipeline.service.lifecycle import (
    GENERATION_FAILED,
    MODERATION_BLOCKED,
    MODERATION_MESSAGE,
    Timing,
    expires_at,
    is_expired,
    progress_at,
    status_at,
    video_at,
)
from remix_pipeline.service.records import Failure, JobKind, JobRecord

T0 = 1_000.25
TIMING = Timing(queued_seconds=10, run_seconds=100, expires_after_seconds=3600)
JOB = JobRecord(
    id="video_" + "a" * 32,
    kind=JobKind.CREATE,
    model="sora-2",
    prompt="a cat",
    size="1280x720",
    seconds="4",
    created_at=T0,
    remixed_from_video_id=None,
    failure=None,
    motion_seed=7,
)


@pytest.mark.parametrize(
    ("offset", "status", "progress"),
    [
        (0, VideoStatus.QUEUED, 0),
        (9.99, VideoStatus.QUEUED, 0),
        (10, VideoStatus.IN_PROGRESS, 0),
        (60, VideoStatus.IN_PROGRESS, 50),
        (109.9, VideoStatus.IN_PROGRESS, 99),
        (110, VideoStatus.COMPLETED, 100),
    ],
)
def test_status_and_progress_follow_the_timeline(
    offset: float, status: VideoStatus, progress: int
) -> None:
    assert status_at(JOB, T0 + offset, TIMING) is status
    assert progress_at(JOB, T0 + offset, TIMING) == progress


def test_completed_video_has_completed_and_expiry_times_in_whole_seconds() -> None:
    video = video_at(JOB, T0 + 200, TIMING)
    assert video.created_at == 1000
    assert video.completed_at == 1110
    assert video.expires_at == 1110 + 3600
    assert video.error is None


def test_unfinished_video_has_no_completed_or_expiry_time() -> None:
    video = video_at(JOB, T0 + 50, TIMING)
    assert (video.completed_at, video.expires_at) == (None, None)


def test_moderation_blocked_job_fails_when_the_queue_wait_ends_with_progress_zero() -> None:
    job = replace(JOB, failure=Failure(MODERATION_BLOCKED, MODERATION_MESSAGE))
    assert status_at(job, T0 + 9, TIMING) is VideoStatus.QUEUED
    video = video_at(job, T0 + 10, TIMING)
    assert video.status is VideoStatus.FAILED
    assert video.progress == 0
    assert video.error is not None and video.error.code == MODERATION_BLOCKED
    assert video.expires_at is None


def test_generation_failure_ends_halfway_through_the_run() -> None:
    job = replace(JOB, failure=Failure(GENERATION_FAILED, "boom"))
    assert status_at(job, T0 + 59, TIMING) is VideoStatus.IN_PROGRESS
    assert video_at(job, T0 + 59, TIMING).error is None
    assert status_at(job, T0 + 60, TIMING) is VideoStatus.FAILED
    assert progress_at(job, T0 + 60, TIMING) == 50


def test_catalogue_source_is_completed_at_creation_and_never_expires() -> None:
    source = replace(JOB, kind=JobKind.CATALOGUE)
    video = video_at(source, T0, TIMING)
    assert video.status is VideoStatus.COMPLETED
    assert expires_at(source, TIMING) is None
    assert not is_expired(source, T0 + 10**9, TIMING)


def test_content_expires_exactly_at_expires_at() -> None:
    deadline = T0 + 110 + 3600
    assert not is_expired(JOB, deadline - 0.001, TIMING)
    assert is_expired(JOB, deadline, TIMING)


def test_zero_durations_complete_immediately() -> None:
    assert status_at(JOB, T0, Timing(0, 0, 1)) is VideoStatus.COMPLETED
