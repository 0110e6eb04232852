"""What the embedded service answers in each dialect, seen with plain httpx (LiteLLM's in
test_litellm_dialect.py)."""

from __future__ import annotations

import asyncio

from tests.support.embedded import raw_http
from tests.support.servers import MakeConfig

SOURCE = "video_src_harbor"


async def remix_and_watch(config, seen_statuses: set[str]) -> dict:
    async with raw_http(config) as http:
        made = (await http.post(f"/videos/{SOURCE}/remix", json={"prompt": "Make it noir"})).json()
        for _ in range(400):
            video = (await http.get(f"/videos/{made['id']}")).json()
            seen_statuses.add(video["status"])
            if video["status"] in ("completed", "failed"):
                return video
            await asyncio.sleep(0.005)
    raise AssertionError("the job never ended")


async def test_openai_dialect_answers_every_contract_key_and_nothing_else(make_config: MakeConfig):
    statuses: set[str] = set()
    video = await remix_and_watch(make_config("openai"), statuses)
    assert len(video) == 13
    assert statuses <= {"queued", "in_progress", "completed"}
    assert video["remixed_from_video_id"] == SOURCE


async def test_sglang_dialect_has_no_in_progress_phase(make_config: MakeConfig):
    statuses: set[str] = set()
    video = await remix_and_watch(make_config("sglang", run_seconds=0.5), statuses)
    assert "in_progress" not in statuses
    assert video["status"] == "completed"
    assert {"quality", "file_path", "peak_memory_mb"} <= set(video)


async def test_sglang_dialect_lists_without_cursors(make_config: MakeConfig):
    async with raw_http(make_config("sglang")) as http:
        listed = (await http.get("/videos", params={"limit": 2})).json()
    assert set(listed) == {"object", "data"}
    assert len(listed["data"]) == 2


async def test_sglang_dialect_content_ignores_the_variant(make_config: MakeConfig):
    async with raw_http(make_config("sglang")) as http:
        thumbnail = await http.get(f"/videos/{SOURCE}/content", params={"variant": "thumbnail"})
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "video/mp4"


async def test_vllm_dialect_has_free_form_size_numeric_seconds_and_extra_keys(
    make_config: MakeConfig,
):
    async with raw_http(make_config("vllm")) as http:
        video = (await http.get(f"/videos/{SOURCE}")).json()
    width, height = (int(n) for n in video["size"].split("x"))
    assert video["size"] not in ("720x1280", "1280x720", "1024x1792", "1792x1024")
    assert width > 0 and height > 0
    assert isinstance(video["seconds"], int)
    assert {"quality", "media_type", "file_name", "inference_time_s"} <= set(video)


async def test_vllm_dialect_has_no_remix_route(make_config: MakeConfig):
    async with raw_http(make_config("vllm")) as http:
        answer = await http.post(f"/videos/{SOURCE}/remix", json={"prompt": "Make it noir"})
        listed = (await http.get("/videos")).json()
    assert answer.status_code == 404
    assert answer.json()["error"]["param"] is None
    assert all(v["remixed_from_video_id"] is None for v in listed["data"])


async def test_no_list_dialect_refuses_list_but_serves_retrieve(make_config: MakeConfig):
    async with raw_http(make_config("no-list")) as http:
        listed = await http.get("/videos")
        one = await http.get(f"/videos/{SOURCE}")
    assert listed.status_code == 404
    assert one.status_code == 200
