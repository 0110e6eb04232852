"""Rendering ahead: a job's media are made while it runs, not on its first download."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from remix_pipeline.service import create_app, media
from remix_pipeline.service.app import ServiceState, media_spec
from remix_pipeline.service.media import media_folder
from remix_pipeline.service.render_ahead import RenderAhead
from remix_pipeline.service.store import JobStore
from tests.support.clock import FakeClock
from tests.support.servers import MakeConfig

WAIT_SECONDS = 60.0  # how long a test waits for the worker before it calls it stuck


def _state(client: httpx.AsyncClient) -> ServiceState:
    return client.app.state.service  # type: ignore[attr-defined,no-any-return]


def _client(make_config: MakeConfig, **overrides: object) -> httpx.AsyncClient:
    app = create_app(make_config(**overrides), clock=FakeClock())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")
    client.app = app  # type: ignore[attr-defined]
    return client


def _drained(ahead: RenderAhead) -> None:
    """Wait until every render due now has run: a marker scheduled now runs after them."""
    reached = threading.Event()
    ahead.schedule("marker", 0.0, reached.set)
    assert reached.wait(WAIT_SECONDS), "the render-ahead worker did not reach the marker"


def _rendered_files(state: ServiceState, video_id: str) -> list[str]:
    job = JobStore(state.config.db_path).get_video(video_id)
    assert job is not None
    folder = media_folder(media_spec(state.config, job), state.config.media_cache_dir)
    return sorted(p.name for p in folder.glob("*") if not p.name.startswith("."))


async def test_a_job_that_will_complete_has_its_media_before_anything_downloads_them(
    make_config: MakeConfig,
) -> None:
    async with _client(make_config) as client:
        video = (await client.post("/v1/videos", json={"prompt": "a cat"})).json()
        state = _state(client)
        _drained(state.ahead)
        assert _rendered_files(state, video["id"]) == [
            "spritesheet.jpg",
            "thumbnail.webp",
            "video.mp4",
        ]
        content = await client.get(f"/v1/videos/{video['id']}/content")
        assert content.status_code == 400  # the job itself is still queued on the fake clock


@pytest.mark.parametrize(
    "overrides",
    [{"faults": {"failure_rate": 1.0}}, {"render_ahead": False}],
    ids=["a job that will fail", "render ahead turned off"],
)
async def test_nothing_is_rendered_ahead_for_a_failing_job_or_when_turned_off(
    make_config: MakeConfig, overrides: dict[str, object]
) -> None:
    async with _client(make_config, **overrides) as client:
        video = (await client.post("/v1/videos", json={"prompt": "a cat"})).json()
        state = _state(client)
        _drained(state.ahead)
        assert _rendered_files(state, video["id"]) == []


async def test_a_job_deleted_before_its_turn_leaves_no_media_behind(
    make_config: MakeConfig,
) -> None:
    async with _client(make_config, queued_seconds=0, run_seconds=0) as client:
        state = _state(client)
        release = threading.Event()
        state.ahead.schedule("blocker", 0.0, lambda: release.wait(WAIT_SECONDS))
        video = (await client.post("/v1/videos", json={"prompt": "a cat"})).json()
        deleted = await client.delete(f"/v1/videos/{video['id']}")
        assert deleted.json()["deleted"] is True
        release.set()
        _drained(state.ahead)
        assert not (state.config.media_cache_dir / video["id"]).exists()


def test_renders_run_when_due_and_not_before() -> None:
    ahead = RenderAhead()
    ran: list[str] = []
    ahead.schedule("later", 3600.0, lambda: ran.append("later"))
    ahead.schedule("now", 0.0, lambda: ran.append("now"))
    _drained(ahead)
    assert ran == ["now"]


def test_a_failing_render_does_not_stop_the_ones_after_it() -> None:
    ahead = RenderAhead()

    def broken() -> None:
        raise RuntimeError("no encoder")

    ahead.schedule("broken", 0.0, broken)
    _drained(ahead)
    ran = threading.Event()
    ahead.schedule("next", 0.0, ran.set)
    assert ran.wait(WAIT_SECONDS)


async def test_a_download_during_a_render_of_its_video_waits_and_renders_nothing_again(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []
    original = media._write_mp4

    def counted(spec: media.MediaSpec, path: Path) -> object:
        encoded.append(spec.video_id)
        return original(spec, path)

    monkeypatch.setattr(media, "_write_mp4", counted)
    clock = FakeClock()
    app = create_app(make_config(render_ahead=False), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        video = (await client.post("/v1/videos", json={"prompt": "a cat"})).json()
        clock.advance(60)
        state: ServiceState = app.state.service
        claimed, mine = state.ahead.claim(video["id"])
        assert mine
        download = asyncio.ensure_future(client.get(f"/v1/videos/{video['id']}/content"))
        await asyncio.sleep(0.2)
        assert not download.done()  # it waits for the render under way
        job = state.store.get_video(video["id"])
        assert job is not None
        await asyncio.to_thread(
            media.render_media, media_spec(state.config, job), state.config.media_cache_dir
        )
        state.ahead.release(video["id"], claimed)
        response = await download
    assert response.status_code == 200
    assert encoded == [video["id"]]


def test_the_worker_leaves_a_video_to_the_download_already_rendering_it() -> None:
    ahead = RenderAhead()
    ran: list[str] = []
    claimed, _ = ahead.claim("video_x")
    ahead.schedule("video_x", 0.0, lambda: ran.append("video_x"))
    _drained(ahead)
    ahead.release("video_x", claimed)
    assert ran == []
