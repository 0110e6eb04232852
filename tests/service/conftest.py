"""Fixtures for the embedded service: fast configs, a real loopback server, a spec validator."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette

from remix_pipeline.service import FaultConfig, ServiceConfig
from remix_pipeline.service.server import build_server

SPEC_PATH = Path(__file__).parent / "spec" / "openai-videos.openapi.yaml"
SPEC_URI = "urn:openai-videos-spec"

# Short enough that the SDK's poll() finishes within a fraction of a second.
FAST = {"queued_seconds": 0.05, "run_seconds": 0.2, "poll_after_ms": 20, "media_scale": 0.05}

ConfigFactory = Callable[..., ServiceConfig]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """ServiceConfig with fast timings over a fresh database; keyword arguments override."""

    def make(**overrides: Any) -> ServiceConfig:
        faults = overrides.pop("faults", None)
        values: dict[str, Any] = {"db_path": tmp_path / "service.db", **FAST, **overrides}
        if isinstance(faults, dict):
            faults = FaultConfig(**faults)
        if faults is not None:
            values["faults"] = faults
        return ServiceConfig(**values)

    return make


@pytest.fixture
def config(make_config: ConfigFactory) -> ServiceConfig:
    return make_config()


@contextmanager
def serving(config: ServiceConfig) -> Iterator[tuple[str, Starlette]]:
    """The service behind uvicorn on a free loopback port, in a thread, for one block."""
    server = build_server(config)
    thread = threading.Thread(target=server.run, name="videos-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while server.base_url is None:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield server.base_url, server.config.app
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def served(config: ServiceConfig) -> Iterator[tuple[str, Starlette]]:
    with serving(config) as pair:
        yield pair


class SpecValidator:
    """Checks a response against the OpenAPI document's schemas (Draft 2020-12, `$ref`s)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def errors(self, schema_name: str, instance: object) -> list[str]:
        validator = self._validators.get(schema_name)
        if validator is None:
            schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
            validator = Draft202012Validator(schema, registry=self.registry)
            self._validators[schema_name] = validator
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def response_schema(self, method: str, path_template: str) -> str:
        operation = self.spec["paths"][path_template][method.lower()]
        content = operation["responses"]["200"]["content"]
        ref = content["application/json"]["schema"].get("$ref", "")
        return ref.rsplit("/", 1)[-1]

    def check(self, response: httpx.Response, method: str, path_template: str) -> list[str]:
        """Problems with `response` as an answer to `method path_template` (empty if none)."""
        problems: list[str] = []
        if not response.headers.get("x-request-id"):
            problems.append("missing x-request-id header")
        if response.status_code != 200:
            problems += self.errors("ErrorResponse", _json(response))
            if response.status_code == 429:
                problems += _retry_header_problems(response)
            return problems
        if path_template.endswith("/content"):
            allowed = {"video/mp4", "image/webp", "image/jpeg"}
            kind = response.headers.get("content-type", "").split(";")[0]
            if kind not in allowed:
                problems.append(f"content type {kind!r} is not one of {sorted(allowed)}")
            return problems
        return problems + self.errors(self.response_schema(method, path_template), _json(response))


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return f"<not JSON: {response.text[:80]!r}>"


def _retry_header_problems(response: httpx.Response) -> list[str]:
    header = response.headers.get("retry-after", "")
    problems = []
    if not header.isdigit() or int(header) < 1:
        problems.append(f"retry-after {header!r} is not an integer >= 1")
    if not response.headers.get("retry-after-ms", "").isdigit():
        problems.append("retry-after-ms missing or not an integer")
    return problems


@cache
def _load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def spec_validator() -> SpecValidator:
    return SpecValidator(_load_spec())


class FakeClock:
    """A settable clock, so lifecycle transitions happen on command instead of by waiting."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
