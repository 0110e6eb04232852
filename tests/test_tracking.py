"""Polling and downloading against the real embedded service and a real SQLite ledger."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa

from remix_pipeline import tracking
from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.contract import dump_video
from remix_pipeline.ledger import AttemptState, Ledger, MediaRecord
from remix_pipeline.service import ServiceConfig
from remix_pipeline.submission import submit_variants
from remix_pipeline.tracking import MEDIA_VARIANTS, download_media, poll_in_flight
from tests.support.builders import requests

from .test_ledger import request, video


async def completed_ledger(tmp_path: Path, client: VideosClient, count: int) -> Ledger:
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    await submit_variants(requests(count), ledger=ledger, client=client, table_hash="h", run_id="r")
    while ledger.in_flight():
        await poll_in_flight(ledger, client)
        await asyncio.sleep(0.05)
    return ledger


async def every_job_ended(client: VideosClient, video_ids: set[str]) -> None:
    """Wait on the server itself, not a fixed sleep: a loaded machine stretches job times."""
    active = {"queued", "in_progress"}
    while any(v.status in active for v in (await client.bulk_status(video_ids)).values()):
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


async def test_each_committed_batch_is_handed_on_already_in_the_ledger_and_whole(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(tracking, "RECORDS_PER_COMMIT", 4)
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        ledger = await completed_ledger(tmp_path, client, 7)
        batches: list[list[tuple[str, int, str]]] = []

        def on_recorded(records: list[MediaRecord]) -> None:
            for r in records:  # committed before it is handed on
                assert r.variant in ledger.media(r.key, r.attempt)
            batches.append([(r.key, r.attempt, r.variant) for r in records])

        report = await download_media(ledger, client, tmp_path / "media", on_recorded=on_recorded)

    assert len(batches) > 1
    handed = [entry for batch in batches for entry in batch]
    assert sorted(handed) == sorted((r.key, r.attempt, r.variant) for r in report.downloaded)
    for batch in batches:  # an attempt's three files arrive together
        per_attempt = Counter((key, number) for key, number, _ in batch)
        assert set(per_attempt.values()) == {len(MEDIA_VARIANTS)}


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
        # On a loaded machine a job may already have ended when its answer was recorded.
        in_flight = ledger.in_flight()
        await every_job_ended(client, {a.video_id for a in in_flight if a.video_id})
        commits: list[int] = []
        sa.event.listen(ledger._engine, "commit", lambda conn: commits.append(1))
        report = await poll_in_flight(ledger, client)

    assert len(report.finished) == len(in_flight) > 100
    assert ledger.in_flight() == []
    # One read of the in-flight jobs, then one commit per chunk of changed jobs.
    assert len(commits) < 150 // 10


async def test_a_status_answered_with_another_jobs_record_leaves_the_attempt_in_flight(tmp_path):
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    made = ledger.record_intent(request(), table_hash="h", run_id=None, now=1.0)
    ledger.mark_sent(made.key, 1, sent_at=1.0)
    ledger.mark_submitted(made.key, 1, video("video_mine"), now=2.0)

    def server(asked: httpx.Request) -> httpx.Response:
        if asked.url.path.endswith("/videos"):
            empty = {"object": "list", "data": [], "first_id": None, "last_id": None}
            return httpx.Response(200, json={**empty, "has_more": False})
        return httpx.Response(200, json=dump_video(video("video_other", status="completed")))

    settings = ClientSettings(base_url="http://fake.test/v1")
    async with VideosClient.from_settings(settings, transport=httpx.MockTransport(server)) as c:
        report = await poll_in_flight(ledger, c)

    assert [a.key for a in report.foreign] == [made.key]
    assert report.finished == []
    assert [a.video_id for a in ledger.in_flight()] == ["video_mine"]


async def test_a_running_jobs_percent_is_recorded_once_it_has_moved_a_whole_step(tmp_path):
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    made = ledger.record_intent(request(), table_hash="h", run_id=None, now=1.0)
    ledger.mark_sent(made.key, 1, sent_at=1.0)
    ledger.mark_submitted(
        made.key, 1, video("video_mine", status="in_progress", progress=10), now=2.0
    )
    answered = {"progress": 10}

    def server(asked: httpx.Request) -> httpx.Response:
        running = video("video_mine", status="in_progress", progress=answered["progress"])
        listed = {"object": "list", "data": [dump_video(running)], "has_more": False}
        return httpx.Response(
            200, json={**listed, "first_id": "video_mine", "last_id": "video_mine"}
        )

    recorded: list[int] = []
    settings = ClientSettings(base_url="http://fake.test/v1")
    async with VideosClient.from_settings(settings, transport=httpx.MockTransport(server)) as c:
        for progress in (11, 14, 15, 16, 19, 20):
            answered["progress"] = progress
            await poll_in_flight(ledger, c)
            recorded.append(ledger.get(made.key, 1).video["progress"])  # type: ignore[index]

    assert recorded == [10, 10, 15, 15, 15, 20]
