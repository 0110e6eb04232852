"""Turning HTTP responses into contract models or typed errors, with a cap on body size.

Bodies are streamed and counted, so a hostile or broken server cannot make the client hold
an unbounded body in memory before it notices.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from remix_pipeline.client.errors import (
    APIStatusError,
    ContractViolationError,
    ResponseTooLargeError,
    status_error_class,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

_MESSAGE_MAX_CHARS = 500


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The whole body of a streamed response, refusing anything over `cap` bytes."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ResponseTooLargeError(
            f"response body of {int(declared)} bytes is over the {cap}-byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise ResponseTooLargeError(f"response body is over the {cap}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_as_sent(model: type[ModelT], body: bytes) -> ModelT | None:
    """The body read straight into `model`, in one pass; None if it does not fit as it is
    (it may still fit once normalised, or be an error to report with `parse_model`)."""
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return None


def parse_model(
    model: type[ModelT], body: bytes, prepare: Callable[[Any], Any] | None = None
) -> ModelT:
    """`prepare` may reshape the decoded JSON (e.g. normalise a server's deviations) first."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ContractViolationError(
            f"server response is not JSON (expected a {model.__name__} object)"
        ) from None
    if prepare is not None:
        data = prepare(data)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ContractViolationError.from_validation(model.__name__, error) from None


def status_error(response: httpx.Response, body: bytes) -> APIStatusError:
    """The typed error for an error response, reading the OpenAI envelope when present.

    A gateway may wrap its upstream's envelope inside its own message (LiteLLM sends
    `"message": "litellm.NotFoundError: OpenAIException - {\"error\": {...}}"` with `param`
    null and `code` set to the HTTP status); the upstream's own fields are then the ones read.
    """
    detail: dict[str, object] = {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            detail = inner
    wrapped = _wrapped_envelope(detail.get("message"))
    if wrapped is not None:
        detail = {**wrapped, "type": wrapped.get("type") or detail.get("type")}
    message = _text(detail.get("message")) or _text(detail.get("detail"))
    if message is None:
        raw = body.decode("utf-8", errors="replace").strip()
        message = raw[:_MESSAGE_MAX_CHARS] or response.reason_phrase or "no message"
    return status_error_class(response.status_code)(
        message[:_MESSAGE_MAX_CHARS],
        status_code=response.status_code,
        type=_text(detail.get("type")),
        code=_text(detail.get("code")),
        param=_text(detail.get("param")),
        request_id=response.headers.get("x-request-id"),
    )


def _wrapped_envelope(message: object) -> dict[str, object] | None:
    """The `{"error": {...}}` object inside a gateway's message, if there is one."""
    if not isinstance(message, str):
        return None
    start = message.find('{"error"')
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(message, start)
    except json.JSONDecodeError:
        return None
    inner = data.get("error") if isinstance(data, dict) else None
    return inner if isinstance(inner, dict) and "message" in inner else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
