"""Fake servers for the client tests: recording fakes, JSON bodies and settings with fast
backoff.

Fakes are used only where they are the honest tool (a server that misbehaves on purpose);
end-to-end behaviour is tested against the real embedded service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from remix_pipeline.client import ClientSettings, VideosClient

MARKER_KEY = "sk-marker-7f3c9e1d0b5a4c2e-never-print-me"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def video_json(
    video_id: str = "video_1",
    *,
    status: str = "queued",
    created_at: int = 1_700_000_000,
    prompt: str | None = "a prompt",
    remixed_from_video_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": video_id,
        "object": "video",
        "model": "sora-2",
        "status": status,
        "progress": 0,
        "created_at": created_at,
        "completed_at": None,
        "expires_at": None,
        "prompt": prompt,
        "size": "720x1280",
        "seconds": "4",
        "remixed_from_video_id": remixed_from_video_id,
        "error": None,
    }


def error_json(status: int, message: str = "nope", **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "test_error", "param": None, "code": None}}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class Recorder:
    """A fake server: answers with `handler` and keeps every request it saw."""

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, httpx.Response)
        return result

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def fast_settings(**overrides: Any) -> ClientSettings:
    """Settings whose backoff is milliseconds, so retry tests stay quick."""
    values: dict[str, Any] = {
        "base_url": "http://fake.test/v1",
        "backoff_base_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "max_retry_seconds": 5.0,
    }
    values.update(overrides)
    return ClientSettings(**values)


def fake_client(recorder: Recorder, **overrides: Any) -> VideosClient:
    return VideosClient.from_settings(fast_settings(**overrides), transport=recorder.transport())
