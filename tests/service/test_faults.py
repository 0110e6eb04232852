"""Each injected fault is observable exactly as configured and reproducible for a seed."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest

from remix_pipeline.service import FaultConfig, create_app
from remix_pipeline.service import gateway as gateway_module
from remix_pipeline.service.faults import FaultInjector
from remix_pipeline.service.lifecycle import MODERATION_MESSAGE
from tests.support.clock import FakeClock
from tests.support.servers import MakeConfig


def _client(config, clock: FakeClock) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=create_app(config, clock=clock))
    return httpx.AsyncClient(transport=transport, base_url="http://s")


async def _statuses(config, clock: FakeClock, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    async with _client(config, clock) as client:
        return [(await client.get("/v1/videos/video_src_harbor")).status_code for _ in range(n)]


async def test_same_seed_gives_the_same_5xx_positions_and_statuses(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    faults = {"seed": 11, "error_rate": 0.3}
    first = await _statuses(make_config(faults=faults), clock, 60)
    again = await _statuses(make_config(faults=faults), clock, 60)
    other = await _statuses(make_config(faults={**faults, "seed": 12}), clock, 60)
    assert first == again
    assert first != other
    assert set(first) - {200} <= {500, 502, 503}
    assert 5 <= sum(s != 200 for s in first) <= 35


async def test_error_rate_one_answers_every_request_with_a_server_error_envelope(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    async with _client(make_config(faults={"error_rate": 1.0}), clock) as client:
        response = await client.post("/v1/videos", json={"prompt": "a cat"})
        assert response.status_code in (500, 502, 503)
        assert response.json()["error"]["type"] == "server_error"
        listed = (await client.get("/_admin/stats")).json()
    assert listed["by_operation"]["create"] != {"200": 1}


async def test_rate_limit_answers_429_with_the_exact_wait_until_a_slot_frees(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    config = make_config(faults={"requests_per_minute": 3})
    async with _client(config, clock) as client:
        for _ in range(3):
            assert (await client.get("/v1/videos")).status_code == 200
            clock.advance(1)
        refused = await client.get("/v1/videos")
        assert refused.status_code == 429
        assert (refused.headers["retry-after"], refused.headers["retry-after-ms"]) == (
            "57",
            "57000",
        )
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        clock.advance(56.5)
        later = await client.get("/v1/videos")
        assert (later.status_code, later.headers["retry-after-ms"]) == (429, "500")
        assert later.headers["retry-after"] == "1"
        clock.advance(0.5)
        assert (await client.get("/v1/videos")).status_code == 200


async def test_rate_limit_window_length_is_configurable(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    config = make_config(faults={"requests_per_minute": 1, "rate_window_seconds": 2})
    async with _client(config, clock) as client:
        await client.get("/v1/videos")
        assert (await client.get("/v1/videos")).headers["retry-after-ms"] == "2000"


async def test_latency_is_added_to_every_api_request(
    make_config: MakeConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(gateway_module.asyncio, "sleep", recording_sleep)
    async with _client(make_config(faults={"latency_ms": 250}), clock) as client:
        await client.get("/v1/videos")
        await client.post("/v1/videos", json={"prompt": "x"})
        await client.get("/_admin/stats")
    assert slept == [0.25, 0.25]


async def test_spikes_hold_a_seeded_share_of_requests_on_top_of_the_latency(
    make_config: MakeConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def held(seed: int) -> list[float]:
        slept: list[float] = []

        async def recording_sleep(seconds: float) -> None:
            slept.append(seconds)

        monkeypatch.setattr(gateway_module.asyncio, "sleep", recording_sleep)
        faults = {"seed": seed, "latency_ms": 10, "spike_rate": 0.3, "spike_ms": 2000}
        await _statuses(make_config(faults=faults), clock, 60)
        return slept

    first, again, other = await held(3), await held(3), await held(4)
    assert first == again
    assert first != other
    assert first.count(0.01) == 60  # the latency, on every request
    assert set(first) == {0.01, 2.0}
    assert 5 <= first.count(2.0) <= 35


async def test_a_spiked_create_makes_its_job_only_after_the_hold(
    make_config: MakeConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(faults={"spike_rate": 1.0, "spike_ms": 5000})
    jobs_during_hold: list[int] = []

    async def counting_sleep(seconds: float) -> None:
        with sqlite3.connect(config.db_path) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM videos WHERE prompt = 'held'").fetchone()
        jobs_during_hold.append(count)

    monkeypatch.setattr(gateway_module.asyncio, "sleep", counting_sleep)
    async with _client(config, clock) as client:
        created = await client.post("/v1/videos", json={"prompt": "held"})

    assert created.status_code == 200
    assert jobs_during_hold == [0]


def _garbling_of(body: bytes) -> str:
    try:
        video = json.loads(body)
    except ValueError:
        return "cut_short"
    if "id" not in video:
        return "missing_fields"
    return "unknown_status" if video["status"] == "melting" else "intact"


async def test_garbled_answers_are_seeded_and_broken_in_three_ways(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    async def garblings(seed: int) -> list[str]:
        config = make_config(faults={"seed": seed, "garble_rate": 0.5})
        async with _client(config, clock) as client:
            answers = [await client.get("/v1/videos/video_src_harbor") for _ in range(40)]
        assert {a.status_code for a in answers} == {200}
        return [_garbling_of(a.content) for a in answers]

    first, again, other = await garblings(1), await garblings(1), await garblings(2)
    assert first == again
    assert first != other
    assert set(first) == {"intact", "cut_short", "missing_fields", "unknown_status"}


async def test_a_garbled_remix_answer_still_made_its_job(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    config = make_config(faults={"garble_rate": 1.0})
    async with _client(config, clock) as client:
        answer = await client.post("/v1/videos/video_src_harbor/remix", json={"prompt": "p"})

    assert answer.status_code == 200
    assert _garbling_of(answer.content) != "intact"
    assert int(answer.headers["content-length"]) == len(answer.content)
    with sqlite3.connect(config.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM videos WHERE kind = 'remix'").fetchone() == (1,)


async def test_moderation_term_ends_the_job_moderation_blocked_case_insensitively(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    config = make_config(faults={"moderation_terms": ("Forbidden",)})
    async with _client(config, clock) as client:
        blocked = (await client.post("/v1/videos", json={"prompt": "a FORBIDDEN cat"})).json()
        fine = (await client.post("/v1/videos", json={"prompt": "a cat"})).json()
        clock.advance(10)
        blocked = (await client.get(f"/v1/videos/{blocked['id']}")).json()
        fine = (await client.get(f"/v1/videos/{fine['id']}")).json()
    assert blocked["status"] == "failed"
    assert blocked["error"] == {"code": "moderation_blocked", "message": MODERATION_MESSAGE}
    assert fine["status"] == "completed"


async def test_failure_rate_one_ends_every_job_generation_failed(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    async with _client(make_config(faults={"failure_rate": 1.0}), clock) as client:
        created = (await client.post("/v1/videos", json={"prompt": "a cat"})).json()
        remix = (await client.post("/v1/videos/video_src_city/remix", json={"prompt": "b"})).json()
        clock.advance(10)
        for video_id in (created["id"], remix["id"]):
            video = (await client.get(f"/v1/videos/{video_id}")).json()
            assert (video["status"], video["error"]["code"]) == ("failed", "generation_failed")


def test_same_seed_gives_the_same_job_outcomes_and_drops() -> None:
    config = FaultConfig(seed=5, failure_rate=0.4, drop_rate=0.4)
    runs = []
    for _ in range(2):
        injector = FaultInjector(config)
        runs.append(
            (
                [injector.outcome(f"p{n}") is None for n in range(40)],
                [injector.drop_response() for _ in range(40)],
            )
        )
    assert runs[0] == runs[1]
    assert 0 < sum(runs[0][0]) < 40 and 0 < sum(runs[0][1]) < 40


def test_a_moderation_term_does_not_shift_other_jobs_outcomes() -> None:
    prompts = ["a cat", "a banned dog", "a bird", "a fish"] * 5
    plain = FaultInjector(FaultConfig(seed=3, failure_rate=0.5))
    moderated = FaultInjector(FaultConfig(seed=3, failure_rate=0.5, moderation_terms=("banned",)))
    for prompt in prompts:
        a, b = plain.outcome(prompt), moderated.outcome(prompt)
        if "banned" in prompt:
            assert b is not None and b.code == "moderation_blocked"
        else:
            assert a == b


async def test_dropped_create_keeps_the_job_and_fails_the_response(
    make_config: MakeConfig, clock: FakeClock
) -> None:
    app = create_app(make_config(faults={"drop_rate": 1.0}), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        with pytest.raises(gateway_module.ResponseDropped):
            await client.post("/v1/videos", json={"prompt": "lost answer"})
        listed = (await client.get("/v1/videos", params={"limit": 1})).json()
    assert listed["data"][0]["prompt"] == "lost answer"
    assert app.state.stats.dropped["create"] == 1


async def test_failed_requests_are_never_dropped(make_config: MakeConfig, clock: FakeClock) -> None:
    async with _client(make_config(faults={"drop_rate": 1.0}), clock) as client:
        response = await client.post("/v1/videos", json={"prompt": ""})
        assert response.status_code == 400
        assert (await client.get("/v1/videos/video_src_city")).status_code == 200
