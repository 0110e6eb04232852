"""VideosClient over real loopback sockets (uvicorn): dropped connections and timeouts."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from remix_pipeline.client import (
    ConnectionFailedError,
    OutcomeUnknownError,
    RequestTimeoutError,
    VideosClient,
)
from remix_pipeline.service import FaultConfig, ServiceConfig, create_app
from tests.support.fakes import fast_settings
from tests.support.jobs import listed_remix_prompts
from tests.support.servers import LoopbackServer

SOURCE = "video_src_harbor"
ServeApp = Callable[[Any], LoopbackServer]


def real_service(tmp_path: Path, serve_app: ServeApp, **faults: Any) -> LoopbackServer:
    config = ServiceConfig(
        db_path=tmp_path / "videos.db", queued_seconds=3600, faults=FaultConfig(**faults)
    )
    return serve_app(create_app(config))


def client_for(server: LoopbackServer, **overrides: Any) -> VideosClient:
    return VideosClient.from_settings(fast_settings(base_url=server.base_url, **overrides))


async def service_stats(server: LoopbackServer) -> dict[str, Any]:
    root = server.base_url.removesuffix("/v1")
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{root}/_admin/stats")).json()


async def remix_jobs(server: LoopbackServer) -> list[str]:
    async with client_for(server) as client:
        return await listed_remix_prompts(client, SOURCE)


async def test_dropped_remix_response_is_outcome_unknown_and_creates_one_job(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    server = real_service(tmp_path, serve_app, drop_rate=1.0)
    async with client_for(server) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.remix(SOURCE, "lost answer")
    assert isinstance(caught.value.cause, httpx.RemoteProtocolError)
    stats = await service_stats(server)
    assert (stats["operations"]["remix"], stats["dropped"]["remix"]) == (1, 1)
    assert await remix_jobs(server) == ["lost answer"]


async def test_remix_that_times_out_after_sending_is_not_repeated(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    server = real_service(tmp_path, serve_app, latency_ms=600)
    async with client_for(server, timeout_seconds=0.15) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.remix(SOURCE, "slow server")
    assert isinstance(caught.value.cause, httpx.ReadTimeout)
    assert caught.value.prompt == "slow server"
    assert (await service_stats(server))["operations"]["remix"] == 1


async def test_retrieve_that_keeps_timing_out_ends_as_request_timeout(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    server = real_service(tmp_path, serve_app, latency_ms=600)
    async with client_for(server, timeout_seconds=0.15, max_attempts=2) as client:
        with pytest.raises(RequestTimeoutError):
            await client.retrieve(SOURCE)
    assert client.stats.requests["retrieve"] == 2


async def test_remix_to_a_closed_port_is_retried_then_fails_as_connection_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = fast_settings(base_url=f"http://127.0.0.1:{port}/v1", max_attempts=3)
    async with VideosClient.from_settings(settings) as client:
        with pytest.raises(ConnectionFailedError):
            await client.remix(SOURCE, "nobody home")
    assert client.stats.requests["remix"] == 3
    assert client.stats.outcome_unknown == 0


MEDIA = bytes(range(256)) * 2048  # 512 KiB


def media_app(*, breaks: int) -> Starlette:
    """Serves MEDIA with its length declared, cutting the first `breaks` bodies off halfway."""
    remaining = [breaks]

    async def content(request: Request) -> Response:
        broken = remaining[0] > 0
        remaining[0] -= 1

        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(MEDIA), 64 * 1024):
                if broken and start >= len(MEDIA) // 2:
                    raise ConnectionResetError("cut off mid-stream")
                yield MEDIA[start : start + 64 * 1024]

        headers = {"content-length": str(len(MEDIA))}
        return StreamingResponse(body(), media_type="video/mp4", headers=headers)

    return Starlette(routes=[Route("/v1/videos/{video_id}/content", content)])


async def test_download_cut_off_mid_stream_leaves_no_file(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    server = serve_app(media_app(breaks=1000))
    target = tmp_path / "out" / "video.mp4"
    async with client_for(server, max_attempts=2) as client:
        with pytest.raises(ConnectionFailedError):
            await client.download("video_1", "video", target)
    assert list((tmp_path / "out").iterdir()) == []


async def test_download_cut_off_once_is_restarted_and_completes(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    server = serve_app(media_app(breaks=1))
    target = tmp_path / "video.mp4"
    async with client_for(server) as client:
        result = await client.download("video_1", "video", target)
    assert result.sha256 == hashlib.sha256(MEDIA).hexdigest()
    assert target.read_bytes() == MEDIA
    assert client.stats.requests["download"] == 2
