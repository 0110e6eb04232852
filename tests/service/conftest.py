"""Fixtures for the embedded service: a fast config, a real loopback server, a spec validator
and the app in-process on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from remix_pipeline.service import ServiceConfig
from tests.support.clock import FakeClock
from tests.support.servers import MakeConfig, serving
from tests.support.spec import SpecValidator, load_spec


@pytest.fixture
def config(make_config: MakeConfig) -> ServiceConfig:
    return make_config()


@pytest.fixture
def served(config: ServiceConfig) -> Iterator[tuple[str, Starlette]]:
    with serving(config) as pair:
        yield pair


@pytest.fixture(scope="session")
def spec_validator() -> SpecValidator:
    return SpecValidator(load_spec())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app_client(config: ServiceConfig, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app in-process, driven by the fake clock."""
    from remix_pipeline.service import create_app

    app = create_app(config, clock=clock)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://service")
    client.app = app  # type: ignore[attr-defined]
    async with client:
        yield client
