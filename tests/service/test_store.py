"""The SQLite store: ordering, cursors, seeding once, and several processes on one file."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from remix_pipeline.contract import Order
from remix_pipeline.service import ServiceConfig, embedded_transport
from remix_pipeline.service.catalogue import load_catalogue, source_jobs
from remix_pipeline.service.records import JobKind, JobRecord, new_video_id
from remix_pipeline.service.store import JobStore, UnknownCursorError

JOBS_PER_PROCESS = 25
# The videos table as databases made before `upload_sha256` have it.
_OLD_SCHEMA = """
CREATE TABLE videos (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    size TEXT NOT NULL,
    seconds TEXT NOT NULL,
    created_at REAL NOT NULL,
    remixed_from_video_id TEXT,
    failure_code TEXT,
    failure_message TEXT,
    motion_seed INTEGER NOT NULL
);
"""


def _job(n: int) -> JobRecord:
    return JobRecord(
        id=new_video_id(),
        kind=JobKind.CREATE,
        model="sora-2",
        prompt=f"prompt {n}",
        size="720x1280",
        seconds="4",
        created_at=1000.0 + n,
        remixed_from_video_id=None,
        failure=None,
        motion_seed=n,
    )


def test_store_returns_the_record_it_was_given(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    job = replace(_job(1), created_at=1234.5678, remixed_from_video_id="video_src_x")
    store.insert_video(job)
    assert store.get_video(job.id) == job
    assert store.get_video("video_missing") is None


def test_an_uploads_hash_is_stored_and_read_back(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    job = replace(_job(1), kind=JobKind.EDIT, upload_sha256="ab" * 32)
    store.insert_video(job)
    assert store.get_video(job.id) == job


def test_a_database_made_before_upload_hashes_gains_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SCHEMA)
        conn.execute(
            "INSERT INTO videos (id, kind, model, prompt, size, seconds, created_at, "
            "remixed_from_video_id, failure_code, failure_message, motion_seed) "
            "VALUES ('video_old', 'create', 'sora-2', 'old', '720x1280', '4', 1000.0, "
            "NULL, NULL, NULL, 5)"
        )
    conn.close()
    first, second = JobStore(path), JobStore(path)  # the second open finds it migrated
    old = first.get_video("video_old")
    assert old is not None and (old.prompt, old.upload_sha256) == ("old", None)
    job = replace(_job(2), upload_sha256="cd" * 32)
    second.insert_video(job)
    assert first.get_video(job.id) == job


def test_list_pages_follow_insertion_order_in_both_directions(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    jobs = [_job(n) for n in range(5)]
    for job in jobs:
        store.insert_video(job)
    ids = [j.id for j in jobs]
    page, more = store.list_videos(limit=2, order=Order.ASC)
    assert ([j.id for j in page], more) == (ids[:2], True)
    page, more = store.list_videos(limit=2, order=Order.ASC, after=ids[3])
    assert ([j.id for j in page], more) == (ids[4:], False)
    page, more = store.list_videos(limit=3, order=Order.DESC, after=ids[4])
    assert ([j.id for j in page], more) == (ids[3:0:-1], True)
    page, more = store.list_videos(limit=0, order=Order.DESC)
    assert (page, more) == ([], True)


def test_a_cursor_naming_a_video_deleted_since_keeps_its_place(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    jobs = [_job(n) for n in range(5)]
    for job in jobs:
        store.insert_video(job)
    ids = [j.id for j in jobs]
    first, _ = store.list_videos(limit=2, order=Order.DESC)

    store.delete_video(first[-1].id)  # the page's last id, the next page's cursor
    page, more = store.list_videos(limit=2, order=Order.DESC, after=first[-1].id)

    assert ([j.id for j in page], more) == ([ids[2], ids[1]], True)


def test_list_after_an_unknown_id_raises_unknown_cursor(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    with pytest.raises(UnknownCursorError):
        store.list_videos(limit=5, order=Order.DESC, after="video_missing")


def test_delete_removes_the_video_once(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    job = _job(1)
    store.insert_video(job)
    assert store.delete_video(job.id) is True
    assert store.delete_video(job.id) is False
    assert store.get_video(job.id) is None


def test_sources_are_seeded_once_and_a_deleted_source_stays_deleted(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    sources = source_jobs(load_catalogue(), 1000.0)
    assert len(sources) >= 1
    assert store.seed_sources(sources) == len(sources)
    assert store.seed_sources(sources) == 0
    store.delete_video(sources[0].id)
    assert JobStore(tmp_path / "s.db").seed_sources(sources) == 0
    assert store.get_video(sources[0].id) is None
    assert store.count_videos() == len(sources) - 1


def test_a_restarted_app_returns_every_job(make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config(queued_seconds=0, run_seconds=0)

    async def scenario() -> None:
        first = httpx.AsyncClient(transport=embedded_transport(config), base_url="http://t")
        created = [
            (await first.post("/v1/videos", json={"prompt": f"p{n}"})).json() for n in range(7)
        ]
        await first.aclose()
        second = httpx.AsyncClient(transport=embedded_transport(config), base_url="http://t")
        listed = (await second.get("/v1/videos", params={"limit": 100})).json()["data"]
        await second.aclose()
        by_id = {v["id"]: v for v in listed}
        for video in created:
            assert by_id[video["id"]]["prompt"] == video["prompt"]
            assert by_id[video["id"]]["created_at"] == video["created_at"]
            assert by_id[video["id"]]["status"] == "completed"

    asyncio.run(scenario())


def _create_and_poll(
    config_json: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:
    """One process: create jobs on the shared file, then poll each until it completes."""
    config = ServiceConfig.model_validate_json(config_json)

    async def run() -> list[str]:
        transport = embedded_transport(config)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            barrier.wait(timeout=60)
            ids = []
            for n in range(JOBS_PER_PROCESS):
                response = await client.post("/v1/videos", json={"prompt": f"job {n}"})
                response.raise_for_status()
                ids.append(response.json()["id"])
            for video_id in ids:
                while (await client.get(f"/v1/videos/{video_id}")).json()["status"] != "completed":
                    await asyncio.sleep(0.02)
            return ids

    out.put(asyncio.run(run()))


def test_two_processes_creating_and_polling_on_one_file_lose_nothing(
    make_config,  # type: ignore[no-untyped-def]
) -> None:
    config = make_config(queued_seconds=0.02, run_seconds=0.1)
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=_create_and_poll, args=(config.model_dump_json(), barrier, out), daemon=True
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    ids = [video_id for _ in workers for video_id in out.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert len(set(ids)) == 2 * JOBS_PER_PROCESS
    store = JobStore(config.db_path)
    assert store.count_videos() == 2 * JOBS_PER_PROCESS + len(load_catalogue())
    assert all(store.get_video(video_id) is not None for video_id in ids)
