"""`sdk_fixtures`: the fixed ids openai-python's tests use, and how video_123 outlives deletes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from remix_pipeline.cli import main
from remix_pipeline.service import ServiceConfig, create_app
from remix_pipeline.service.fixtures import FIXTURE_CHARACTER_ID, FIXTURE_VIDEO_ID
from tests.support.clock import FakeClock
from tests.support.servers import MakeConfig, serve_command, serving

Client = httpx.AsyncClient
VIDEO = f"/v1/videos/{FIXTURE_VIDEO_ID}"


@pytest.fixture
async def fixtures_client(
    make_config: MakeConfig, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_config(sdk_fixtures=True), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


async def _list_ids(client: Client) -> list[str]:
    return [v["id"] for v in (await client.get("/v1/videos", params={"limit": 100})).json()["data"]]


async def test_the_fixed_video_and_character_exist(fixtures_client: Client) -> None:
    video = (await fixtures_client.get(VIDEO)).json()
    assert (video["id"], video["status"], video["expires_at"]) == (
        FIXTURE_VIDEO_ID,
        "completed",
        None,
    )
    character = await fixtures_client.get(f"/v1/videos/characters/{FIXTURE_CHARACTER_ID}")
    assert (character.status_code, character.json()["id"]) == (200, FIXTURE_CHARACTER_ID)
    assert FIXTURE_VIDEO_ID in await _list_ids(fixtures_client)


async def test_without_the_option_the_fixed_ids_are_unknown(app_client: Client) -> None:
    assert (await app_client.get(VIDEO)).status_code == 404
    assert (await app_client.delete(VIDEO)).status_code == 404
    character = await app_client.get(f"/v1/videos/characters/{FIXTURE_CHARACTER_ID}")
    assert character.status_code == 404


async def test_a_deleted_fixture_is_really_deleted_then_seeded_again_when_named(
    fixtures_client: Client, clock: FakeClock
) -> None:
    first = (await fixtures_client.get(VIDEO)).json()
    assert (await fixtures_client.get(f"{VIDEO}/content")).status_code == 200
    clock.advance(5)
    deleted = await fixtures_client.delete(VIDEO)
    assert deleted.json() == {"id": FIXTURE_VIDEO_ID, "object": "video.deleted", "deleted": True}
    assert FIXTURE_VIDEO_ID not in await _list_ids(fixtures_client)
    again = await fixtures_client.get(VIDEO)
    assert again.status_code == 200
    assert again.json()["created_at"] == first["created_at"] + 5
    assert (await _list_ids(fixtures_client))[0] == FIXTURE_VIDEO_ID  # newest now


@pytest.mark.parametrize("operation", ["remix", "edit", "extension", "content", "delete"])
async def test_every_request_naming_a_deleted_fixture_finds_it(
    fixtures_client: Client, operation: str
) -> None:
    await fixtures_client.delete(VIDEO)
    reference = {"video": {"id": FIXTURE_VIDEO_ID}, "prompt": "again"}
    requests = {
        "remix": lambda: fixtures_client.post(f"{VIDEO}/remix", json={"prompt": "again"}),
        "edit": lambda: fixtures_client.post("/v1/videos/edits", json=reference),
        "extension": lambda: fixtures_client.post(
            "/v1/videos/extensions", json={**reference, "seconds": "4"}
        ),
        "content": lambda: fixtures_client.get(f"{VIDEO}/content"),
        "delete": lambda: fixtures_client.delete(VIDEO),
    }
    response = await requests[operation]()
    assert response.status_code == 200, response.text


async def test_concurrent_deletes_of_the_fixture_all_answer_deleted(
    fixtures_client: Client,
) -> None:
    responses = await asyncio.gather(*(fixtures_client.delete(VIDEO) for _ in range(6)))
    assert {r.status_code for r in responses} == {200}
    assert all(r.json()["deleted"] is True for r in responses)


async def test_an_after_cursor_at_a_deleted_fixture_still_pages_on(
    fixtures_client: Client,
) -> None:
    await fixtures_client.delete(VIDEO)
    response = await fixtures_client.get("/v1/videos", params={"after": FIXTURE_VIDEO_ID})
    assert response.status_code == 200


def test_a_fixture_deleted_before_a_restart_is_there_after_it(tmp_path: Path) -> None:
    config = ServiceConfig(db_path=tmp_path / "s.db", sdk_fixtures=True)
    store = create_app(config).state.service.store
    assert store.delete_video(FIXTURE_VIDEO_ID)
    assert create_app(config).state.service.store.get_video(FIXTURE_VIDEO_ID) is not None


def test_the_official_sdk_retrieves_deletes_and_remixes_the_fixture(
    make_config: MakeConfig,
) -> None:
    with serving(make_config(sdk_fixtures=True)) as (base_url, _app):
        client = openai.OpenAI(base_url=base_url, api_key="My API Key", max_retries=0)
        assert client.videos.retrieve(FIXTURE_VIDEO_ID).status == "completed"
        assert client.videos.delete(FIXTURE_VIDEO_ID).deleted is True
        remix = client.videos.remix(FIXTURE_VIDEO_ID, prompt="x")
        character = client.videos.get_character(FIXTURE_CHARACTER_ID)
    assert remix.remixed_from_video_id == FIXTURE_VIDEO_ID
    assert character.id == FIXTURE_CHARACTER_ID


# the serve option ----------------------------------------------------------------------------


def test_serve_sdk_fixtures_option_serves_the_fixed_ids(tmp_path: Path) -> None:
    process = serve_command(
        "--port", "0", "--db", str(tmp_path / "s.db"), "--sdk-fixtures",
        env={"REMIX_PIPELINE_HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert httpx.get(f"{base_url}/videos/{FIXTURE_VIDEO_ID}").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_serve_help_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--sdk-fixtures" in capsys.readouterr().out
