"""Dialects: the embedded service imitating the deviations of real compatible servers.

Real servers that speak the Videos API bend it (reference/compatible-servers.md). Serving the
same jobs with those bends lets the client's normalisation and the pipeline be proven against
each one without the real server. The default dialect, `openai`, is the contract itself and
installs nothing. The others rewrite requests and JSON answers at the ASGI edge:

- `litellm`: `processing` instead of `in_progress`, a `usage` key, null optional keys left
  out, and ids re-encoded with the provider and model (decoded again on the way in).
- `sglang`: no `in_progress` phase (a running job reads `queued`), lists with only
  `object` and `data`, content that ignores `variant`, extra keys.
- `vllm`: `size` as the rendered pixel size, `seconds` as a number, extra keys, no remix.
- `no-list`: no `GET /videos`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LITELLM_PREFIX = "litellm:openai:sora-2:"
_VIDEO_PATH = re.compile(r"^/v1/videos/(?P<id>[^/]+)(?P<rest>/.*)?$")
_RESERVED = frozenset({"edits", "extensions", "characters"})
_OPTIONAL = ("completed_at", "expires_at", "error", "remixed_from_video_id")


class Dialect(StrEnum):
    OPENAI = "openai"
    LITELLM = "litellm"
    SGLANG = "sglang"
    VLLM = "vllm"
    NO_LIST = "no-list"


def encode_litellm_id(video_id: str) -> str:
    raw = (LITELLM_PREFIX + video_id).encode()
    return "video_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_litellm_id(value: str) -> str:
    """The service's own id behind a re-encoded one; other ids pass through unchanged."""
    if not value.startswith("video_"):
        return value
    encoded = value.removeprefix("video_")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return value
    return raw.removeprefix(LITELLM_PREFIX) if raw.startswith(LITELLM_PREFIX) else value


class DialectMiddleware:
    """Rewrites one request and its JSON answer the way the chosen server would."""

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
        if self.dialect is Dialect.LITELLM:
            matched = _VIDEO_PATH.match(path)
            if matched and matched["id"] not in _RESERVED:
                path = f"/v1/videos/{decode_litellm_id(matched['id'])}{matched['rest'] or ''}"
            pairs = [(k, decode_litellm_id(v) if k == "after" else v) for k, v in parse_qsl(query)]
            query = urlencode(pairs)
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
        if self.dialect is Dialect.LITELLM:
            if video["status"] == "in_progress":
                video["status"] = "processing"
            video["id"] = encode_litellm_id(video["id"])
            video["usage"] = {"duration_seconds": int(video["seconds"])}
            for key in _OPTIONAL:
                if video.get(key) is None:
                    video.pop(key, None)
        elif self.dialect is Dialect.SGLANG:
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
