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
from dataclasses import dataclass, field
from pathlib import Path

from upath import UPath

from remix_pipeline import derived_media
from remix_pipeline.client import APIStatusError, ContractViolationError, Deviation, VideosClient
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

    A status answer that breaks the contract (another job's record, or an answer that cannot
    be read at all) is no news of the job: it stays in flight and the violation is counted
    in the ledger, so that a server that never answers properly can be named and given up on.
    """
    report = PollReport()
    server = client.server_label  # one URL parse, not one per job
    in_flight = [a for a in ledger.in_flight() if a.video_id and belongs_to(a, server)]
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
    except ContractViolationError as exc:
        report.checked = len(in_flight)
        report.violations = ledger.record_poll_violations(
            [(a.key, a.attempt) for a in in_flight], reason=str(exc), now=time.time()
        )
        return report
    now = time.time()
    changed: list[tuple[Attempt, Video]] = []
    foreign: list[tuple[Attempt, Video]] = []
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
            foreign.append((attempt, video))
            continue
        if video.id != attempt.video_id:
            # The same job under a gateway's other encoding: kept under the id it was claimed by.
            video = video.model_copy(update={"id": attempt.video_id})
        if attempt.poll_violations or not _unchanged(attempt, video):
            changed.append((attempt, video))
    if foreign:
        report.foreign = [attempt for attempt, _ in foreign]
        attempt, video = foreign[0]
        report.violations = ledger.record_poll_violations(
            [(a.key, a.attempt) for a, _ in foreign],
            reason=f"status answers describe another video (asked for {attempt.video_id}, "
            f"got {video.id})",
            now=now,
        )
    # A ledger write per job per tick would dominate a large tick: skip unchanged jobs, and
    # commit the changed ones in chunks (a crash between chunks only means a poll again).
    for start in range(0, len(changed), POLL_WRITES_PER_COMMIT):
        chunk = changed[start : start + POLL_WRITES_PER_COMMIT]
        report.finished += ledger.update_videos(
            [(a.key, a.attempt, video) for a, video in chunk], now=now
        )
        for _ in chunk:  # one pass per job written, so a kill can land mid-poll
            crash_point("tracking.polled")
    return report


def answers_hopelessly(attempt: Attempt, now: float) -> bool:
    """Whether the server has answered about this job against the contract for too long."""
    since = attempt.violation_since
    return attempt.poll_violations >= POLL_VIOLATION_LIMIT or (
        since is not None and attempt.poll_violations > 1 and now - since >= POLL_VIOLATION_SECONDS
    )


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
