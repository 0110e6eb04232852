"""`remix-pipeline serve`: the embedded Videos API as a real HTTP server (uvicorn).

The API key may come from `REMIX_PIPELINE_SERVE_API_KEY` so it need not appear in `ps`; it is
never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from remix_pipeline.contract import ContractMode
from remix_pipeline.service.app import create_app
from remix_pipeline.service.config import FaultConfig, ServiceConfig, default_service_config
from remix_pipeline.service.dialects import Dialect
from remix_pipeline.service.gateway import ResponseDropped

API_KEY_ENV = "REMIX_PIPELINE_SERVE_API_KEY"

# ServiceConfig / FaultConfig field -> the option that sets it, for one-line error messages.
_OPTION_OF_FIELD = {
    "db_path": "--db",
    "queued_seconds": "--queued-seconds",
    "run_seconds": "--run-seconds",
    "expires_after_seconds": "--expires-after",
    "poll_after_ms": "--poll-after-ms",
    "media_scale": "--media-scale",
    "seed": "--fault-seed",
    "requests_per_minute": "--rpm-limit",
    "error_rate": "--error-rate",
    "latency_ms": "--latency-ms",
    "spike_rate": "--spike-rate",
    "spike_ms": "--spike-ms",
    "drop_rate": "--drop-rate",
    "garble_rate": "--garble-rate",
    "misdirect_rate": "--misdirect-rate",
    "failure_rate": "--failure-rate",
    "moderation_terms": "--moderation-term",
}


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    # A bad option is reported in one line (argparse would print the whole usage first).
    parser.print_usage = lambda file=None: None  # type: ignore[method-assign]
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    parser.add_argument("--port", type=int, default=8000, help="Port (0 picks a free one).")
    parser.add_argument("--db", type=Path, default=None, help="SQLite job store file.")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"Require this bearer key (or set {API_KEY_ENV}, which keeps it out of `ps`).",
    )
    parser.add_argument(
        "--mode", choices=[m.value for m in ContractMode], default=ContractMode.LENIENT.value
    )
    parser.add_argument(
        "--dialect",
        choices=[d.value for d in Dialect],
        default=None,
        help="Imitate a compatible server's deviations (default: openai, the contract).",
    )
    parser.add_argument("--queued-seconds", type=float, default=None)
    parser.add_argument("--run-seconds", type=float, default=None)
    parser.add_argument("--expires-after", type=int, default=None, help="Content lifetime (s).")
    parser.add_argument("--poll-after-ms", type=int, default=None)
    parser.add_argument("--media-scale", type=float, default=None)
    parser.add_argument(
        "--sdk-fixtures",
        action="store_true",
        default=None,
        help="Hold the fixed ids openai-python's own tests use (video_123, char_123), so its "
        "tests/api_resources/test_videos.py can run against this server.",
    )
    faults = parser.add_argument_group("fault injection (seeded, reproducible)")
    faults.add_argument("--fault-seed", type=int, default=0)
    faults.add_argument("--rpm-limit", type=int, default=None, help="Requests per minute.")
    faults.add_argument("--error-rate", type=float, default=0.0, help="Share of 5xx answers.")
    faults.add_argument("--latency-ms", type=int, default=0)
    faults.add_argument(
        "--spike-rate", type=float, default=0.0, help="Share of requests held --spike-ms."
    )
    faults.add_argument("--spike-ms", type=int, default=0)
    faults.add_argument("--drop-rate", type=float, default=0.0, help="Share of dropped creates.")
    faults.add_argument(
        "--garble-rate", type=float, default=0.0, help="Share of answers with broken JSON."
    )
    faults.add_argument(
        "--misdirect-rate",
        type=float,
        default=0.0,
        help="Share of status answers that describe another video.",
    )
    faults.add_argument("--failure-rate", type=float, default=0.0, help="Share of failed jobs.")
    faults.add_argument(
        "--moderation-term", action="append", default=[], help="Repeatable; blocks prompts."
    )


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    """The service settings the options describe; raises ValueError with a one-line reason."""
    base = default_service_config()
    values: dict[str, object] = {
        "db_path": args.db or base.db_path,
        "api_key": args.api_key or os.environ.get(API_KEY_ENV) or None,
        "mode": args.mode,
    }
    optional = {
        "queued_seconds": args.queued_seconds,
        "run_seconds": args.run_seconds,
        "expires_after_seconds": args.expires_after,
        "poll_after_ms": args.poll_after_ms,
        "media_scale": args.media_scale,
        "dialect": args.dialect,
        "sdk_fixtures": args.sdk_fixtures,
    }
    values.update({k: v for k, v in optional.items() if v is not None})
    try:
        faults = FaultConfig(
            seed=args.fault_seed,
            requests_per_minute=args.rpm_limit,
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            spike_rate=args.spike_rate,
            spike_ms=args.spike_ms,
            drop_rate=args.drop_rate,
            garble_rate=args.garble_rate,
            misdirect_rate=args.misdirect_rate,
            failure_rate=args.failure_rate,
            moderation_terms=tuple(args.moderation_term),
        )
        return ServiceConfig(**values, faults=faults)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][-1]) if first["loc"] else "option"
        raise ValueError(f"{_OPTION_OF_FIELD.get(name, name)}: {first['msg']}") from None


class _HideDroppedResponses(logging.Filter):
    """A dropped response is an injected fault, not a crash: keep its traceback out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ResponseDropped))


class VideosServer(uvicorn.Server):
    """A uvicorn server that knows its real base URL once it listens (port 0 included)."""

    def __init__(
        self, config: uvicorn.Config, on_ready: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.base_url: str | None = None
        logging.getLogger("uvicorn.error").addFilter(_HideDroppedResponses())

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            self.base_url = f"http://{shown}:{port}/v1"
            if self.on_ready is not None:
                self.on_ready(self.base_url)


def build_server(
    config: ServiceConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> VideosServer:
    """A server for `config`; its app is `server.config.app`, its URL `server.base_url`."""
    uv_config = uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # The LiteLLM proxy answers without a `server` header; the imitation does too.
        server_header=config.dialect is not Dialect.LITELLM,
    )
    return VideosServer(uv_config, on_ready=on_ready)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve_command(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"remix-pipeline serve: error: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"remix-pipeline serve: error: --port {args.port} is out of range", file=sys.stderr)
        return 2
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(
            f"remix-pipeline serve: error: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    server = build_server(
        config,
        host=args.host,
        port=args.port,
        on_ready=lambda url: print(f"Videos API serving at {url}", flush=True),
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0 if server.started else 1
