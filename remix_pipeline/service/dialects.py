"""Dialects: the embedded service imitating the deviations of real compatible servers.

Real servers that speak the Videos API bend it (reference/compatible-servers.md). Serving the
same jobs with those bends lets the client's normalisation and the pipeline be proven against
each one without the real server. An imitation must never contradict the real thing: where
one is measured, it follows the measurement, and what it cannot follow it leaves out and
says so. The default dialect, `openai`, is the contract itself and installs nothing. The
others rewrite requests and answers at the ASGI edge:

- `litellm`: the real LiteLLM proxy 1.108.7 in front of this service, with the plain config
  a new user writes and `num_retries: 0` (`remix_pipeline.service.litellm_dialect`, whose
  docstring lists what is imitated and what is not). Measured in
  reference/litellm-real.md; `tests/gateway` runs the real proxy, pins its behaviour
  (`test_litellm_facts.py`) and compares this imitation with it step by step
  (`test_imitation_matches_real.py`). In short: 242-character base64 ids naming the
  deployment, raw ids unroutable (500) unless a remix, edit or extension body names the
  model, create needing `model`, list a 400, DELETE a 405, every content variant the MP4,
  `prompt` dropped and `usage` added to Video answers, the service's errors wrapped in
  LiteLLM's envelope, retry headers renamed `llm_provider-*`, `x-litellm-*` headers. Not
  imitated: the router's retries of lost POSTs and 5xx (duplicate paid jobs) and its sleeping
  on a 429, `completion_model`, and calls to api.openai.com.
- `sglang`: no `in_progress` phase (a running job reads `queued`), lists with only
  `object` and `data`, content that ignores `variant`, extra keys.
- `vllm`: `size` as the rendered pixel size, `seconds` as a number, extra keys, no remix.
- `no-list`: no `GET /videos`.
"""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remix_pipeline.service.litellm_dialect import (
    LiteLLMDialect,
    decode_litellm_id,
    encode_litellm_id,
)

__all__ = [
    "Dialect",
    "DialectMiddleware",
    "decode_litellm_id",
    "dialect_middleware",
    "encode_litellm_id",
]


class Dialect(StrEnum):
    OPENAI = "openai"
    LITELLM = "litellm"
    SGLANG = "sglang"
    VLLM = "vllm"
    NO_LIST = "no-list"


def dialect_middleware(
    dialect: Dialect, *, api_key: str | None = None, media_scale: float = 1.0
) -> list[Middleware]:
    """The middleware that makes the service speak `dialect` (none for the contract)."""
    dialect = Dialect(dialect)
    if dialect is Dialect.OPENAI:
        return []
    if dialect is Dialect.LITELLM:
        return [Middleware(LiteLLMDialect, api_key=api_key)]
    return [Middleware(DialectMiddleware, dialect=dialect, media_scale=media_scale)]


class DialectMiddleware:
    """Rewrites one request and its JSON answer the way sglang, vLLM or a server without a
    list would (LiteLLM has its own middleware)."""

    def __init__(self, app: ASGIApp, *, dialect: Dialect, media_scale: float = 1.0) -> None:
        self.app = app
        self.dialect = Dialect(dialect)
        self.media_scale = media_scale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._unsupported(scope["method"], scope["path"]):
            await _not_found(scope["path"], send)
            return
        scope = self._request(scope)
        await self.app(scope, receive, _JsonRewriter(send, self._answer))

    def _unsupported(self, method: str, path: str) -> bool:
        if self.dialect is Dialect.NO_LIST:
            return method == "GET" and path.rstrip("/") == "/v1/videos"
        if self.dialect is Dialect.VLLM:
            return method == "POST" and path.endswith("/remix")
        return False

    def _request(self, scope: Scope) -> Scope:
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        if self.dialect is Dialect.SGLANG and path.endswith("/content"):
            query = urlencode([(k, v) for k, v in parse_qsl(query) if k != "variant"])
        return {**scope, "path": path, "raw_path": path.encode(), "query_string": query.encode()}

    def _answer(self, data: Any) -> Any:
        if isinstance(data, dict) and data.get("object") == "list":
            data["data"] = [self._video(item) for item in data.get("data", [])]
            if self.dialect is Dialect.SGLANG:
                return {"object": "list", "data": data["data"]}
            return data
        return self._video(data)

    def _video(self, video: Any) -> Any:
        if not isinstance(video, dict) or video.get("object") != "video":
            return video
        if self.dialect is Dialect.SGLANG:
            if video["status"] == "in_progress":
                video["status"], video["progress"] = "queued", 0
            video.update(quality="default", url=None, file_path=None, peak_memory_mb=512.0)
        elif self.dialect is Dialect.VLLM:
            width, height = (int(n) for n in video["size"].split("x"))
            video["size"] = f"{round(width * self.media_scale)}x{round(height * self.media_scale)}"
            video["seconds"] = int(video["seconds"])
            video.update(
                quality="default",
                media_type="video/mp4",
                file_name=f"{video['id']}.mp4",
                inference_time_s=None,
                peak_memory_mb=None,
            )
        return video


class _JsonRewriter:
    """An ASGI `send` that buffers a JSON answer, rewrites it, and fixes its length."""

    def __init__(self, send: Send, rewrite: Any) -> None:
        self.send = send
        self.rewrite = rewrite
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            if headers.get(b"content-type", b"").startswith(b"application/json"):
                self.start = message
                return
            await self.send(message)
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        # An answer the dialect cannot read (an error envelope, say) passes unchanged.
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            body = json.dumps(self.rewrite(json.loads(body))).encode()
        headers = [(k, v) for k, v in self.start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


async def _not_found(path: str, send: Send) -> None:
    """What a server without the route answers: the unknown-URL 404, naming no parameter."""
    body = json.dumps(
        {
            "error": {
                "message": f"Invalid URL (route {path[:200]} is not served).",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
