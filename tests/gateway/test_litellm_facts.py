"""What the real LiteLLM proxy 1.108.7 does in front of a Videos API server, one behaviour a
test, observed with raw httpx (and the upstream directly where a comparison is needed).

These are the facts the client adapts to; a LiteLLM upgrade that changes one fails its test
here first. The proxy's calls it cannot route to a deployment go to api.openai.com: the
fixtures point its proxy variables at a loopback trap, so those end here as a refused CONNECT
(a 500 to the client, as an unreachable OpenAI gives) and nothing leaves the machine.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.gateway import Gateway

from ..support.litellm_proxy import (
    ENCODED_ID,
    SECURITY_HEADERS,
    VIDEO_KEYS,
    decode_video_id,
    encode_video_id,
)

RAW_SOURCE = "video_src_harbor"
DEPLOYMENT_ID = re.compile(r"^[0-9a-f]{64}$")


def prompt(label: str) -> str:
    """A prompt no other test sends, to find this test's jobs in the shared upstream."""
    return f"{label} {uuid.uuid4().hex}"


def create(client: httpx.Client, label: str = "create", **body: Any) -> httpx.Response:
    answer = client.post("/videos", json={"model": "sora-2", "prompt": prompt(label), **body})
    assert answer.status_code == 200, answer.text
    return answer


def completed(client: httpx.Client, video_id: str) -> dict[str, Any]:
    for _ in range(200):
        video = client.get(f"/videos/{video_id}").json()
        if video["status"] == "completed":
            return video
        time.sleep(0.05)
    raise AssertionError(f"{video_id} did not complete: {video}")


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}, body
    return body["error"]


def assert_identifies_litellm(answer: httpx.Response) -> None:
    assert answer.headers["x-litellm-version"] == "1.108.7"
    uuid.UUID(answer.headers["x-litellm-call-id"])
    assert "server" not in answer.headers


# (1) List


def test_list_answers_400_llm_provider_not_provided(gateway: Gateway):
    with gateway.client() as client:
        answer = client.get("/videos", params={"limit": 100, "order": "desc"})
    assert answer.status_code == 400
    error = error_of(answer)
    assert "LLM Provider NOT provided" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "400"
    assert error["param"] is None


# (2) Ids


def test_create_returns_a_242_character_base64_id_naming_the_deployment(gateway: Gateway):
    with gateway.client() as client:
        video = create(client).json()
    video_id = video["id"]
    assert len(video_id) == 242
    assert ENCODED_ID.match(video_id)
    fields = decode_video_id(video_id)
    assert list(fields) == ["custom_llm_provider", "model_id", "video_id", "deployment_id"]
    assert fields["custom_llm_provider"] == "openai"
    assert fields["model_id"] == "sora-2"
    assert DEPLOYMENT_ID.match(fields["deployment_id"])
    (row,) = gateway.upstream_videos("id = ?", fields["video_id"])
    assert row["kind"] == "create"
    # The round trip is exact: the id is standard base64 of the plain text.
    assert encode_video_id(fields) == video_id


@pytest.mark.parametrize("model", [None, "sora-9"], ids=["no-model", "unknown-model"])
def test_create_needs_a_configured_group_as_model(gateway: Gateway, model: str | None):
    """LiteLLM's own 400: `code` the status, plus `provider_specific_fields`."""
    body = {"prompt": prompt("unrouted create")} | ({"model": model} if model else {})
    with gateway.client() as client:
        answer = client.post("/videos", json=body)
    assert answer.status_code == 400
    message = (
        f"/videos: Invalid model name passed in model={model}. "
        "Call `/v1/models` to view available models for your key."
    )
    assert answer.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "400",
            "provider_specific_fields": {"error": message},
        }
    }
    assert gateway.upstream_videos("prompt = ?", body["prompt"]) == []


def test_retrieve_of_an_encoded_id_returns_the_same_id(gateway: Gateway):
    with gateway.client() as client:
        video_id = create(client).json()["id"]
        answer = client.get(f"/videos/{video_id}")
    assert answer.status_code == 200
    assert answer.json()["id"] == video_id


def test_every_deployment_of_one_proxy_names_its_own_deployment_id(gateway: Gateway):
    with gateway.client() as client:
        plain = decode_video_id(create(client).json()["id"])
        pro = decode_video_id(create(client, model="sora-2-pro").json()["id"])
    assert pro["model_id"] == "sora-2-pro"
    assert pro["deployment_id"] != plain["deployment_id"]


# (3) Raw ids and remix


def test_retrieve_of_a_raw_id_is_sent_to_openai(gateway: Gateway):
    before = len(gateway.egress)
    with gateway.client() as client:
        answer = client.get(f"/videos/{RAW_SOURCE}")
    assert answer.status_code == 500
    error = error_of(answer)
    assert error["type"] == "internal_server_error"
    assert error["code"] == "500"
    assert gateway.egress[before:] == ["CONNECT api.openai.com:443 HTTP/1.1"]


def test_remix_of_a_raw_id_without_a_body_model_is_sent_to_openai(gateway: Gateway):
    before = len(gateway.egress)
    text = prompt("raw remix without model")
    with gateway.client() as client:
        answer = client.post(f"/videos/{RAW_SOURCE}/remix", json={"prompt": text})
    assert answer.status_code == 500
    assert error_of(answer)["code"] == "500"
    assert gateway.egress[before:] == ["CONNECT api.openai.com:443 HTTP/1.1"]
    assert gateway.upstream_videos("prompt = ?", text) == []


def test_remix_of_a_raw_id_with_a_body_model_reaches_the_upstream(gateway: Gateway):
    text = prompt("raw remix with model")
    with gateway.client() as client:
        answer = client.post(
            f"/videos/{RAW_SOURCE}/remix", json={"prompt": text, "model": "sora-2"}
        )
    assert answer.status_code == 200, answer.text
    video = answer.json()
    assert video["remixed_from_video_id"] == RAW_SOURCE
    fields = decode_video_id(video["id"])
    assert fields["model_id"] == "sora-2"
    (row,) = gateway.upstream_videos("prompt = ?", text)
    assert row["id"] == fields["video_id"]
    assert row["kind"] == "remix"
    assert row["remixed_from_video_id"] == RAW_SOURCE


def test_remix_of_an_encoded_id_names_the_raw_upstream_id_as_its_source(gateway: Gateway):
    text = prompt("encoded remix")
    with gateway.client() as client:
        source = create(client).json()["id"]
        completed(client, source)
        answer = client.post(f"/videos/{source}/remix", json={"prompt": text})
    assert answer.status_code == 200, answer.text
    raw_source = decode_video_id(source)["video_id"]
    assert answer.json()["remixed_from_video_id"] == raw_source
    assert answer.json()["remixed_from_video_id"] != source
    (row,) = gateway.upstream_videos("prompt = ?", text)
    assert row["remixed_from_video_id"] == raw_source


# The body-less remix probe (a client asking "is remix served?" without paying)


@pytest.mark.parametrize("body", [{}, {"model": "sora-2"}], ids=["empty", "model-only"])
@pytest.mark.parametrize("which", ["raw", "encoded", "unknown-raw", "unknown-encoded"])
def test_remix_without_a_prompt_is_refused_by_litellm_itself(
    gateway: Gateway, which: str, body: dict[str, str]
):
    """Whatever the id, with or without `model`: LiteLLM's own 400 naming `prompt`, before
    routing, so nothing reaches the upstream or OpenAI and the answer says nothing about
    whether the id could be remixed."""
    with gateway.client() as client:
        encoded = create(client).json()["id"]
        ids = {
            "raw": RAW_SOURCE,
            "encoded": encoded,
            "unknown-raw": "video_remix_pipeline_capability_probe",
            "unknown-encoded": encode_video_id(
                {**decode_video_id(encoded), "video_id": "video_" + "0" * 32}
            ),
        }
        before_egress = len(gateway.egress)
        before_jobs = len(gateway.upstream_videos())
        answer = client.post(f"/videos/{ids[which]}/remix", json=body)
    assert answer.status_code == 400
    assert error_of(answer) == {
        "message": "/videos/{video_id}/remix: Missing required parameter: 'prompt'.",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "400",
    }
    assert_identifies_litellm(answer)
    assert len(gateway.egress) == before_egress
    assert len(gateway.upstream_videos()) == before_jobs


def test_the_upstream_refuses_the_same_probe_with_its_own_envelope(gateway: Gateway):
    """For comparison: the server behind the proxy answers the probe of a raw id itself."""
    with gateway.upstream_client() as upstream:
        answer = upstream.post(f"/videos/{RAW_SOURCE}/remix", json={})
    assert answer.status_code == 400
    error = error_of(answer)
    assert error == {
        "message": "Missing required parameter: 'prompt'.",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "missing_required_parameter",
    }
    assert "x-litellm-version" not in answer.headers


# (4) Content


def test_content_drops_the_variant_and_returns_the_mp4(gateway: Gateway):
    with gateway.client() as client:
        video_id = create(client).json()["id"]
        completed(client, video_id)
        answers = {
            variant: client.get(f"/videos/{video_id}/content", params={"variant": variant})
            for variant in ("video", "thumbnail", "spritesheet")
        }
    raw = decode_video_id(video_id)["video_id"]
    with gateway.upstream_client() as upstream:
        direct = upstream.get(f"/videos/{raw}/content", params={"variant": "thumbnail"})
    assert direct.headers["content-type"] == "image/webp"
    for answer in answers.values():
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "video/mp4"
        assert answer.content[4:8] == b"ftyp"
        assert answer.content == answers["video"].content
        assert answer.headers["content-length"] == str(len(answer.content))
        assert answer.headers["content-disposition"] == f"attachment; filename=video_{video_id}.mp4"


# (5) Delete


def test_delete_answers_405_with_fastapis_detail(gateway: Gateway):
    with gateway.client() as client:
        video_id = create(client).json()["id"]
        answer = client.delete(f"/videos/{video_id}")
        still_there = client.get(f"/videos/{video_id}")
    assert answer.status_code == 405
    assert answer.json() == {"detail": "Method Not Allowed"}
    assert answer.headers["allow"] == "GET"
    assert still_there.status_code == 200


# (6) The Video object


def test_create_answer_lacks_prompt_carries_usage_and_keeps_null_keys(gateway: Gateway):
    with gateway.client() as client:
        video = create(client, seconds="4").json()
        later = client.get(f"/videos/{video['id']}").json()
    assert set(video) == VIDEO_KEYS - {"prompt"} | {"usage"}
    assert video["usage"] == {"duration_seconds": 4.0}
    assert isinstance(video["usage"]["duration_seconds"], float)
    for key in ("completed_at", "expires_at", "error", "remixed_from_video_id"):
        assert key in video
        assert video[key] is None
    assert video["status"] == "queued"
    assert set(later) == VIDEO_KEYS - {"prompt"} | {"usage"}
    assert later["usage"] is None


def test_status_passes_through_unchanged(gateway: Gateway):
    with gateway.client() as client:
        video_id = create(client).json()["id"]
        seen = set()
        for _ in range(200):
            seen.add(client.get(f"/videos/{video_id}").json()["status"])
            if "completed" in seen:
                break
            time.sleep(0.02)
    assert seen <= {"queued", "in_progress", "completed"}
    assert "completed" in seen
    assert "processing" not in seen


def test_model_is_rewritten_to_the_group_that_routed_the_call(gateway: Gateway):
    """`video_src_dunes` is a sora-2-pro video; its remix routed through group sora-2 is a
    sora-2-pro job upstream, and LiteLLM says sora-2."""
    text = prompt("dunes remix")
    with gateway.client() as client:
        video = client.post(
            "/videos/video_src_dunes/remix", json={"prompt": text, "model": "sora-2"}
        ).json()
        later = client.get(f"/videos/{video['id']}").json()
    (row,) = gateway.upstream_videos("prompt = ?", text)
    with gateway.upstream_client() as upstream:
        direct = upstream.get(f"/videos/{row['id']}").json()
    assert row["model"] == direct["model"] == "sora-2-pro"
    assert video["model"] == later["model"] == "sora-2"


# (7) Errors from the upstream


def test_an_upstream_404_comes_back_wrapped(gateway: Gateway):
    with gateway.client() as client:
        fields = decode_video_id(create(client).json()["id"])
        unknown = encode_video_id({**fields, "video_id": "video_" + "0" * 32})
        answer = client.get(f"/videos/{unknown}")
    assert answer.status_code == 404
    error = error_of(answer)
    assert error["param"] is None
    assert error["code"] == "404"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("litellm.BadRequestError: OpenAIException - {")
    assert "No video found with id 'video_00000000000000000000000000000000'." in error["message"]
    assert '"param":"video_id","code":"not_found"' in error["message"]
    assert error["message"].endswith(
        "LiteLLM: model group 'sora-2' failed with the error above. No fallback was attempted."
    )
    # The upstream's own headers come along, renamed.
    assert answer.headers["llm_provider-server"] == "uvicorn"
    assert answer.headers["llm_provider-x-request-id"] == answer.headers["request-id"]
    assert "x-request-id" not in answer.headers


# (8) Authentication


def test_a_wrong_key_answers_400_no_connected_db(gateway: Gateway):
    answer = httpx.get(
        f"{gateway.base_url}/videos/{RAW_SOURCE}", headers={"Authorization": "Bearer sk-wrong"}
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "No connected db.",
            "type": "no_db_connection",
            "param": None,
            "code": "400",
        }
    }


def test_no_key_answers_a_bare_500(gateway: Gateway):
    answer = httpx.get(f"{gateway.base_url}/videos/{RAW_SOURCE}")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text == "Internal Server Error"


def test_the_key_is_also_accepted_in_x_litellm_api_key(gateway: Gateway):
    with gateway.client() as client:
        video_id = create(client).json()["id"]
    answer = httpx.get(
        f"{gateway.base_url}/videos/{video_id}",
        headers={"x-litellm-api-key": f"Bearer {gateway.master_key}"},
    )
    assert answer.status_code == 200


# (9) 429


def test_a_429_passes_through_with_renamed_retry_headers_when_retries_are_off(
    gateway_rate_limited: Gateway,
):
    """The upstream admits one request a minute (LiteLLM's start-up call may have used it)."""
    with gateway_rate_limited.client() as client:
        for _ in range(3):
            answer = client.post("/videos", json={"model": "sora-2", "prompt": prompt("limited")})
            if answer.status_code == 429:
                break
    assert answer.status_code == 429
    assert 0 < int(answer.headers["llm_provider-retry-after"]) <= 60
    assert 0 < int(answer.headers["llm_provider-retry-after-ms"]) <= 60_000
    assert "retry-after" not in answer.headers
    assert "retry-after-ms" not in answer.headers
    error = error_of(answer)
    assert error["type"] == "throttling_error"
    assert error["code"] == "429"
    assert error["param"] is None
    assert error["message"].startswith("litellm.RateLimitError: RateLimitError: OpenAIException")
    assert '"code":"rate_limit_exceeded"' in error["message"]
    assert_identifies_litellm(answer)


# (10) Headers


def test_openai_poll_after_ms_is_dropped(gateway: Gateway):
    with gateway.upstream_client() as upstream:
        direct = upstream.post("/videos", json={"model": "sora-2", "prompt": prompt("direct")})
    assert "openai-poll-after-ms" in direct.headers
    with gateway.client() as client:
        created = create(client)
        retrieved = client.get(f"/videos/{created.json()['id']}")
    assert "openai-poll-after-ms" not in created.headers
    assert "openai-poll-after-ms" not in retrieved.headers


def test_json_answers_identify_litellm_with_version_and_call_id(gateway: Gateway):
    """Success and error answers of the video routes carry `x-litellm-version` and a
    `x-litellm-call-id` (a UUID), and no `server` header; routed ones also name the group."""
    with gateway.client() as client:
        created = create(client)
        answers = {
            "create": created,
            "retrieve": client.get(f"/videos/{created.json()['id']}"),
            "list 400": client.get("/videos"),
            "raw retrieve 500": client.get(f"/videos/{RAW_SOURCE}"),
            "remix 400": client.post(f"/videos/{RAW_SOURCE}/remix", json={}),
        }
    for name, answer in answers.items():
        assert answer.headers["content-type"] == "application/json", name
        assert_identifies_litellm(answer)
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers[header] == value, (name, header)
    for name in ("create", "retrieve"):
        headers = answers[name].headers
        assert headers["x-litellm-model-group"] == "sora-2"
        assert headers["x-litellm-model-name"] == "openai/sora-2"
        assert headers["x-litellm-model-api-base"] == gateway.upstream_base_url
        assert DEPLOYMENT_ID.match(headers["x-litellm-model-id"])
        assert headers["x-litellm-attempted-retries"] == "0"
    assert float(answers["create"].headers["x-litellm-response-cost"]) == pytest.approx(0.4)


def test_content_405_and_auth_answers_carry_no_litellm_header(gateway: Gateway):
    """Only LiteLLM's security headers mark these; a request without a key gets none."""
    with gateway.client() as client:
        video_id = create(client).json()["id"]
        completed(client, video_id)
        answers = {
            "content": client.get(f"/videos/{video_id}/content"),
            "delete 405": client.delete(f"/videos/{video_id}"),
        }
    answers["wrong key"] = httpx.get(
        f"{gateway.base_url}/videos/{video_id}", headers={"Authorization": "Bearer sk-wrong"}
    )
    answers["liveliness"] = httpx.get(f"{gateway.proxy.root_url}/health/liveliness")
    for name, answer in answers.items():
        assert not [h for h in answer.headers if h.startswith("x-litellm-")], name
        assert "server" not in answer.headers, name
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers[header] == value, (name, header)
    bare = httpx.get(f"{gateway.base_url}/videos/{video_id}")
    assert not set(SECURITY_HEADERS) & set(bare.headers)


def test_the_upstream_itself_sends_none_of_these_headers(gateway: Gateway):
    with gateway.upstream_client() as upstream:
        answer = upstream.get(f"/videos/{RAW_SOURCE}")
    assert answer.status_code == 200
    assert answer.headers["server"] == "uvicorn"
    assert not [h for h in answer.headers if h.startswith("x-litellm-")]
    assert not set(SECURITY_HEADERS) & set(answer.headers)


# Retries of a POST whose answer was lost


def test_a_create_whose_answer_was_lost_is_retried_and_makes_a_second_job(
    gateway_dropping: Gateway,
):
    """Default router settings: the upstream cuts off ~20% of its create answers (seeded),
    LiteLLM sends the create again, and the client sees one job while two were made."""
    with gateway_dropping.client() as client:
        for _ in range(20):
            text = prompt("dropped")
            answer = client.post("/videos", json={"model": "sora-2", "prompt": text})
            rows = gateway_dropping.upstream_videos("prompt = ?", text)
            if answer.status_code == 200 and len(rows) > 1:
                break
    assert answer.status_code == 200, answer.text
    assert int(answer.headers["x-litellm-attempted-retries"]) >= 1
    assert len(rows) >= 2
    assert decode_video_id(answer.json()["id"])["video_id"] == rows[-1]["id"]


# `general_settings.completion_model` (with `num_retries: 0`)


def test_completion_model_serves_a_list_that_ignores_its_query(gateway_completion_model: Gateway):
    with gateway_completion_model.client() as client:
        create(client)
        first = client.get("/videos", params={"limit": 2, "order": "asc"})
        again = client.get("/videos", params={"after": first.json()["last_id"]})
    assert first.status_code == 200
    page = first.json()
    assert len(page["data"]) > 2
    assert [v["id"] for v in again.json()["data"]] == [v["id"] for v in page["data"]]
    created = [v["created_at"] for v in page["data"]]
    assert created == sorted(created, reverse=True)
    for video in page["data"]:
        # The list's ids name no deployment, so they differ from create's and retrieve's.
        fields = decode_video_id(video["id"])
        assert list(fields) == ["custom_llm_provider", "model_id", "video_id"]
        assert ENCODED_ID.match(video["id"])
        assert "prompt" in video
        assert "usage" not in video
    assert any(v["id"].endswith("=") for v in page["data"])
    assert decode_video_id(page["last_id"])["video_id"] == fields["video_id"]


def test_completion_model_answers_a_raw_retrieve_with_another_id(
    gateway_completion_model: Gateway,
):
    with gateway_completion_model.client() as client:
        answer = client.get(f"/videos/{RAW_SOURCE}")
    assert answer.status_code == 200
    video_id = answer.json()["id"]
    fields = decode_video_id(video_id)
    # model_id is the deployment's hash here, not the group's name.
    assert fields["model_id"] == fields["deployment_id"]
    assert DEPLOYMENT_ID.match(fields["model_id"])
    assert fields["video_id"] == RAW_SOURCE
    assert gateway_completion_model.egress == []


def test_completion_model_remixes_a_raw_id_without_a_body_model(
    gateway_completion_model: Gateway,
):
    text = prompt("raw remix, completion_model")
    with gateway_completion_model.client() as client:
        answer = client.post(f"/videos/{RAW_SOURCE}/remix", json={"prompt": text})
    assert answer.status_code == 200, answer.text
    video = answer.json()
    assert len(video["id"]) == 322
    assert video["id"].endswith("==")
    assert video["remixed_from_video_id"] == RAW_SOURCE
    (row,) = gateway_completion_model.upstream_videos("prompt = ?", text)
    assert decode_video_id(video["id"])["video_id"] == row["id"]


def test_completion_model_overrides_the_model_of_a_create(gateway_completion_model: Gateway):
    """Asked for sora-2-pro, the upstream gets sora-2, and the answer still says sora-2-pro."""
    text = prompt("pro create, completion_model")
    with gateway_completion_model.client() as client:
        video = client.post("/videos", json={"model": "sora-2-pro", "prompt": text}).json()
    (row,) = gateway_completion_model.upstream_videos("prompt = ?", text)
    assert row["model"] == "sora-2"
    assert video["model"] == "sora-2-pro"
    assert decode_video_id(video["id"])["model_id"] == "sora-2"


# The config


def test_keys_are_read_from_the_environment_and_written_nowhere(gateway: Gateway):
    config = gateway.proxy.config_path.read_text()
    assert "api_key: os.environ/" in config
    assert "master_key: os.environ/" in config
    with open(f"/proc/{gateway.proxy.pid}/cmdline", "rb") as cmdline:
        command = cmdline.read().decode()
    with gateway.client() as client:
        create(client)  # the upstream requires its key: LiteLLM read it
    for key in (gateway.master_key, gateway.upstream_key):
        assert key not in config
        assert key not in command
        assert key not in gateway.proxy.log_path.read_text()
