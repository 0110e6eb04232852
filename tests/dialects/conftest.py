"""The embedded service in a compatible server's dialect, reached in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.contract import Video
from remix_pipeline.service import ServiceConfig, embedded_transport

FAST = {"queued_seconds": 0.05, "run_seconds": 0.3, "poll_after_ms": 20, "media_scale": 0.05}

MakeConfig = Callable[..., ServiceConfig]


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    def make(dialect: str = "openai", **overrides: Any) -> ServiceConfig:
        values = {**FAST, **overrides}
        return ServiceConfig(db_path=tmp_path / "service.db", dialect=dialect, **values)

    return make


def raw_http(config: ServiceConfig) -> httpx.AsyncClient:
    """Plain httpx on the service, to see exactly what the dialect answers."""
    return httpx.AsyncClient(transport=embedded_transport(config), base_url="http://embedded/v1")


def client_for(config: ServiceConfig) -> VideosClient:
    return VideosClient.from_settings(ClientSettings(max_attempts=2), embedded=config)


@pytest.fixture
async def litellm_client(make_config: MakeConfig) -> AsyncIterator[VideosClient]:
    async with client_for(make_config("litellm")) as client:
        yield client


async def until(client: VideosClient, video_id: str, *statuses: str) -> Video:
    """Poll one job until it reaches one of `statuses` (the service's clock is real)."""
    for _ in range(400):
        video = await client.retrieve(video_id)
        if video.status.value in statuses:
            return video
        await asyncio.sleep(0.01)
    raise AssertionError(f"{video_id} never reached {statuses}")
