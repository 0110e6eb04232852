"""Fixtures for the client tests: a marker API key and real loopback HTTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from client_fakes import MARKER_KEY


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
