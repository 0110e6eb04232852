"""The real LiteLLM proxy (1.108.7) in front of `remix-pipeline serve`, for tests.

`scripts/test.sh` builds LiteLLM's venv (`scripts/litellm.sh`) and exports its interpreter
as REMIX_PIPELINE_LITELLM_PYTHON. Without it the tests use the venv `scripts/litellm.sh`
builds by default when it is there, and otherwise skip with the reason, except under CI,
where a missing proxy is a failure rather than a silent gap.

Fixtures, all session-scoped (a proxy takes ~8 s to start, so each configuration starts
once per session; every proxy the session's selected tests name is started in parallel
when the first is needed). Each yields a `Gateway`:

- `gateway`: the plain config a new user writes: groups `sora-2` and `sora-2-pro`, each
  `openai/<group>` with `api_base` = the upstream and `api_key: os.environ/...`,
  `model_info.mode: video_generation`, and `general_settings.master_key: os.environ/...`.
- `gateway_no_retries`: the same plus `router_settings.num_retries: 0`.
- `gateway_dropping`: the plain config in front of an upstream that cuts off the answers
  to 20% of its creates and remixes (`serve --drop-rate 0.2 --fault-seed 2`).
- `gateway_rate_limited`: `num_retries: 0` in front of an upstream admitting one request per
  minute (`serve --rpm-limit 1`): after the first request, it answers 429 for a minute.
- `gateway_completion_model`: the only config found that serves list and raw ids:
  `general_settings.completion_model: sora-2` (forces every request's model to sora-2) and
  `router_settings.num_retries: 0` (no repeated paid POSTs).
- `gateway_factory(GatewayConfig(...))`: any other configuration, started on first use and
  kept for the session (add a named fixture and a `NAMED` entry to have it start in
  parallel with the others).

`gateway`, `gateway_no_retries` and `gateway_completion_model` share one upstream, as do any
configurations with the same upstream options; tests must therefore not count the
upstream's jobs globally: give each request a unique prompt and count rows with it
(`Gateway.upstream_videos`).

A `Gateway` has:
- `base_url` (the proxy's, ending in /v1), `master_key`, `headers` (its bearer header),
  `client()` (an httpx.Client on `base_url` with that header; close it);
- `upstream_base_url`, `upstream_key`, `upstream_headers`, `upstream_client()`;
- `upstream_db_path`: the upstream service's SQLite (table `videos`: `id`, `kind` in
  'create', 'remix', 'edit', 'extension', `model`, `prompt`, `remixed_from_video_id`, ...),
  and `upstream_videos(where, *params)` reading its rows as dicts;
- `egress`: the requests the proxy tried to send outside (it sends calls it cannot route to
  `api.openai.com`); its proxy variables point at a loopback trap, so nothing leaves;
- `proxy` (`config_path`, `log_path`, `pid`) and `config`.

Tests using these fixtures are simplest in `tests/gateway/` (types: `from .conftest import
Gateway, GatewayConfig`). Elsewhere, a `tests/conftest.py` with
`pytest_plugins = ["tests.gateway.conftest"]` makes them visible to the whole suite.
`tests.gateway.proxy` starts a proxy by hand (`python -m tests.gateway.proxy --help`) and
decodes and encodes LiteLLM's video ids (`decode_video_id`, `encode_video_id`).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..served import Served, served_process
from .proxy import EgressTrap, Proxy, ProxyProcess, ProxyStartError

LITELLM_PYTHON_ENV = "REMIX_PIPELINE_LITELLM_PYTHON"
LITELLM_VENV_ENV = "REMIX_PIPELINE_LITELLM_VENV"
REQUIREMENT = "litellm[proxy]==1.108.7"
REPO = Path(__file__).resolve().parents[2]
# The variables the config names; only the proxy's environment holds the keys.
UPSTREAM_KEY_ENV = "REMIX_PIPELINE_GATEWAY_UPSTREAM_KEY"
MASTER_KEY_ENV = "REMIX_PIPELINE_GATEWAY_MASTER_KEY"


@dataclass(frozen=True)
class GatewayConfig:
    """What differs between the proxies the tests start: the upstream's `serve` options and
    the proxy's router and general settings (None: the key is not written)."""

    upstream_options: tuple[str, ...] = ()
    num_retries: int | None = None
    completion_model: str | None = None


PLAIN = GatewayConfig()
NO_RETRIES = GatewayConfig(num_retries=0)
DROPPING = GatewayConfig(upstream_options=("--drop-rate", "0.2", "--fault-seed", "2"))
RATE_LIMITED = GatewayConfig(upstream_options=("--rpm-limit", "1"), num_retries=0)
COMPLETION_MODEL = GatewayConfig(num_retries=0, completion_model="sora-2")
NAMED = {
    "gateway": PLAIN,
    "gateway_no_retries": NO_RETRIES,
    "gateway_dropping": DROPPING,
    "gateway_rate_limited": RATE_LIMITED,
    "gateway_completion_model": COMPLETION_MODEL,
}


@dataclass(frozen=True)
class Gateway:
    config: GatewayConfig
    upstream: Served
    proxy: Proxy
    master_key: str
    egress_trap: EgressTrap = field(repr=False)

    @property
    def base_url(self) -> str:
        return self.proxy.base_url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers=self.headers, **{"timeout": 30, **kwargs}
        )

    @property
    def upstream_base_url(self) -> str:
        return self.upstream.base_url

    @property
    def upstream_key(self) -> str:
        assert self.upstream.key is not None
        return self.upstream.key

    @property
    def upstream_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.upstream_key}"}

    def upstream_client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.upstream_base_url,
            headers=self.upstream_headers,
            **{"timeout": 30, **kwargs},
        )

    @property
    def upstream_db_path(self) -> Path:
        return self.upstream.db_path

    def upstream_videos(self, where: str = "1", *params: object) -> list[dict[str, Any]]:
        """Rows of the upstream's `videos` table matching the SQL condition `where`."""
        conn = sqlite3.connect(f"file:{self.upstream_db_path}?mode=ro", uri=True, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT * FROM videos WHERE {where} ORDER BY seq", params)
            return [dict(row) for row in rows]
        finally:
            conn.close()

    @property
    def egress(self) -> list[str]:
        return self.egress_trap.seen()


def _venv_python() -> str | None:
    venv = Path(os.environ.get(LITELLM_VENV_ENV) or REPO / ".remix-pipeline" / "litellm-venv")
    try:
        built = (venv / ".remix-pipeline-requirement").read_text().strip() == REQUIREMENT
    except OSError:
        return None
    return str(venv / "bin" / "python") if built else None


@pytest.fixture(scope="session")
def litellm_python() -> str:
    """The interpreter of the venv holding LiteLLM (skip, or fail under CI, without one)."""
    python = os.environ.get(LITELLM_PYTHON_ENV) or _venv_python()
    if python and Path(python).exists():
        return python
    reason = f"{LITELLM_PYTHON_ENV} is unset: build LiteLLM's venv with `bash scripts/litellm.sh`"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the LiteLLM gateway tests, but {reason}")
    pytest.skip(reason)


class GatewayPool:
    """Upstreams and proxies by configuration, started on demand and kept until `close`."""

    def __init__(self, where: Path, python: str) -> None:
        self.where = where
        self.python = python
        self.upstream_key = f"sk-upstream-{secrets.token_hex(12)}"
        self.master_key = f"sk-litellm-master-{secrets.token_hex(12)}"
        self._stack = ExitStack()
        self._upstreams: dict[tuple[str, ...], Served] = {}
        self._gateways: dict[GatewayConfig, Gateway] = {}

    def _upstream(self, options: tuple[str, ...]) -> Served:
        if options not in self._upstreams:
            where = self.where / f"upstream-{len(self._upstreams)}"
            where.mkdir()
            self._upstreams[options] = self._stack.enter_context(
                served_process(where, *options, key=self.upstream_key)
            )
        return self._upstreams[options]

    def start(self, *configs: GatewayConfig) -> None:
        """Start the proxies of `configs` not yet running, their start-ups overlapping."""
        starting = []
        for config in dict.fromkeys(configs):
            if config in self._gateways:
                continue
            upstream = self._upstream(config.upstream_options)
            where = self.where / f"proxy-{len(self._gateways) + len(starting)}"
            where.mkdir()
            trap = EgressTrap()
            self._stack.callback(trap.close)
            process = ProxyProcess(
                where,
                python=self.python,
                env={UPSTREAM_KEY_ENV: self.upstream_key, MASTER_KEY_ENV: self.master_key},
                egress_proxy=trap.url,
                upstream=upstream.base_url,
                upstream_key_env=UPSTREAM_KEY_ENV,
                master_key_env=MASTER_KEY_ENV,
                num_retries=config.num_retries,
                completion_model=config.completion_model,
            )
            self._stack.callback(process.stop)
            process.launch()
            starting.append((config, upstream, process, trap))
        for config, upstream, process, trap in starting:
            try:
                proxy = process.wait_ready()
            except ProxyStartError:
                if not process.address_taken():
                    raise
                # A port taken between choosing and binding it: launched again, alone.
                process.stop()
                proxy = process.start()
            self._gateways[config] = Gateway(config, upstream, proxy, self.master_key, trap)

    def get(self, config: GatewayConfig) -> Gateway:
        self.start(config)
        return self._gateways[config]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def gateway_pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, litellm_python: str
) -> Iterator[GatewayPool]:
    pool = GatewayPool(tmp_path_factory.mktemp("gateway"), litellm_python)
    try:
        wanted = {
            NAMED[name]
            for item in request.session.items
            for name in getattr(item, "fixturenames", ())
            if name in NAMED
        }
        pool.start(*wanted)
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def gateway_factory(gateway_pool: GatewayPool) -> Callable[[GatewayConfig], Gateway]:
    """A proxy for any `GatewayConfig`, started once per session."""
    return gateway_pool.get


@pytest.fixture(scope="session")
def gateway(gateway_pool: GatewayPool) -> Gateway:
    """The plain config a new user writes."""
    return gateway_pool.get(PLAIN)


@pytest.fixture(scope="session")
def gateway_no_retries(gateway_pool: GatewayPool) -> Gateway:
    """The plain config with `router_settings.num_retries: 0`."""
    return gateway_pool.get(NO_RETRIES)


@pytest.fixture(scope="session")
def gateway_dropping(gateway_pool: GatewayPool) -> Gateway:
    """The plain config before an upstream cutting off 20% of its create and remix answers."""
    return gateway_pool.get(DROPPING)


@pytest.fixture(scope="session")
def gateway_rate_limited(gateway_pool: GatewayPool) -> Gateway:
    """`num_retries: 0` before an upstream admitting one request a minute."""
    return gateway_pool.get(RATE_LIMITED)


@pytest.fixture(scope="session")
def gateway_completion_model(gateway_pool: GatewayPool) -> Gateway:
    """`completion_model: sora-2` and `num_retries: 0`: list and raw ids served."""
    return gateway_pool.get(COMPLETION_MODEL)
