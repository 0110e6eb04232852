"""Following submitted jobs to their end, and fetching what they produced.

Both steps read their work from the ledger, so they can stop at any point (a sensor's time
budget, a killed process) and the next call carries on where this one stopped. Each step
works on the attempts sent to its client's server only: a job is asked about, and its media
fetched, where it was made. Media go to any fsspec location: a local folder receives each
file by an atomic rename, a remote one (`s3://...`, `memory://...`) by an upload of the
complete local download, and the ledger records a file only once it is at its destination.
Every file is read back by its bytes; a thumbnail or spritesheet that a server answered
with the MP4 is derived from the MP4 here instead, and recorded as derived.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from upath import UPath

from remix_pipeline import derived_media
from remix_pipeline.client import APIStatusError, ContractViolationError, Deviation, VideosClient
from remix_pipeline.client.gateways import same_video
from remix_pipeline.contract import ContentVariant, Video
from remix_pipeline.crashpoints import crash_point
from remix_pipeline.ledger import Attempt, AttemptState, Ledger, MediaRecord, RunningJob

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
# A job whose status answers keep breaking the contract this many times in a row, or for this
# long, is given up on by `remix-pipeline run` (it stays in the ledger, and in flight).
POLL_VIOLATION_LIMIT = 10
POLL_VIOLATION_SECONDS = 300.0
# Downloaded files are recorded in the ledger this many at a time (a commit each cost as much
# as the download). A crash before a batch commits only means those files are fetched again.
RECORDS_PER_COMMIT = 120
# Changed jobs written per commit while polling: each commit waits for the disk (the ledger
# syncs fully), and a tick of 10,000 changed jobs made 100 of them at 100 a chunk. A crash
# between chunks only means those jobs are polled again.
POLL_WRITES_PER_COMMIT = 2000
# A running job's percent is recorded when it has moved this many points (or its status
# changed, or it ended, which is always recorded exactly). Each recorded move is a ledger
# write: at 100,000 hour-long jobs, a percent a job moves every 36 s, and a tick that wrote
# every one wrote 40,000 rows; in steps of 5, a fifth of that. A job must still move
# 5 points within the stall timeout of `remix-pipeline run` (30 min: a 10-hour job).
PROGRESS_STEP = 5


@dataclass
class PollReport:
    checked: int = 0
    finished: list[Attempt] = field(default_factory=list)
    vanished: list[Attempt] = field(default_factory=list)
    foreign: list[Attempt] = field(default_factory=list)  # answered with another job's record
    violations: list[Attempt] = field(default_factory=list)  # each with its count so far
    out_of_time: bool = False


def belongs_to(attempt: Attempt, server: str) -> bool:
    """Whether `server` (a label) is where the attempt's job lives; an attempt that recorded
    no server (written directly, not through an experiment, which records one) goes anywhere."""
    return attempt.server is None or attempt.server == server


def servers_in_flight(ledger: Ledger) -> set[str]:
    """The servers that hold jobs still running, to poll each on its own server."""
    return ledger.servers_in_flight()


def servers_to_download(attempts: list[Attempt]) -> set[str]:
    return {a.server for a in attempts if a.server is not None}


async def poll_in_flight(
    ledger: Ledger, client: VideosClient, *, deadline: float | None = None
) -> PollReport:
    """Refresh the in-flight attempts of the client's server with as few requests as it can.

    The answers are taken a list page at a time and what changed is written as it comes, so
    a tick holds one small row per job and one page of records, and what it learned before
    its deadline is kept. A status answer that breaks the contract (another job's record, or
    an answer that cannot be read at all) is no news of the job: it stays in flight and the
    violation is counted in the ledger, so that a server that never answers properly can be
    named and given up on.
    """
    report = PollReport()
    jobs = {job.video_id: job for job in ledger.running_jobs(client.server_label)}
    if not jobs:
        return report
    created_after = min(job.since for job in jobs.values()) - 60.0
    budget = None if deadline is None else max(deadline - time.time(), 0.1)
    poll = _Poll(ledger, report)
    try:
        async with asyncio.timeout(budget):
            # Newest first, as the server lists them, so the listing can be read in parts.
            newest_first = sorted(jobs, key=lambda video_id: jobs[video_id].since, reverse=True)
            statuses = client.stream_status(
                newest_first, created_after=created_after, newest_first=True
            )
            async for found in statuses:
                poll.take(found, jobs)
    except TimeoutError:
        report.out_of_time = True
        poll.write()
        return report
    except ContractViolationError as exc:
        poll.write()
        report.checked += len(jobs)
        report.violations += ledger.record_poll_violations(
            [(job.key, job.attempt) for job in jobs.values()], reason=str(exc), now=time.time()
        )
        return report
    poll.vanished(jobs.values())
    poll.write()
    return report


class _Poll:
    """One poll's answers as they arrive: changed jobs are written in chunks, answers about
    other videos are counted as violations at the end."""

    def __init__(self, ledger: Ledger, report: PollReport) -> None:
        self._ledger = ledger
        self._report = report
        self._changed: list[tuple[str, int, Video]] = []
        self._foreign: list[tuple[RunningJob, Video]] = []

    def take(self, found: dict[str, Video], jobs: dict[str, RunningJob]) -> None:
        """Match one part of the answers to their jobs, which leave `jobs` as they are seen."""
        for video_id, video in found.items():
            job = jobs.pop(video_id, None)
            if job is None:
                continue
            self._report.checked += 1
            if not same_video(video.id, job.video_id):
                self._foreign.append((job, video))
                continue
            if video.id != job.video_id:
                # The same job under a gateway's other encoding: kept under the id it was
                # claimed by.
                video = video.model_copy(update={"id": job.video_id})
            if job.poll_violations or not _unchanged(job, video):
                self._changed.append((job.key, job.attempt, video))
        # A ledger write per job per tick would dominate a large tick: unchanged jobs are
        # skipped and changed ones committed in chunks (a crash between chunks only means
        # a poll again).
        if len(self._changed) >= POLL_WRITES_PER_COMMIT:
            self._write_changed()

    def vanished(self, jobs: Iterable[RunningJob]) -> None:
        """Fail the jobs the server no longer knows (asked about, and absent from every
        answer)."""
        now = time.time()
        for job in jobs:
            self._report.checked += 1
            failed = self._ledger.mark_failed(
                job.key,
                job.attempt,
                code="video_not_found",
                message=f"The server no longer knows video {job.video_id}.",
                now=now,
            )
            self._report.vanished.append(failed)
            self._report.finished.append(failed)

    def write(self) -> None:
        """Record what was learned: the changed jobs, and the answers about other videos."""
        self._write_changed()
        if not self._foreign:
            return
        job, video = self._foreign[0]
        self._report.foreign = self._ledger.record_poll_violations(
            [(j.key, j.attempt) for j, _ in self._foreign],
            reason=f"status answers describe another video (asked for {job.video_id}, "
            f"got {video.id})",
            now=time.time(),
        )
        self._report.violations += self._report.foreign
        self._foreign = []

    def _write_changed(self) -> None:
        if not self._changed:
            return
        self._report.finished += self._ledger.update_videos(self._changed, now=time.time())
        for _ in self._changed:  # one pass per job written, so a kill can land mid-poll
            crash_point("tracking.polled")
        self._changed = []


def answers_hopelessly(attempt: Attempt, now: float) -> bool:
    """Whether the server has answered about this job against the contract for too long."""
    since = attempt.violation_since
    return attempt.poll_violations >= POLL_VIOLATION_LIMIT or (
        since is not None and attempt.poll_violations > 1 and now - since >= POLL_VIOLATION_SECONDS
    )


def _unchanged(job: RunningJob, video: Video) -> bool:
    """Nothing worth a write: the same status, and the percent within a step of the last
    recorded one."""
    return (
        not video.is_terminal
        and job.status == video.status.value
        and job.progress is not None
        and abs(video.progress - job.progress) < PROGRESS_STEP
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
    *,
    on_recorded: Callable[[list[MediaRecord]], None] | None = None,
) -> DownloadReport:
    """Download every variant of every completed attempt that does not have it yet.

    `root` is a local folder or any fsspec URL; the ledger records each file's final
    location (a local path, or the URL of the uploaded object). `on_recorded` is handed each
    batch of records as it is committed, whole attempts only, so a caller can show them
    while the downloads go on.
    """
    report = DownloadReport()
    if attempts is None:
        attempts = [a for a in ledger.latest().values() if a.state is AttemptState.COMPLETED]
    attempts = [a for a in attempts if belongs_to(a, client.server_label)]
    local = is_local(root)

    gate = asyncio.Semaphore(ATTEMPTS_AT_ONCE)

    async def one(
        attempt: Attempt, variant: ContentVariant, staging: Path | None, video: Path | None
    ) -> MediaRecord | None:
        """One file; `video` is the attempt's local MP4, to derive an image from if needed."""
        target = media_dir(root, attempt) / variant.file_name
        landing = (
            Path(target.path)
            if staging is None
            else staging / attempt.key / str(attempt.attempt) / variant.file_name
        )
        try:
            result = await client.download(attempt.video_id or "", variant, landing)
        except APIStatusError as exc:
            report.problems.append(f"{attempt.key} {variant.value}: {exc.message}")
            return None
        sha256, size, derived = result.sha256, result.size_bytes, False
        if not derived_media.holds_expected_media(landing, variant):
            found = derived_media.media_type_of(landing) or "unknown bytes"
            landing.unlink()
            if not derived_media.can_derive(variant) or video is None:
                report.problems.append(
                    f"{attempt.key} {variant.value}: the server sent {found}, not "
                    f"{derived_media.EXPECTED_TYPES[variant]}; not recorded"
                )
                return None
            client.deviations.note(Deviation.MEDIA_VARIANT_IGNORED, f"{variant.value}: {found}")
            payload = await asyncio.to_thread(derived_media.derive, video, variant, str(landing))
            sha256, size, derived = hashlib.sha256(payload).hexdigest(), len(payload), True
        if staging is not None:
            await asyncio.to_thread(_upload, landing, target)
        crash_point("tracking.downloaded")
        return MediaRecord(
            key=attempt.key,
            attempt=attempt.attempt,
            variant=variant.value,
            path=str(landing if staging is None else target),
            sha256=sha256,
            size_bytes=size,
            derived=derived,
        )

    unrecorded: list[MediaRecord] = []

    def record(final: bool = False) -> None:
        if unrecorded and (final or len(unrecorded) >= RECORDS_PER_COMMIT):
            ledger.record_media(unrecorded)
            report.downloaded.extend(unrecorded)
            if on_recorded is not None:
                on_recorded(list(unrecorded))
            unrecorded.clear()

    async def fetch(attempt: Attempt, variants: list[ContentVariant], staging: Path | None) -> None:
        async with gate:
            found: list[MediaRecord | None] = []
            video = _local_video(attempt, root, staging)
            if ContentVariant.VIDEO in variants:
                # The MP4 first: an image the server cannot supply is derived from it.
                fetched = await one(attempt, ContentVariant.VIDEO, staging, None)
                found.append(fetched)
                video = _local_video(attempt, root, staging) if fetched else None
            images = [v for v in variants if v is not ContentVariant.VIDEO]
            found += await asyncio.gather(*(one(attempt, v, staging, video) for v in images))
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


def _local_video(attempt: Attempt, root: str | Path, staging: Path | None) -> Path | None:
    """The attempt's MP4 on this machine, where one is (the download or its staged copy)."""
    if staging is not None:
        path = staging / attempt.key / str(attempt.attempt) / ContentVariant.VIDEO.file_name
    else:
        path = Path(media_dir(root, attempt).path) / ContentVariant.VIDEO.file_name
    return path if path.is_file() else None


def _upload(source: Path, target: UPath) -> None:
    """Copy a complete local file to a remote location; object stores publish on close."""
    target.fs.put_file(str(source), target.path)
