"""Seeing through a gateway: its ids, its headers, its wrapped errors and renamed delays.

The shapes are the real LiteLLM proxy's (reference/litellm-real.md, pinned against the real
proxy in tests/gateway/test_litellm_facts.py); the fakes here only replay them so each
client rule is proved alone.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from remix_pipeline.client import (
    Deviation,
    ListUnavailableError,
    NotFoundError,
    OutcomeUnknownError,
)
from remix_pipeline.client.gateways import (
    Gateway,
    gateway_of,
    is_gateway_encoded,
    same_video,
    upstream_id,
)
from remix_pipeline.client.responses import status_error
from remix_pipeline.client.retry import server_delay
from remix_pipeline.contract import id_problem
from tests.support.fakes import Recorder, fake_client, video_json

DEPLOYMENT = "654d90523b836bdf6400bffb1b93b2e5a436934012a2dc710178095db624feb8"
LITELLM_HEADERS = {"x-litellm-version": "1.108.7", "x-litellm-call-id": "c0ffee"}


def litellm_id(raw: str, *, deployment: bool = True) -> str:
    """LiteLLM's encoding: standard base64 (with padding) of its routing data."""
    text = f"litellm:custom_llm_provider:openai;model_id:sora-2;video_id:{raw}"
    if deployment:
        text += f";deployment_id:{DEPLOYMENT}"
    return "video_" + base64.b64encode(text.encode()).decode()


RAW = "video_463da148312abc8046001e17fa553f6f"
ENCODED = litellm_id(RAW)


def test_a_litellm_id_of_242_characters_is_a_valid_id() -> None:
    assert len(ENCODED) == 242
    assert id_problem(ENCODED) is None


def test_a_padded_litellm_list_id_is_a_valid_id() -> None:
    listed = litellm_id("video_src_harbor", deployment=False)
    assert listed.endswith("=")
    assert id_problem(listed) is None


@pytest.mark.parametrize("hostile", ["a/b", "../x", "x=y", "a+b", "a.b", "=", "a%2f", "x" * 513])
def test_ids_that_could_change_a_path_are_still_refused(hostile: str) -> None:
    assert id_problem(hostile) is not None


def test_the_upstream_id_is_read_out_of_every_litellm_encoding() -> None:
    assert upstream_id(ENCODED) == RAW
    assert upstream_id(litellm_id(RAW, deployment=False)) == RAW
    assert is_gateway_encoded(ENCODED)


@pytest.mark.parametrize("plain", ["video_src_harbor", RAW, "video_123", "char_abc"])
def test_an_id_no_gateway_encoded_is_its_own_upstream_id(plain: str) -> None:
    assert upstream_id(plain) == plain
    assert not is_gateway_encoded(plain)


def test_the_same_video_is_recognised_across_a_gateways_encodings() -> None:
    assert same_video(ENCODED, RAW)
    assert same_video(litellm_id(RAW, deployment=False), ENCODED)
    assert not same_video(ENCODED, "video_other")
    assert not same_video(None, RAW)


def test_a_litellm_answer_is_recognised_by_its_headers() -> None:
    assert gateway_of(httpx.Headers(LITELLM_HEADERS)) is Gateway.LITELLM
    assert gateway_of(httpx.Headers({"x-request-id": "req_1"})) is None


def test_a_wrapped_upstream_error_is_read_as_the_upstreams_own() -> None:
    upstream = {
        "error": {
            "message": "No video found with id 'video_doesnotexist'.",
            "type": "invalid_request_error",
            "param": "video_id",
            "code": "not_found",
        }
    }
    body = {
        "error": {
            "message": "litellm.BadRequestError: OpenAIException - "
            + json.dumps(upstream)
            + "\n\nLiteLLM: model group 'sora-2' failed with the error above.",
            "type": "invalid_request_error",
            "param": None,
            "code": "404",
        }
    }
    error = status_error(httpx.Response(404, json=body), json.dumps(body).encode())
    assert isinstance(error, NotFoundError)
    assert (error.code, error.param) == ("not_found", "video_id")
    assert error.message == "No video found with id 'video_doesnotexist'."


def test_a_framework_405_body_still_gives_a_message() -> None:
    body = b'{"detail":"Method Not Allowed"}'
    error = status_error(httpx.Response(405, content=body), body)
    assert error.message == "Method Not Allowed"


def test_the_delay_a_gateway_renames_is_honoured() -> None:
    headers = {"llm_provider-retry-after": "60", "llm_provider-retry-after-ms": "59064"}
    assert server_delay(headers) == pytest.approx(59.064)
    assert server_delay({"llm_provider-retry-after": "7"}) == 7.0
    assert server_delay({"retry-after": "2", "llm_provider-retry-after": "60"}) == 2.0


async def test_ids_are_escaped_as_one_path_segment() -> None:
    listed = litellm_id("video_src_harbor", deployment=False)
    recorder = Recorder(lambda request: httpx.Response(200, json=video_json(listed)))
    async with fake_client(recorder) as client:
        await client.retrieve(listed)
    (request,) = recorder.requests
    escaped = listed.replace("=", "%3D")
    assert request.url.raw_path.decode() == f"/v1/videos/{escaped}"


def gateway_server(*, list_status: int = 400) -> Recorder:
    """LiteLLM with the plain config: every JSON answer carries its headers, the list is
    refused, a remix probe is a 400 naming `prompt`, and a remix answers a raw source."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith("/videos"):
            body = {"error": {"message": "LLM Provider NOT provided", "type": "x", "code": "400"}}
            return httpx.Response(list_status, json=body, headers=LITELLM_HEADERS)
        if path.endswith("/remix"):
            sent = json.loads(request.content or b"{}")
            if "prompt" not in sent:
                body = {"error": {"message": "prompt", "type": "x", "param": "prompt"}}
                return httpx.Response(400, json=body, headers=LITELLM_HEADERS)
            made = video_json(ENCODED, remixed_from_video_id="video_src_harbor")
            return httpx.Response(200, json=made, headers=LITELLM_HEADERS)
        video_id = path.rsplit("/", 1)[-1]
        return httpx.Response(200, json=video_json(video_id), headers=LITELLM_HEADERS)

    return Recorder(handle)


async def test_through_litellm_a_remix_body_names_the_model_it_routes_by() -> None:
    recorder = gateway_server()
    async with fake_client(recorder, gateway_model="sora-2-pro") as client:
        profile = await client.learn_server()
        video = await client.remix("video_src_harbor", "make it rain")
    assert profile.gateway is Gateway.LITELLM
    assert Deviation.GATEWAY in client.deviations.seen
    assert json.loads(recorder.requests[-1].content) == {
        "prompt": "make it rain",
        "model": "sora-2-pro",
    }
    assert video.id == ENCODED


async def test_a_server_without_a_gateway_never_gets_a_model_in_a_remix_body() -> None:
    made = video_json("video_9", remixed_from_video_id="video_src_harbor")
    recorder = Recorder(
        lambda request: (
            httpx.Response(200, json=made)
            if b"prompt" in request.content
            else httpx.Response(400, json={"error": {"message": "x", "type": "y", "param": "p"}})
        )
    )
    async with fake_client(recorder) as client:
        await client.learn_server()
        await client.remix("video_src_harbor", "make it rain")
    assert json.loads(recorder.requests[-1].content) == {"prompt": "make it rain"}


async def test_a_remix_of_an_encoded_id_answered_with_its_raw_source_is_accepted() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=video_json("video_new", remixed_from_video_id=RAW))

    async with fake_client(Recorder(handle)) as client:
        video = await client.remix(ENCODED, "again")
    assert video.remixed_from_video_id == RAW


async def test_a_remix_answered_with_another_source_hands_over_the_paid_jobs_id() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        made = video_json("video_paid", remixed_from_video_id="video_someone_else")
        return httpx.Response(200, json=made)

    async with fake_client(Recorder(handle)) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.remix("video_src_harbor", "rain")
    assert caught.value.job_id == "video_paid"


async def test_a_list_refused_with_400_is_learned_once_and_polls_go_one_by_one() -> None:
    recorder = gateway_server()
    async with fake_client(recorder) as client:
        with pytest.raises(ListUnavailableError):
            _ = [v async for v in client.list()]
        found = await client.bulk_status([ENCODED, "video_two"])
        found_again = await client.bulk_status([ENCODED])
    lists = [r for r in recorder.requests if r.url.path.endswith("/videos")]
    assert len(lists) == 1
    assert set(found) == {ENCODED, "video_two"} and set(found_again) == {ENCODED}
    assert client.profile.list_unavailable
    assert Deviation.NO_LIST in client.deviations.seen
