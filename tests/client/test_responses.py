"""Reading bodies with a size cap, parsing models, and building typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from remix_pipeline.client.errors import (
    ContractViolationError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
)
from remix_pipeline.client.responses import parse_model, read_capped, status_error
from remix_pipeline.contract import Video
from tests.support.fakes import video_json


class CountingStream(httpx.AsyncByteStream):
    """An endless body that counts how much of it was read."""

    def __init__(self) -> None:
        self.served = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.served += 1024
            yield b"x" * 1024


async def test_body_over_the_cap_is_refused_from_its_declared_length() -> None:
    response = httpx.Response(200, headers={"content-length": "5000"}, content=b"x" * 5000)
    with pytest.raises(ResponseTooLargeError, match="5000 bytes"):
        await read_capped(response, 4096)


async def test_undeclared_body_over_the_cap_is_refused_without_reading_it_all() -> None:
    stream = CountingStream()
    response = httpx.Response(200, stream=stream)
    with pytest.raises(ResponseTooLargeError):
        await read_capped(response, 64 * 1024)
    assert stream.served <= 65 * 1024


async def test_body_within_the_cap_is_returned_whole() -> None:
    response = httpx.Response(200, content=b"abc" * 100)
    assert await read_capped(response, 300) == b"abc" * 100


def test_non_json_body_is_a_contract_violation() -> None:
    with pytest.raises(ContractViolationError, match="not JSON"):
        parse_model(Video, b"<html>oops</html>")


def test_unknown_extra_fields_are_tolerated() -> None:
    video = parse_model(Video, httpx.Response(200, json={**video_json(), "quality": "hd"}).content)
    assert video.id == "video_1"


def test_error_envelope_fills_the_typed_error() -> None:
    response = httpx.Response(
        429,
        headers={"x-request-id": "req_9"},
        json={
            "error": {
                "message": "slow down",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
    )
    error = status_error(response, response.content)
    assert isinstance(error, RateLimitError)
    assert (error.message, error.type, error.code, error.request_id) == (
        "slow down",
        "requests",
        "rate_limit_exceeded",
        "req_9",
    )


def test_error_without_an_envelope_uses_the_body_text() -> None:
    response = httpx.Response(502, content=b"Bad Gateway from proxy")
    error = status_error(response, response.content)
    assert isinstance(error, ServerError)
    assert error.message == "Bad Gateway from proxy"
