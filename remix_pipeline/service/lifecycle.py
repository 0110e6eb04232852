"""A job's state as a pure function of its record, the clock and the configured durations.

No background worker advances jobs: any process that opens the same SQLite file with the same
settings computes the same status, so the webserver, the daemon and run workers agree.

Timeline of a job created at `t`:

- `[t, t + queued)`: `queued`, progress 0.
- `[t + queued, t + queued + run)`: `in_progress`, progress rising linearly from 0 to 99.
- from `t + queued + run`: `completed` with progress 100, `completed_at` set and the content
  downloadable until `expires_at = completed_at + expires_after`.

Jobs decided to fail end earlier: `moderation_blocked` when the queue wait ends (progress 0),
any other failure halfway through the run (progress 50). Failed jobs have no `expires_at`.
Catalogue sources are completed at creation and never expire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from remix_pipeline.contract import Video, VideoError, VideoStatus
from remix_pipeline.service.config import ServiceConfig
from remix_pipeline.service.records import JobKind, JobRecord

MODERATION_BLOCKED = "moderation_blocked"
MODERATION_MESSAGE = "Your request was blocked by our moderation system."
GENERATION_FAILED = "generation_failed"
GENERATION_FAILED_MESSAGE = "Video generation failed. Please try again."
FAILED_MIDWAY_PROGRESS = 50


@dataclass(frozen=True)
class Timing:
    queued_seconds: float
    run_seconds: float
    expires_after_seconds: float

    @classmethod
    def from_config(cls, config: ServiceConfig) -> Timing:
        return cls(config.queued_seconds, config.run_seconds, config.expires_after_seconds)


def ends_at(job: JobRecord, timing: Timing) -> float:
    """When the job reaches its terminal status."""
    if job.kind is JobKind.CATALOGUE:
        return job.created_at
    started = job.created_at + timing.queued_seconds
    if job.failure is None:
        return started + timing.run_seconds
    if job.failure.code == MODERATION_BLOCKED:
        return started
    return started + timing.run_seconds / 2


def expires_at(job: JobRecord, timing: Timing) -> float | None:
    """When the content stops being downloadable; None for sources and failed jobs."""
    if job.kind is JobKind.CATALOGUE or job.failure is not None:
        return None
    return ends_at(job, timing) + timing.expires_after_seconds


def status_at(job: JobRecord, now: float, timing: Timing) -> VideoStatus:
    if now >= ends_at(job, timing):
        return VideoStatus.FAILED if job.failure is not None else VideoStatus.COMPLETED
    if now < job.created_at + timing.queued_seconds:
        return VideoStatus.QUEUED
    return VideoStatus.IN_PROGRESS


def progress_at(job: JobRecord, now: float, timing: Timing) -> int:
    status = status_at(job, now, timing)
    if status is VideoStatus.COMPLETED:
        return 100
    if status is VideoStatus.FAILED:
        return (
            0 if job.failure and job.failure.code == MODERATION_BLOCKED else FAILED_MIDWAY_PROGRESS
        )
    if status is VideoStatus.QUEUED or timing.run_seconds <= 0:
        return 0
    elapsed = now - job.created_at - timing.queued_seconds
    return max(0, min(99, math.floor(100 * elapsed / timing.run_seconds)))


def is_expired(job: JobRecord, now: float, timing: Timing) -> bool:
    deadline = expires_at(job, timing)
    return deadline is not None and now >= deadline


def video_at(job: JobRecord, now: float, timing: Timing) -> Video:
    """The wire object for `job` as seen at `now` (timestamps floored to whole seconds)."""
    status = status_at(job, now, timing)
    terminal = status.is_terminal
    deadline = expires_at(job, timing)
    return Video(
        id=job.id,
        model=job.model,
        status=status,
        progress=progress_at(job, now, timing),
        created_at=math.floor(job.created_at),
        completed_at=math.floor(ends_at(job, timing)) if terminal else None,
        expires_at=math.floor(deadline) if terminal and deadline is not None else None,
        prompt=job.prompt,
        size=job.size,
        seconds=job.seconds,
        remixed_from_video_id=job.remixed_from_video_id,
        error=(
            VideoError(code=job.failure.code, message=job.failure.message)
            if status is VideoStatus.FAILED and job.failure is not None
            else None
        ),
    )
