"""The layer in front of the routes: bearer auth, request ids and per-operation counters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from remix_pipeline.service import create_app
from tests.support.clock import FakeClock
from tests.support.servers import MakeConfig

KEY = "sk-gateway-test-key-0123456789"


@pytest.fixture
async def guarded(make_config: MakeConfig, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(make_config(api_key=KEY), clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        yield client


async def test_missing_key_is_a_401_that_says_how_to_send_one(guarded: httpx.AsyncClient) -> None:
    response = await guarded.get("/v1/videos")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert response.headers["x-request-id"].startswith("req_")


async def test_wrong_key_is_a_401_that_does_not_echo_it(guarded: httpx.AsyncClient) -> None:
    sent = "sk-not-the-right-key-abcdefgh"
    response = await guarded.get("/v1/videos", headers={"authorization": f"Bearer {sent}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert sent not in response.text and KEY not in response.text


async def test_the_right_key_is_let_through(guarded: httpx.AsyncClient) -> None:
    response = await guarded.get("/v1/videos", headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 200


async def test_stats_also_need_the_key(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.get("/_admin/stats")).status_code == 401
    stats = await guarded.get("/_admin/stats", headers={"authorization": f"Bearer {KEY}"})
    assert stats.json()["by_operation"]["stats"] == {"401": 1}


async def test_unknown_routes_and_wrong_methods_are_counted_under_their_names(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    app = create_app(make_config(), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        await c.get("/v1/nowhere")
        await c.put("/v1/videos/video_src_city")
    assert app.state.stats.by_operation["unknown"] == {404: 1}
    assert app.state.stats.by_operation["retrieve"] == {405: 1}


def test_config_repr_never_shows_the_key(make_config: MakeConfig) -> None:
    assert KEY not in repr(make_config(api_key=KEY))
