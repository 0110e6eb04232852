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

Tests using these fixtures are simplest in `tests/gateway/` (types: `from tests.support.gateway
import Gateway, GatewayConfig`). Elsewhere, `pytest_plugins = ["tests.gateway.conftest"]` in
`tests/conftest.py` makes them visible to the whole suite. `tests.support.litellm_proxy`
starts a proxy by hand (`python -m tests.support.litellm_proxy --help`) and decodes and
encodes LiteLLM's video ids (`decode_video_id`, `encode_video_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.gateway import (
    COMPLETION_MODEL,
    DROPPING,
    NAMED,
    NO_RETRIES,
    PLAIN,
    RATE_LIMITED,
    Gateway,
    GatewayConfig,
    GatewayPool,
    find_litellm_python,
)


@pytest.fixture(scope="session")
def litellm_python() -> str:
    """The interpreter of the venv holding LiteLLM (skip, or fail under CI, without one)."""
    return find_litellm_python()


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
