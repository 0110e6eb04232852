"""VideosClient against fake servers that misbehave on purpose (statuses, broken bodies).

The same behaviours against the real embedded service are in test_client_service.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from remix_pipeline.client import (
    BadRequestError,
    ClientSettings,
    ConnectionFailedError,
    ContractViolationError,
    Deviation,
    InvalidArgumentError,
    InvalidVideoIdError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    VideosClient,
)
from remix_pipeline.contract import InvalidIdError
from tests.support.builders import HOSTILE_IDS
from tests.support.fakes import (
    MARKER_KEY,
    Recorder,
    error_json,
    fake_client,
    fast_settings,
    video_json,
)


def answers(*responses: httpx.Response | Exception) -> Recorder:
    """A fake that plays `responses` in order, repeating the last one forever."""
    script = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, Exception):
            raise item
        return item

    return Recorder(handler)


def ok_video(**kwargs: object) -> httpx.Response:
    return httpx.Response(200, json=video_json(**kwargs))  # type: ignore[arg-type]


# IDs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
async def test_hostile_id_is_rejected_before_any_request(hostile: str) -> None:
    recorder = answers(ok_video())
    async with fake_client(recorder) as client:
        calls = [
            client.retrieve(hostile),
            client.delete(hostile),
            client.remix(hostile, "a prompt"),
            client.download(hostile, "video", Path("/nonexistent/never")),
            client.bulk_status(["video_ok", hostile]),
        ]
        for call in calls:
            with pytest.raises(InvalidVideoIdError):
                await call
        with pytest.raises(InvalidVideoIdError):
            client.list(after=hostile)
    assert recorder.requests == []


def test_invalid_id_error_is_also_the_contract_error_type() -> None:
    assert issubclass(InvalidVideoIdError, InvalidIdError)


# POSTs that may have created a job -----------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        error_json(500),
        error_json(503, **{"retry-after": "0"}),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.ReadError("connection reset by peer"),
        httpx.WriteTimeout("write timed out"),
        httpx.Response(200, content=b"not json at all"),
        httpx.Response(200, json={**video_json(), "status": "exploded"}),
        httpx.Response(200, json=video_json(remixed_from_video_id="video_other")),
    ],
    ids=[
        "500",
        "503",
        "read-timeout",
        "dropped",
        "reset",
        "write-timeout",
        "non-json",
        "bad-video",
        "another-source",
    ],
)
async def test_remix_that_may_have_created_a_job_is_not_repeated(
    failure: httpx.Response | Exception,
) -> None:
    recorder = answers(failure, ok_video())
    before = time.time()
    async with fake_client(recorder) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.remix("video_src", "make it blue")
    assert len(recorder.requests) == 1
    error = caught.value
    assert (error.source_video_id, error.prompt) == ("video_src", "make it blue")
    assert before <= error.sent_at <= time.time()
    assert error.cause is not None
    assert client.stats.outcome_unknown == 1


async def test_create_outcome_unknown_has_no_source_video() -> None:
    recorder = answers(httpx.ReadTimeout("read timed out"))
    async with fake_client(recorder) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.create("a cat")
    assert caught.value.source_video_id is None
    assert len(recorder.requests) == 1


async def test_remix_is_retried_when_the_connection_never_opened() -> None:
    recorder = answers(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok_video())
    async with fake_client(recorder) as client:
        video = await client.remix("video_src", "p")
    assert video.id == "video_1"
    assert len(recorder.requests) == 3


@pytest.mark.parametrize("status", [408, 409, 429])
async def test_remix_the_server_refused_is_retried(status: int) -> None:
    recorder = answers(error_json(status, **{"retry-after-ms": "5"}), ok_video())
    async with fake_client(recorder) as client:
        await client.remix("video_src", "p")
    assert len(recorder.requests) == 2
    assert client.stats.retries == 1


async def test_remix_rejected_as_bad_request_raises_at_once() -> None:
    recorder = answers(error_json(400, "Invalid 'prompt'"), ok_video())
    async with fake_client(recorder) as client:
        with pytest.raises(BadRequestError, match="Invalid 'prompt'"):
            await client.remix("video_src", "p")
    assert len(recorder.requests) == 1


async def test_remix_sends_its_prompt_as_json() -> None:
    recorder = answers(ok_video(remixed_from_video_id="video_src"))
    async with fake_client(recorder) as client:
        await client.remix("video_src", "make it blue")
    (request,) = recorder.requests
    assert request.url.path == "/v1/videos/video_src/remix"
    assert json.loads(request.content) == {"prompt": "make it blue"}


async def test_create_sends_multipart_fields_like_the_official_sdk() -> None:
    recorder = answers(ok_video())
    async with fake_client(recorder) as client:
        await client.create("a cat", seconds="8", size="1280x720")
    (request,) = recorder.requests
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.read().decode()
    assert 'name="prompt"' in body and "a cat" in body
    assert 'name="seconds"' in body and 'name="size"' in body and 'name="model"' not in body


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 32_001])
async def test_unusable_prompt_is_refused_before_sending(prompt: str) -> None:
    recorder = answers(ok_video())
    async with fake_client(recorder) as client:
        with pytest.raises(InvalidArgumentError):
            await client.remix("video_src", prompt)
    assert recorder.requests == []


# Safe requests ---------------------------------------------------------------------------


async def test_retrieve_rides_out_a_burst_of_server_errors() -> None:
    recorder = answers(error_json(500), error_json(502), error_json(503), ok_video())
    async with fake_client(recorder) as client:
        video = await client.retrieve("video_1")
    assert video.id == "video_1"
    assert (len(recorder.requests), client.stats.retries, client.stats.server_errors) == (4, 3, 3)


async def test_retrieve_gives_up_with_server_error_after_max_attempts() -> None:
    recorder = answers(error_json(500))
    async with fake_client(recorder, max_attempts=4) as client:
        with pytest.raises(ServerError):
            await client.retrieve("video_1")
    assert len(recorder.requests) == 4


async def test_retrieve_of_unknown_video_raises_not_found_without_retrying() -> None:
    recorder = answers(error_json(404, "No video found"))
    async with fake_client(recorder) as client:
        with pytest.raises(NotFoundError):
            await client.retrieve("video_1")
    assert len(recorder.requests) == 1


async def test_server_wait_past_the_budget_raises_rate_limit_at_once() -> None:
    recorder = answers(error_json(429, **{"retry-after": "3600"}), ok_video())
    async with fake_client(recorder, max_retry_seconds=30) as client:
        with pytest.raises(RateLimitError):
            await client.retrieve("video_1")
    assert len(recorder.requests) == 1
    assert client.stats.rate_limited == 1


async def test_should_retry_false_stops_retries() -> None:
    recorder = answers(error_json(503, **{"x-should-retry": "false"}), ok_video())
    async with fake_client(recorder) as client:
        with pytest.raises(ServerError):
            await client.retrieve("video_1")
    assert len(recorder.requests) == 1


async def test_timeouts_on_a_safe_request_end_as_request_timeout_after_bounds() -> None:
    recorder = answers(httpx.ReadTimeout("read timed out"))
    async with fake_client(recorder, max_attempts=3) as client:
        with pytest.raises(RequestTimeoutError, match="3 attempt"):
            await client.retrieve("video_1")
    assert len(recorder.requests) == 3


async def test_connection_failures_on_delete_end_as_connection_failed_after_bounds() -> None:
    recorder = answers(httpx.RemoteProtocolError("server disconnected"))
    async with fake_client(recorder, max_attempts=3) as client:
        with pytest.raises(ConnectionFailedError):
            await client.delete("video_1")
    assert len(recorder.requests) == 3


async def test_delete_is_retried_after_a_dropped_response() -> None:
    deleted = httpx.Response(
        200, json={"id": "video_1", "object": "video.deleted", "deleted": True}
    )
    recorder = answers(httpx.RemoteProtocolError("dropped"), deleted)
    async with fake_client(recorder) as client:
        result = await client.delete("video_1")
    assert result.deleted is True
    assert len(recorder.requests) == 2


# Contract and size -----------------------------------------------------------------------


async def test_status_outside_the_contract_names_the_field() -> None:
    recorder = answers(httpx.Response(200, json={**video_json(), "status": "exploded"}))
    async with fake_client(recorder) as client:
        with pytest.raises(ContractViolationError, match=r"Video\.status: 'exploded' is not one"):
            await client.retrieve("video_1")


async def test_a_garbled_answer_to_a_safe_request_is_asked_for_again() -> None:
    recorder = answers(httpx.Response(200, content=b'{"id": "vid'), ok_video())
    async with fake_client(recorder) as client:
        video = await client.retrieve("video_1")
    assert video.id == "video_1"
    assert len(recorder.requests) == 2
    assert (client.stats.malformed, client.stats.retries) == (1, 1)


async def test_json_body_over_the_cap_is_refused() -> None:
    big = {**video_json(), "padding": "x" * 10_000}
    recorder = answers(httpx.Response(200, json=big))
    async with fake_client(recorder, max_json_bytes=4096) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.retrieve("video_1")


# Listing ---------------------------------------------------------------------------------


def paged_server(total: int) -> Recorder:
    """A fake list endpoint over `total` videos, newest first, honouring after and limit."""
    ids = [f"video_{n:04d}" for n in range(total, 0, -1)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/videos":
            video_id = request.url.path.rsplit("/", 1)[1]
            return ok_video(video_id=video_id, created_at=int(video_id[6:]))
        limit = int(request.url.params.get("limit", "20"))
        after = request.url.params.get("after")
        start = ids.index(after) + 1 if after else 0
        chunk = ids[start : start + limit]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": [video_json(i, created_at=int(i[6:])) for i in chunk],
                "first_id": chunk[0] if chunk else None,
                "last_id": chunk[-1] if chunk else None,
                "has_more": start + limit < total,
            },
        )

    return Recorder(handler)


async def test_list_follows_every_page() -> None:
    recorder = paged_server(25)
    async with fake_client(recorder) as client:
        seen = [video.id async for video in client.list(limit=10)]
    assert seen == [f"video_{n:04d}" for n in range(25, 0, -1)]
    assert len(recorder.requests) == 3


async def test_list_that_answers_the_same_page_again_is_read_once_as_ignoring_its_cursor() -> None:
    """A gateway that drops the query (LiteLLM) answers every `after` with the first page:
    the videos are yielded once, and the client remembers that this list cannot page."""
    page = {
        "object": "list",
        "data": [video_json("video_1"), video_json("video_2")],
        "first_id": "video_1",
        "last_id": "video_2",
        "has_more": True,
    }
    recorder = answers(httpx.Response(200, json=page))
    async with fake_client(recorder) as client:
        seen = [video.id async for video in client.list()]
        assert client.profile.list_ignores_cursor
        assert Deviation.LIST_IGNORES_CURSOR in client.deviations.seen
    assert seen == ["video_1", "video_2"]
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(("order", "limit"), [("newest", None), ("desc", 0), ("asc", 101)])
def test_list_arguments_are_checked_at_the_call(order: str, limit: int | None) -> None:
    client = fake_client(answers(ok_video()))
    with pytest.raises(InvalidArgumentError):
        client.list(order=order, limit=limit)


async def test_bulk_status_falls_back_to_retrieve_when_the_server_cannot_list() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/videos":
            return error_json(404, "no such route")
        video_id = request.url.path.rsplit("/", 1)[1]
        if video_id == "video_gone":
            return error_json(404, "No video found")
        return ok_video(video_id=video_id)

    recorder = Recorder(handler)
    async with fake_client(recorder) as client:
        found = await client.bulk_status(["video_a", "video_b", "video_gone"])
    assert sorted(found) == ["video_a", "video_b"]


async def test_bulk_status_stops_listing_at_jobs_older_than_wanted() -> None:
    recorder = paged_server(1000)
    async with fake_client(recorder, list_page_size=100) as client:
        found = await client.bulk_status(["video_0990", "video_0001"], created_after=900.0)
    assert sorted(found) == ["video_0001", "video_0990"]
    paths = [r.url.path for r in recorder.requests]
    # The first page (1000..901) is all newer than 900; the second reaches 900..801: stop
    # listing, and fetch the old one directly.
    assert paths.count("/v1/videos") == 2
    assert paths.count("/v1/videos/video_0001") == 1
    assert len(paths) == 3


# Downloads -------------------------------------------------------------------------------

MEDIA = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 512


class _Breaking(httpx.AsyncByteStream):
    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield MEDIA[:5000]
        raise httpx.ReadError("connection reset mid-stream")


def media_server(*, breaks: int) -> Recorder:
    """Breaks the first `breaks` downloads mid-stream, then serves the whole file."""
    remaining = [breaks]

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "video/mp4", "content-length": str(len(MEDIA))}
        if remaining[0] > 0:
            remaining[0] -= 1
            return httpx.Response(200, headers=headers, stream=_Breaking())
        return httpx.Response(200, headers=headers, content=MEDIA)

    return Recorder(handler)


async def test_download_interrupted_every_time_leaves_no_file(tmp_path: Path) -> None:
    recorder = media_server(breaks=100)
    target = tmp_path / "video.mp4"
    async with fake_client(recorder, max_attempts=3) as client:
        with pytest.raises(ConnectionFailedError):
            await client.download("video_1", "video", target)
    assert list(tmp_path.iterdir()) == []
    assert len(recorder.requests) == 3


async def test_download_restarts_after_an_interruption_and_completes(tmp_path: Path) -> None:
    recorder = media_server(breaks=1)
    async with fake_client(recorder) as client:
        result = await client.download("video_1", "video", tmp_path / "video.mp4")
    assert result.sha256 == hashlib.sha256(MEDIA).hexdigest()
    assert (tmp_path / "video.mp4").read_bytes() == MEDIA
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]
    request = recorder.requests[-1]
    assert (request.url.params["variant"], request.headers["accept"]) == (
        "video",
        "application/binary",
    )


async def test_download_of_unknown_variant_is_refused_before_sending(tmp_path: Path) -> None:
    recorder = media_server(breaks=0)
    async with fake_client(recorder) as client:
        with pytest.raises(InvalidArgumentError, match="variant"):
            await client.download("video_1", "poster", tmp_path / "x")
    assert recorder.requests == []


# Configuration and secrets ---------------------------------------------------------------


async def test_key_is_sent_only_as_a_bearer_header(marker_key: str) -> None:
    recorder = answers(ok_video())
    async with fake_client(recorder) as client:
        await client.retrieve("video_1")
    (request,) = recorder.requests
    assert request.headers["authorization"] == f"Bearer {marker_key}"
    assert marker_key not in str(request.url)


async def test_key_never_appears_in_reprs_errors_or_logs(
    marker_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = answers(
        error_json(401, "Incorrect API key provided"),
        httpx.ReadTimeout("timed out"),
    )
    settings = fast_settings()
    client = VideosClient.from_settings(settings, transport=recorder.transport())
    texts = [repr(client), repr(settings), str(settings.model_dump()), repr(client._http)]
    async with client:
        for call in (client.retrieve("video_1"), client.remix("video_1", "p")):
            try:
                await call
            except Exception as error:
                texts += [str(error), repr(error), repr(getattr(error, "cause", None))]
    texts.append(caplog.text)
    assert len(recorder.requests) == 2
    assert all(marker_key not in text for text in texts)


def test_base_url_comes_from_the_environment_when_settings_name_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env-server.test:9000/v1")
    client = VideosClient.from_settings(ClientSettings(), transport=answers(ok_video()).transport())
    assert client.base_url == "http://env-server.test:9000/v1"


def test_display_url_hides_user_info_and_query() -> None:
    settings = ClientSettings(base_url="https://user:hunter2@gw.test/v1?key=hunter2")
    client = VideosClient.from_settings(settings, transport=answers(ok_video()).transport())
    assert "hunter2" not in client.base_url
    assert "hunter2" not in repr(client)


@pytest.mark.parametrize("url", ["ftp://x.test/v1", "not a url", "http:///v1"])
def test_unusable_base_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="base URL"):
        VideosClient.from_settings(ClientSettings(base_url=url))


def test_settings_are_frozen_and_hold_only_the_key_name() -> None:
    settings = ClientSettings()
    with pytest.raises(ValueError):
        settings.max_attempts = 3  # type: ignore[misc]
    assert settings.api_key_env == "OPENAI_API_KEY"
    assert MARKER_KEY not in repr(settings)
