"""Polling and downloading against the real embedded service and a real SQLite ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.ledger import AttemptState, Ledger
from remix_pipeline.service import ServiceConfig
from remix_pipeline.submission import submit_variants
from remix_pipeline.tracking import MEDIA_VARIANTS, download_media, poll_in_flight

from .test_submission import requests


async def completed_ledger(tmp_path: Path, client: VideosClient, count: int) -> Ledger:
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    await submit_variants(requests(count), ledger=ledger, client=client, table_hash="h", run_id="r")
    while ledger.in_flight():
        await poll_in_flight(ledger, client)
        await asyncio.sleep(0.05)
    return ledger


async def every_job_ended(client: VideosClient, ledger: Ledger) -> None:
    """Wait on the server itself, not a fixed sleep: a loaded machine stretches job times."""
    ids = {a.video_id for a in ledger.in_flight()}
    while any(
        v.status in {"queued", "in_progress"} for v in (await client.bulk_status(ids)).values()
    ):
        await asyncio.sleep(0.05)


async def test_every_file_of_every_completed_attempt_is_downloaded_and_recorded(tmp_path):
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        ledger = await completed_ledger(tmp_path, client, 12)
        report = await download_media(ledger, client, tmp_path / "media")

    attempts = ledger.latest().values()
    assert {a.state for a in attempts} == {AttemptState.COMPLETED}
    assert report.problems == []
    assert len(report.downloaded) == 12 * len(MEDIA_VARIANTS)
    for attempt in attempts:
        media = ledger.media(attempt.key, attempt.attempt)
        assert set(media) == {v.value for v in MEDIA_VARIANTS}
        assert all(Path(m.path).stat().st_size == m.size_bytes for m in media.values())


async def test_downloaded_files_share_ledger_commits_instead_of_one_each(tmp_path):
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        ledger = await completed_ledger(tmp_path, client, 20)
        commits: list[int] = []
        sa.event.listen(ledger._engine, "commit", lambda conn: commits.append(1))
        report = await download_media(ledger, client, tmp_path / "media")

    assert len(report.downloaded) == 60
    # One read of what is recorded, then one commit per batch of files (reads commit too).
    assert len(commits) < 60 // 10


async def test_a_second_download_pass_fetches_nothing_already_recorded(tmp_path):
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        ledger = await completed_ledger(tmp_path, client, 3)
        await download_media(ledger, client, tmp_path / "media")
        again = await download_media(ledger, client, tmp_path / "media")

    assert again.downloaded == [] and again.problems == []


async def test_a_poll_commits_the_changed_jobs_in_chunks_not_one_each(tmp_path):
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        ledger = Ledger.for_path(tmp_path / "ledger.db")
        await submit_variants(
            requests(150), ledger=ledger, client=client, table_hash="h", run_id="r"
        )
        await every_job_ended(client, ledger)  # so each in-flight job has changed
        commits: list[int] = []
        sa.event.listen(ledger._engine, "commit", lambda conn: commits.append(1))
        report = await poll_in_flight(ledger, client)

    assert len(report.finished) == 150
    assert ledger.in_flight() == []
    # One read of the in-flight jobs, then one commit per chunk of changed jobs.
    assert len(commits) < 150 // 10
