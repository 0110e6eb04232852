"""The embedded service reached in-process, with no socket: plain httpx on it (to see exactly
what a dialect answers), a VideosClient on it, and a view of its store for counting."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.contract import Video
from remix_pipeline.service import ServiceConfig, embedded_transport

from .fakes import fast_settings


def raw_http(config: ServiceConfig) -> httpx.AsyncClient:
    """Plain httpx on the service, to see exactly what the dialect answers."""
    return httpx.AsyncClient(transport=embedded_transport(config), base_url="http://embedded/v1")


def client_for(config: ServiceConfig) -> VideosClient:
    return VideosClient.from_settings(ClientSettings(max_attempts=2), embedded=config)


async def until(client: VideosClient, video_id: str, *statuses: str) -> Video:
    """Poll one job until it reaches one of `statuses` (the service's clock is real)."""
    for _ in range(400):
        video = await client.retrieve(video_id)
        if video.status.value in statuses:
            return video
        await asyncio.sleep(0.01)
    raise AssertionError(f"{video_id} never reached {statuses}")


@dataclass
class Embedded:
    """One real embedded service instance, reached in-process, plus a fault-free view of it."""

    config: ServiceConfig
    transport: httpx.AsyncBaseTransport

    def client(self, **overrides: Any) -> VideosClient:
        return VideosClient.from_settings(
            fast_settings(base_url=None, **overrides), transport=self.transport
        )

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=self.transport, base_url="http://embedded") as http:
            response = await http.get("/_admin/stats")
            response.raise_for_status()
            return response.json()

    async def all_videos(self) -> list[Video]:
        """Every job in the store, read through a second, fault-free app on the same file."""
        clean = ServiceConfig(db_path=self.config.db_path, api_key=self.config.api_key)
        settings = fast_settings(base_url=None)
        async with VideosClient.from_settings(settings, embedded=clean) as client:
            return [video async for video in client.list()]
