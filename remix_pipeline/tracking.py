"""Following submitted jobs to their end, and fetching what they produced.

Both steps read their work from the ledger, so they can stop at any point (a sensor's time
budget, a killed process) and the next call carries on where this one stopped. Media go to
any fsspec location: a local folder receives each file by an atomic rename, a remote one
(`s3://...`, `memory://...`) by an upload of the complete local download, and the ledger
records a file only once it is at its destination.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from upath import UPath

from remix_pipeline.client import APIStatusError, VideosClient
from remix_pipeline.client.gateways import same_video
from remix_pipeline.contract import ContentVariant, Video
from remix_pipeline.crashpoints import crash_point
from remix_pipeline.ledger import Attempt, AttemptState, Ledger, MediaRecord

MEDIA_VARIANTS: tuple[ContentVariant, ...] = (
    ContentVariant.VIDEO,
    ContentVariant.THUMBNAIL,
    ContentVariant.SPRITESHEET,
)
# Attempts whose media are fetched at once (three files each). Enough to keep a server's
# renderer busy; few enough that the HTTP pool stays small: httpx's pool does work per
# request that grows with the square of its connections, a third of a 300-video media run
# when every download was started at once.
ATTEMPTS_AT_ONCE = 4
# Downloaded files are recorded in the ledger this many at a time (a commit each cost as much
# as the download). A crash before a batch commits only means those files are fetched again.
RECORDS_PER_COMMIT = 120
POLL_WRITES_PER_COMMIT = 100


@dataclass
class PollReport:
    checked: int = 0
    finished: list[Attempt] = field(default_factory=list)
    vanished: list[Attempt] = field(default_factory=list)
    foreign: list[Attempt] = field(default_factory=list)  # answered with another job's record
    out_of_time: bool = False


async def poll_in_flight(
    ledger: Ledger, client: VideosClient, *, deadline: float | None = None
) -> PollReport:
    """Refresh every in-flight attempt with as few requests as the client can manage."""
    report = PollReport()
    in_flight = [a for a in ledger.in_flight() if a.video_id]
    if not in_flight:
        return report
    created_after = min((a.sent_at or a.intent_at) for a in in_flight) - 60.0
    budget = None if deadline is None else max(deadline - time.time(), 0.1)
    try:
        videos = await asyncio.wait_for(
            client.bulk_status([a.video_id for a in in_flight], created_after=created_after),
            timeout=budget,
        )
    except TimeoutError:
        report.out_of_time = True
        return report
    now = time.time()
    changed: list[tuple[Attempt, Video]] = []
    for attempt in in_flight:
        report.checked += 1
        video = videos.get(attempt.video_id or "")
        if video is None:
            failed = ledger.mark_failed(
                attempt.key,
                attempt.attempt,
                code="video_not_found",
                message=f"The server no longer knows video {attempt.video_id}.",
                now=now,
            )
            report.vanished.append(failed)
            report.finished.append(failed)
            continue
        if not same_video(video.id, attempt.video_id):
            # Another job's record is no news of this one: it stays in flight, asked again.
            report.foreign.append(attempt)
            continue
        if video.id != attempt.video_id:
            # The same job under a gateway's other encoding: kept under the id it was claimed by.
            video = video.model_copy(update={"id": attempt.video_id})
        if not _unchanged(attempt, video):
            changed.append((attempt, video))
    # A ledger write per job per tick would dominate a large tick: skip unchanged jobs, and
    # commit the changed ones in chunks (a crash between chunks only means a poll again).
    for start in range(0, len(changed), POLL_WRITES_PER_COMMIT):
        chunk = changed[start : start + POLL_WRITES_PER_COMMIT]
        for updated in ledger.update_videos(
            [(a.key, a.attempt, video) for a, video in chunk], now=now
        ):
            crash_point("tracking.polled")
            if updated.is_terminal:
                report.finished.append(updated)
    return report


def _unchanged(attempt: Attempt, video: Video) -> bool:
    known = attempt.video or {}
    return (
        not video.is_terminal
        and known.get("status") == video.status.value
        and known.get("progress") == video.progress
    )


LOCAL_PROTOCOLS = frozenset({"", "file", "local"})


def is_local(location: str | Path) -> bool:
    """True for a plain path or a `file://` URL: a folder this machine renames into."""
    return UPath(location).protocol in LOCAL_PROTOCOLS


def media_dir(root: str | Path, attempt: Attempt) -> UPath:
    """The folder of one attempt's media under `root` (a path or an fsspec URL)."""
    base = UPath(root)
    if base.protocol in LOCAL_PROTOCOLS:
        base = UPath(base.path)
    return base / attempt.key / f"attempt-{attempt.attempt}"


@dataclass
class DownloadReport:
    downloaded: list[MediaRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def download_media(
    ledger: Ledger,
    client: VideosClient,
    root: str | Path,
    attempts: list[Attempt] | None = None,
) -> DownloadReport:
    """Download every variant of every completed attempt that does not have it yet.

    `root` is a local folder or any fsspec URL; the ledger records each file's final
    location (a local path, or the URL of the uploaded object).
    """
    report = DownloadReport()
    if attempts is None:
        attempts = [a for a in ledger.latest().values() if a.state is AttemptState.COMPLETED]
    local = is_local(root)

    gate = asyncio.Semaphore(ATTEMPTS_AT_ONCE)

    async def one(
        attempt: Attempt, variant: ContentVariant, staging: Path | None
    ) -> MediaRecord | None:
        target = media_dir(root, attempt) / variant.file_name
        video_id = attempt.video_id or ""
        try:
            if staging is None:
                result = await client.download(video_id, variant, Path(target.path))
                location = str(result.path)
            else:
                staged = staging / attempt.key / str(attempt.attempt) / variant.file_name
                result = await client.download(video_id, variant, staged)
                await asyncio.to_thread(_upload, result.path, target)
                location = str(target)
        except APIStatusError as exc:
            report.problems.append(f"{attempt.key} {variant.value}: {exc.message}")
            return None
        crash_point("tracking.downloaded")
        return MediaRecord(
            key=attempt.key,
            attempt=attempt.attempt,
            variant=variant.value,
            path=location,
            sha256=result.sha256,
            size_bytes=result.size_bytes,
        )

    unrecorded: list[MediaRecord] = []

    def record(final: bool = False) -> None:
        if unrecorded and (final or len(unrecorded) >= RECORDS_PER_COMMIT):
            ledger.record_media_many(unrecorded)
            report.downloaded.extend(unrecorded)
            unrecorded.clear()

    async def fetch(attempt: Attempt, variants: list[ContentVariant], staging: Path | None) -> None:
        async with gate:
            found = await asyncio.gather(*(one(attempt, v, staging) for v in variants))
        unrecorded.extend(r for r in found if r is not None)
        record()

    wanted: list[tuple[Attempt, list[ContentVariant]]] = []
    recorded = ledger.media_variants((a.key, a.attempt) for a in attempts)
    for attempt in attempts:
        have = recorded[(attempt.key, attempt.attempt)]
        missing = [v for v in MEDIA_VARIANTS if v.value not in have]
        if missing:
            wanted.append((attempt, missing))
    if not wanted:
        return report
    try:
        if local:
            await asyncio.gather(*(fetch(a, vs, None) for a, vs in wanted))
            return report
        # Remote destinations get complete files only: each download lands here first.
        with tempfile.TemporaryDirectory(prefix="remix-media-") as staging:
            await asyncio.gather(*(fetch(a, vs, Path(staging)) for a, vs in wanted))
        return report
    finally:
        record(final=True)


def _upload(source: Path, target: UPath) -> None:
    """Copy a complete local file to a remote location; object stores publish on close."""
    target.fs.put_file(str(source), target.path)
