"""Fixtures for the client tests: a marker key, the real embedded service, loopback servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from remix_pipeline.client import VideosClient
from remix_pipeline.contract import Video
from remix_pipeline.service import ServiceConfig, embedded_transport

from .client_fakes import MARKER_KEY, fast_settings


@pytest.fixture
def marker_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", MARKER_KEY)
    return MARKER_KEY


@pytest.fixture(autouse=True)
def _no_remote_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their server explicitly; a developer's environment must not leak in."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@dataclass
class LoopbackServer:
    base_url: str
    port: int


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], LoopbackServer]]:
    """Start ASGI apps on real loopback sockets with uvicorn; stop them after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> LoopbackServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=1)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("loopback server failed to start")
            threading.Event().wait(0.01)
        running.append((server, thread))
        return LoopbackServer(base_url=f"http://127.0.0.1:{port}/v1", port=port)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


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


@pytest.fixture
def embedded(tmp_path: Path) -> Callable[..., Embedded]:
    """Build an embedded service on a fresh database: `embedded(faults=FaultConfig(...))`."""

    def build(**config: Any) -> Embedded:
        values: dict[str, Any] = {"db_path": tmp_path / "videos.db", "queued_seconds": 3600}
        values.update(config)
        service_config = ServiceConfig(**values)
        return Embedded(service_config, embedded_transport(service_config))

    return build
