"""`--dialect litellm` seen with plain httpx: each behaviour of the real LiteLLM proxy that
tests/gateway/test_litellm_facts.py pins, reproduced offline by the imitation.

The ids are read with the same decoder the facts use on the real proxy's ids
(`tests.support.litellm_proxy`), so the two are held to one definition.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest

from remix_pipeline.service.config import FaultConfig, ServiceConfig
from remix_pipeline.service.dialects import decode_litellm_id, encode_litellm_id
from tests.support.embedded import raw_http
from tests.support.servers import MakeConfig

from ..support.litellm_proxy import (
    ENCODED_ID,
    SECURITY_HEADERS,
    VIDEO_KEYS,
    decode_video_id,
    encode_video_id,
)

SOURCE = "video_src_harbor"
LITELLM_VIDEO_KEYS = VIDEO_KEYS - {"prompt"} | {"usage"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
SUFFIX = "\n\nLiteLLM: model group 'sora-2' failed with the error above. No fallback was attempted."


@pytest.fixture
def config(make_config: MakeConfig) -> ServiceConfig:
    return make_config("litellm")


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex}"


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await http.post("/videos", json={"model": "sora-2", "prompt": unique("c"), **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def completed(http: httpx.AsyncClient, video_id: str) -> dict[str, Any]:
    for _ in range(400):
        video = (await http.get(f"/videos/{video_id}")).json()
        if video["status"] == "completed":
            return video
        await asyncio.sleep(0.01)
    raise AssertionError(f"{video_id} never completed")


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}, body
    return body["error"]


def litellm_headers(answer: httpx.Response) -> set[str]:
    return {h for h in answer.headers if h.startswith("x-litellm-")}


async def service_jobs(make_config: MakeConfig, prompt: str) -> list[dict[str, Any]]:
    """The service's own jobs with `prompt`, seen without the dialect (same database)."""
    async with raw_http(make_config("openai")) as direct:
        listed = (await direct.get("/videos", params={"limit": 100})).json()["data"]
    return [job for job in listed if job["prompt"] == prompt]


# Ids


async def test_create_answers_a_242_character_standard_base64_id_naming_the_deployment(config):
    async with raw_http(config) as http:
        video = await create(http)
        pro = await create(http, model="sora-2-pro")
        again = await http.get(f"/videos/{video['id']}")
    fields = decode_video_id(video["id"])
    assert len(video["id"]) == 242
    assert ENCODED_ID.match(video["id"])
    assert list(fields) == ["custom_llm_provider", "model_id", "video_id", "deployment_id"]
    assert fields["custom_llm_provider"] == "openai"
    assert fields["model_id"] == "sora-2"
    assert HEX64.match(fields["deployment_id"])
    assert encode_video_id(fields) == video["id"]
    assert decode_litellm_id(video["id"]) == fields["video_id"]
    assert encode_litellm_id(fields["video_id"]) == video["id"]
    # Each group is its own deployment; `=` padding whenever the length needs it.
    assert decode_video_id(pro["id"])["deployment_id"] != fields["deployment_id"]
    assert pro["id"].endswith("==")
    assert again.status_code == 200
    assert again.json()["id"] == video["id"]


async def test_remix_of_an_encoded_id_names_the_raw_source(config):
    async with raw_http(config) as http:
        source = await create(http)
        await completed(http, source["id"])
        remix = await http.post(f"/videos/{source['id']}/remix", json={"prompt": unique("r")})
    assert remix.status_code == 200, remix.text
    assert remix.json()["remixed_from_video_id"] == decode_video_id(source["id"])["video_id"]
    assert remix.json()["remixed_from_video_id"] != source["id"]


# Raw ids and the body model


async def test_retrieve_and_content_of_a_raw_id_are_unroutable(config):
    async with raw_http(config) as http:
        answers = [
            await http.get(f"/videos/{SOURCE}"),
            await http.get(f"/videos/{SOURCE}/content"),
        ]
    for answer in answers:
        assert answer.status_code == 500
        error = error_of(answer)
        assert error["type"] == "internal_server_error"
        assert error["code"] == "500"
        assert error["param"] is None
        assert error["message"].startswith("litellm.InternalServerError: ")
        assert "api.openai.com" in error["message"]
        assert answer.headers["x-litellm-version"] == "1.108.7"


async def test_a_raw_remix_reaches_the_service_only_with_a_body_model(config, make_config):
    without, with_model = unique("raw remix"), unique("raw remix with model")
    async with raw_http(config) as http:
        refused = await http.post(f"/videos/{SOURCE}/remix", json={"prompt": without})
        routed = await http.post(
            f"/videos/{SOURCE}/remix", json={"prompt": with_model, "model": "sora-2"}
        )
        unknown = await http.post(
            f"/videos/{SOURCE}/remix", json={"prompt": unique("x"), "model": "sora-9"}
        )
    assert refused.status_code == 500
    assert error_of(refused)["message"].startswith("litellm.InternalServerError: None - ")
    assert await service_jobs(make_config, without) == []
    # The service refuses unknown fields, so a 200 also says `model` was not forwarded.
    assert routed.status_code == 200, routed.text
    video = routed.json()
    assert video["remixed_from_video_id"] == SOURCE
    (job,) = await service_jobs(make_config, with_model)
    assert decode_video_id(video["id"])["video_id"] == job["id"]
    assert unknown.status_code == 400
    assert error_of(unknown)["message"] == (
        "litellm.BadRequestError: You passed in model=sora-9. There are no healthy deployments "
        "for this model\n\nLiteLLM: model group 'sora-9' failed with the error above. No "
        "fallback was attempted."
    )


@pytest.mark.parametrize("model", [None, "sora-9"], ids=["no-model", "unknown-model"])
async def test_create_needs_a_configured_group_as_model(config, make_config, model):
    body = {"prompt": unique("unrouted create")} | ({"model": model} if model else {})
    async with raw_http(config) as http:
        answer = await http.post("/videos", json=body)
    message = (
        f"/videos: Invalid model name passed in model={model}. "
        "Call `/v1/models` to view available models for your key."
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "400",
            "provider_specific_fields": {"error": message},
        }
    }
    assert await service_jobs(make_config, body["prompt"]) == []


async def test_edit_and_extension_read_the_source_id_in_the_body(config):
    async with raw_http(config) as http:
        source = await create(http)
        await completed(http, source["id"])
        edit = await http.post(
            "/videos/edits", json={"prompt": unique("e"), "video": {"id": source["id"]}}
        )
        extension = await http.post(
            "/videos/extensions",
            json={"prompt": unique("x"), "seconds": "4", "video": {"id": source["id"]}},
        )
        raw = await http.post("/videos/edits", json={"prompt": "e", "video": {"id": SOURCE}})
        raw_routed = await http.post(
            "/videos/edits", json={"prompt": "e", "model": "sora-2", "video": {"id": SOURCE}}
        )
    raw_source = decode_video_id(source["id"])["video_id"]
    for answer in (edit, extension):
        assert answer.status_code == 200, answer.text
        assert answer.json()["remixed_from_video_id"] == raw_source
        assert answer.json()["usage"] is None
        assert set(answer.json()) == LITELLM_VIDEO_KEYS
    assert extension.json()["seconds"] == "8"
    assert raw.status_code == 500
    assert raw_routed.status_code == 200, raw_routed.text
    assert raw_routed.json()["remixed_from_video_id"] == SOURCE


# LiteLLM's own refusals


@pytest.mark.parametrize("which", ["raw", "encoded", "unknown"])
async def test_remix_without_a_prompt_is_refused_by_litellm_itself(config, which):
    async with raw_http(config) as http:
        ids = {
            "raw": SOURCE,
            "encoded": (await create(http))["id"],
            "unknown": "video_remix_pipeline_capability_probe",
        }
        answer = await http.post(f"/videos/{ids[which]}/remix", json={})
    assert answer.status_code == 400
    assert error_of(answer) == {
        "message": "/videos/{video_id}/remix: Missing required parameter: 'prompt'.",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "400",
    }
    assert answer.headers["x-litellm-version"] == "1.108.7"


async def test_an_extension_needs_seconds(config):
    async with raw_http(config) as http:
        source = await create(http)
        answer = await http.post(
            "/videos/extensions", json={"prompt": "more", "video": {"id": source["id"]}}
        )
    assert answer.status_code == 400
    assert error_of(answer)["message"] == (
        "/videos/extensions: Missing required parameter: 'seconds'."
    )


async def test_list_answers_400_llm_provider_not_provided(config):
    async with raw_http(config) as http:
        answer = await http.get("/videos", params={"limit": 100, "order": "desc"})
    assert answer.status_code == 400
    error = error_of(answer)
    assert "LLM Provider NOT provided" in error["message"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "400")


async def test_delete_is_fastapis_405_and_the_video_stays(config):
    async with raw_http(config) as http:
        video = await create(http)
        answer = await http.delete(f"/videos/{video['id']}")
        still_there = await http.get(f"/videos/{video['id']}")
        unknown_path = await http.get(f"/videos/{video['id']}/nothing")
    assert answer.status_code == 405
    assert answer.json() == {"detail": "Method Not Allowed"}
    assert answer.headers["allow"] == "GET"
    assert not litellm_headers(answer)
    assert still_there.status_code == 200
    assert unknown_path.status_code == 404
    assert unknown_path.json() == {"detail": "Not Found"}


# The Video object and content


async def test_video_answers_lack_prompt_carry_usage_and_keep_null_keys(config):
    statuses = set()
    async with raw_http(config) as http:
        video = await create(http, seconds="4")
        for _ in range(400):
            later = (await http.get(f"/videos/{video['id']}")).json()
            statuses.add(later["status"])
            if later["status"] == "completed":
                break
            await asyncio.sleep(0.005)
    assert set(video) == LITELLM_VIDEO_KEYS
    assert video["usage"] == {"duration_seconds": 4.0}
    assert isinstance(video["usage"]["duration_seconds"], float)
    for key in ("completed_at", "expires_at", "error", "remixed_from_video_id"):
        assert video[key] is None
    assert set(later) == LITELLM_VIDEO_KEYS
    assert later["usage"] is None
    # The status passes through: no `processing` alias for the openai provider.
    assert statuses <= {"queued", "in_progress", "completed"}
    assert "completed" in statuses


async def test_model_is_the_group_that_routed_the_call(config, make_config):
    """`video_src_dunes` is a sora-2-pro video; its remix routed through group sora-2 is a
    sora-2-pro job for the service, and the answer says sora-2."""
    text = unique("dunes remix")
    async with raw_http(config) as http:
        answer = await http.post(
            "/videos/video_src_dunes/remix", json={"prompt": text, "model": "sora-2"}
        )
    (job,) = await service_jobs(make_config, text)
    assert job["model"] == "sora-2-pro"
    assert answer.json()["model"] == "sora-2"


async def test_content_drops_the_variant_and_returns_the_mp4(config):
    async with raw_http(config) as http:
        video = await create(http)
        await completed(http, video["id"])
        answers = {
            variant: await http.get(f"/videos/{video['id']}/content", params={"variant": variant})
            for variant in ("video", "thumbnail", "spritesheet")
        }
    for answer in answers.values():
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "video/mp4"
        assert answer.content[4:8] == b"ftyp"
        assert answer.content == answers["video"].content
        assert answer.headers["content-disposition"] == (
            f"attachment; filename=video_{video['id']}.mp4"
        )
        assert not litellm_headers(answer)


# Errors and headers


async def test_a_service_error_comes_back_wrapped_with_its_headers_renamed(config):
    async with raw_http(config) as http:
        fields = decode_video_id((await create(http))["id"])
        unknown = encode_video_id({**fields, "video_id": "video_" + "0" * 32})
        answer = await http.get(f"/videos/{unknown}")
    assert answer.status_code == 404
    error = error_of(answer)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "404")
    assert error["message"].startswith("litellm.BadRequestError: OpenAIException - {")
    assert "No video found with id 'video_00000000000000000000000000000000'." in error["message"]
    assert '"param":"video_id","code":"not_found"' in error["message"]
    assert error["message"].endswith(SUFFIX)
    assert answer.headers["llm_provider-server"] == "uvicorn"
    assert answer.headers["llm_provider-x-request-id"] == answer.headers["request-id"]
    assert "x-request-id" not in answer.headers


async def test_a_429_passes_with_renamed_retry_headers(make_config):
    config = make_config("litellm", faults=FaultConfig(requests_per_minute=1))
    async with raw_http(config) as http:
        first = await http.post("/videos", json={"model": "sora-2", "prompt": unique("first")})
        answer = await http.post("/videos", json={"model": "sora-2", "prompt": unique("second")})
    assert first.status_code == 200
    assert answer.status_code == 429
    assert 0 < int(answer.headers["llm_provider-retry-after"]) <= 60
    assert 0 < int(answer.headers["llm_provider-retry-after-ms"]) <= 60_000
    assert "retry-after" not in answer.headers
    assert "retry-after-ms" not in answer.headers
    error = error_of(answer)
    assert (error["type"], error["param"], error["code"]) == ("throttling_error", None, "429")
    assert error["message"].startswith("litellm.RateLimitError: RateLimitError: OpenAIException")
    assert '"code":"rate_limit_exceeded"' in error["message"]


async def test_an_answer_lost_after_its_status_line_is_a_500_though_the_job_exists(make_config):
    config = make_config("litellm", faults=FaultConfig(drop_rate=1.0))
    text = unique("dropped")
    async with raw_http(config) as http:
        answer = await http.post("/videos", json={"model": "sora-2", "prompt": text})
    assert answer.status_code == 500
    error = error_of(answer)
    assert error["type"] == "internal_server_error"
    assert "Response payload is not completed" in error["message"]
    assert error["message"].endswith(SUFFIX)
    assert len(await service_jobs(make_config, text)) == 1


async def test_json_answers_identify_litellm_and_drop_the_poll_hint(config):
    async with raw_http(config) as http:
        created = await http.post("/videos", json={"model": "sora-2", "prompt": unique("h")})
        answers = {
            "create": created,
            "retrieve": await http.get(f"/videos/{created.json()['id']}"),
            "list 400": await http.get("/videos"),
            "raw retrieve 500": await http.get(f"/videos/{SOURCE}"),
            "remix 400": await http.post(f"/videos/{SOURCE}/remix", json={}),
        }
    for name, answer in answers.items():
        assert answer.headers["content-type"] == "application/json", name
        assert answer.headers["x-litellm-version"] == "1.108.7", name
        uuid.UUID(answer.headers["x-litellm-call-id"])
        assert "openai-poll-after-ms" not in answer.headers, name
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers[header] == value, (name, header)
    for name in ("create", "retrieve"):
        headers = answers[name].headers
        assert headers["x-litellm-model-group"] == "sora-2"
        assert headers["x-litellm-model-name"] == "openai/sora-2"
        assert HEX64.match(headers["x-litellm-model-id"])
        assert headers["x-litellm-attempted-retries"] == "0"
    assert float(answers["create"].headers["x-litellm-response-cost"]) == pytest.approx(0.4)


async def test_routes_without_the_v1_prefix_are_served_too(config):
    async with raw_http(config) as http:
        video = await create(http)
        answer = await http.get(f"http://embedded/videos/{video['id']}")
    assert answer.status_code == 200
    assert answer.json()["id"] == video["id"]


# Authentication (the service's key is the proxy's master key)


async def test_a_missing_key_is_a_bare_500_and_a_wrong_one_no_connected_db(make_config):
    config = make_config("litellm", api_key="sk-imitation")
    async with raw_http(config) as http:
        bare = await http.get(f"/videos/{SOURCE}")
        wrong = await http.get(f"/videos/{SOURCE}", headers={"Authorization": "Bearer sk-no"})
        other_header = await http.post(
            "/videos",
            json={"model": "sora-2", "prompt": unique("k")},
            headers={"x-litellm-api-key": "Bearer sk-imitation"},
        )
    assert bare.status_code == 500
    assert bare.headers["content-type"] == "text/plain; charset=utf-8"
    assert bare.text == "Internal Server Error"
    assert wrong.status_code == 400
    assert wrong.json()["error"] == {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": None,
        "code": "400",
    }
    assert other_header.status_code == 200, other_header.text


# Characters


async def test_a_character_is_routed_only_by_target_model_names(config):
    video = ("character.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    async with raw_http(config) as http:
        unrouted = await http.post(
            "/videos/characters", files={"name": (None, "hero"), "video": video}
        )
        made = await http.post(
            "/videos/characters",
            files={"name": (None, "hero"), "target_model_names": (None, "sora-2"), "video": video},
        )
        fetched = await http.get(f"/videos/characters/{made.json()['id']}")
        missing = await http.post("/videos/characters", json={"name": "hero"})
    assert unrouted.status_code == 500
    assert made.status_code == 200, made.text
    character = made.json()
    assert character["id"].startswith("character_")
    assert character["object"] == "character"
    assert fetched.status_code == 200
    assert fetched.json() == character
    assert missing.status_code == 422
    assert [d["loc"] for d in missing.json()["detail"]] == [["body", "video"], ["body", "name"]]
