"""The real LiteLLM proxy in front of `remix-pipeline serve`, as the gateway tests meet it: a
`Gateway` (the proxy, its upstream and their keys) per `GatewayConfig`, started by a
`GatewayPool` that shares upstreams and overlaps the proxies' slow start-ups. The fixtures
that hand them out are in `tests/gateway/conftest.py`, which says what each one is."""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .litellm_proxy import EgressTrap, Proxy, ProxyProcess, ProxyStartError
from .needs import missing
from .servers import Served, served_process

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


def _client(base_url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Client:
    """An httpx client on `base_url` sending `headers`, with a 30 s timeout unless told."""
    return httpx.Client(base_url=base_url, headers=headers, **{"timeout": 30, **kwargs})


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
        return _client(self.base_url, self.headers, **kwargs)

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
        return _client(self.upstream_base_url, self.upstream_headers, **kwargs)

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


def find_litellm_python() -> str:
    """The interpreter of the venv holding LiteLLM (skip, or fail under CI, without one)."""
    python = os.environ.get(LITELLM_PYTHON_ENV) or _venv_python()
    if python and Path(python).exists():
        return python
    missing(f"{LITELLM_PYTHON_ENV} is unset: build LiteLLM's venv with `bash scripts/litellm.sh`")
