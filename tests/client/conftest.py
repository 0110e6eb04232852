"""Fixtures for the client tests: a marker key, the real embedded service, loopback servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from remix_pipeline.service import ServiceConfig, embedded_transport
from tests.support.embedded import Embedded
from tests.support.fakes import MARKER_KEY
from tests.support.servers import LoopbackServer, serving_app


@pytest.fixture
def marker_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", MARKER_KEY)
    return MARKER_KEY


@pytest.fixture(autouse=True)
def _no_remote_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their server explicitly; a developer's environment must not leak in."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], LoopbackServer]]:
    """Start ASGI apps on real loopback sockets with uvicorn; stop them after the test."""
    with ExitStack() as running:
        yield lambda app: running.enter_context(serving_app(app))


@pytest.fixture
def embedded(tmp_path: Path) -> Callable[..., Embedded]:
    """Build an embedded service on a fresh database: `embedded(faults=FaultConfig(...))`."""

    def build(**config: Any) -> Embedded:
        values: dict[str, Any] = {"db_path": tmp_path / "videos.db", "queued_seconds": 3600}
        values.update(config)
        service_config = ServiceConfig(**values)
        return Embedded(service_config, embedded_transport(service_config))

    return build
