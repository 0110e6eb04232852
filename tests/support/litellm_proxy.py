"""The real LiteLLM proxy as a subprocess, configured the way a new user configures it.

Standard library only, so it runs under any Python. `scripts/litellm.sh` builds the venv
holding LiteLLM and prints its interpreter; `start_proxy` writes the plain config into a
directory, starts `litellm --config ...` in a process group of its own and waits for
`/health/liveliness`. Keys never appear in the config file, the command line or the log:
the config names environment variables (LiteLLM's `os.environ/NAME` syntax) that only the
proxy's environment holds.

By hand, in the foreground (Ctrl-C or SIGTERM stops it and the proxy):

    UP_KEY=... MASTER_KEY=... python -m tests.support.litellm_proxy \\
        --python "$(bash scripts/litellm.sh)" --upstream http://127.0.0.1:8000/v1 \\
        --upstream-key-env UP_KEY --master-key-env MASTER_KEY \\
        [--num-retries 0] [--completion-model sora-2] [--port P] --dir D

It prints the base URL (ending in /v1) once the proxy is ready.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LITELLM_VERSION = "1.108.7"
# The model groups a new user defines: each the `openai/` provider in front of the upstream.
GROUPS = ("sora-2", "sora-2-pro")
READY_TIMEOUT_SECONDS = 60.0
# Variables the proxy must not inherit: an OpenAI key or base URL of the caller would be
# used for calls LiteLLM cannot route to a deployment (it sends those to OpenAI itself), and
# a database URL or master key would change how the proxy authenticates.
SCRUBBED_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_ORGANIZATION",
    "DATABASE_URL",
    "LITELLM_MASTER_KEY",
    "LITELLM_SALT_KEY",
    "LITELLM_LOG",
    "REDIS_HOST",
    "REDIS_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"


@dataclass(frozen=True)
class Proxy:
    """A running proxy. `base_url` ends in /v1, as a client is configured with it."""

    root_url: str
    config_path: Path
    log_path: Path
    pid: int

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"


# What the real proxy sends, as measured (shared by its facts tests and the imitation's).
# The 13 keys of the contract's Video object, written out: this module stays standard-library
# only, and the facts measured against it stand apart from the project's own models.
VIDEO_KEYS = {
    "id",
    "object",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "prompt",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error",
}
ENCODED_ID = re.compile(r"^video_[A-Za-z0-9+/]+=*$")
# LiteLLM's security middleware: on every answer but the bare 500 of a request without a key.
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "vary": "Origin",
}


def config_text(
    *,
    upstream: str,
    upstream_key_env: str,
    master_key_env: str,
    num_retries: int | None = None,
    completion_model: str | None = None,
    groups: tuple[str, ...] = GROUPS,
) -> str:
    """The config file: one `openai/<group>` deployment per group, keys named, not written."""
    lines = ["model_list:"]
    for group in groups:
        lines += [
            f"  - model_name: {group}",
            "    litellm_params:",
            f"      model: openai/{group}",
            f"      api_base: {upstream}",
            f"      api_key: os.environ/{upstream_key_env}",
            "    model_info:",
            "      mode: video_generation",
        ]
    lines += ["", "general_settings:", f"  master_key: os.environ/{master_key_env}"]
    if completion_model is not None:
        lines.append(f"  completion_model: {completion_model}")
    if num_retries is not None:
        lines += ["", "router_settings:", f"  num_retries: {num_retries}"]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def litellm_command(python: str | Path) -> str:
    """The `litellm` console script beside the venv's interpreter (not resolved: a venv's
    python is a symlink to the base interpreter)."""
    return str(Path(python).absolute().parent / "litellm")


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _live(root_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{root_url}/health/liveliness", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ProxyStartError(RuntimeError):
    pass


class ProxyProcess:
    """A proxy being started: `launch` returns at once, `wait_ready` blocks. Several can be
    launched before any is waited for, so their ~8 s start-ups overlap."""

    def __init__(
        self,
        where: Path,
        *,
        python: str | Path,
        env: Mapping[str, str],
        port: int | None = None,
        egress_proxy: str | None = None,
        **config: object,
    ) -> None:
        self.where = where
        self.python = python
        self.env = env
        self.port = port
        self.egress_proxy = egress_proxy
        self.config_path = where / "config.yaml"
        self.log_path = where / "proxy.log"
        self.config_path.write_text(config_text(**config))  # type: ignore[arg-type]
        self.process: subprocess.Popen[bytes] | None = None
        self.root_url = ""

    def launch(self) -> None:
        port = self.port or free_port()
        self.root_url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        if self.egress_proxy is not None:
            # LiteLLM sends calls it cannot route to a deployment to api.openai.com; its HTTP
            # transport honours the standard proxy variables, so such calls end at this
            # loopback address instead of leaving the machine. Loopback (the upstream) is
            # reached directly.
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
                env[name] = env[name.lower()] = self.egress_proxy
            env["NO_PROXY"] = env["no_proxy"] = LOOPBACK_HOSTS
        env.update(self.env)
        # Without it LiteLLM fetches its model cost map from the internet at start-up.
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    litellm_command(self.python),
                    "--config",
                    str(self.config_path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=self.where,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_default_signals,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> Proxy:
        assert self.process is not None, "launch first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProxyStartError(
                    f"litellm exited with {self.process.returncode} before it was ready; "
                    f"its log ends:\n{log_tail(self.log_path)}"
                )
            if _live(self.root_url):
                return Proxy(
                    root_url=self.root_url,
                    config_path=self.config_path,
                    log_path=self.log_path,
                    pid=self.process.pid,
                )
            time.sleep(0.1)
        raise ProxyStartError(
            f"litellm did not answer {self.root_url}/health/liveliness within {timeout:g} s; "
            f"its log ends:\n{log_tail(self.log_path)}"
        )

    def address_taken(self) -> bool:
        return "address already in use" in log_tail(self.log_path).lower()

    def start(self, attempts: int = 3) -> Proxy:
        """Launch and wait; a port taken between choosing and binding it is chosen again."""
        for attempt in range(attempts):
            self.launch()
            try:
                return self.wait_ready()
            except ProxyStartError:
                address_taken = self.address_taken()
                self.stop()
                if not address_taken or self.port or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL if it lingers (LiteLLM takes over a second)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


@contextmanager
def start_proxy(where: Path, **kwargs: object) -> Iterator[Proxy]:
    """A ready proxy (see `ProxyProcess` and `config_text` for the arguments), stopped on exit."""
    proxy = ProxyProcess(where, **kwargs)  # type: ignore[arg-type]
    try:
        yield proxy.start()
    finally:
        proxy.stop()


class EgressTrap:
    """A loopback HTTP proxy that refuses everything and records the request lines it was
    sent (`CONNECT api.openai.com:443 HTTP/1.1`): where the LiteLLM proxy tried to go
    outside, without anything leaving the machine."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="egress-trap", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    line = conn.makefile("rb").readline(4096).decode("latin-1").strip()
                    with self._lock:
                        self.requests.append(line)
                    conn.sendall(
                        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                except OSError:
                    pass

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self._server.close()


# LiteLLM's video ids: "video_" + standard base64 of
# "litellm:custom_llm_provider:<p>;model_id:<m>;video_id:<raw>;deployment_id:<hex>".
ENCODED_PREFIX = "litellm:"


def decode_video_id(video_id: str) -> dict[str, str]:
    """The fields of a LiteLLM-encoded video id ({} for an id LiteLLM did not encode)."""
    try:
        text = base64.b64decode(video_id.removeprefix("video_"), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return {}
    if not text.startswith(ENCODED_PREFIX):
        return {}
    fields = {}
    for part in text.removeprefix(ENCODED_PREFIX).split(";"):
        name, _, value = part.partition(":")
        fields[name] = value
    return fields


def encode_video_id(fields: Mapping[str, str]) -> str:
    """The inverse of `decode_video_id`, fields in the order given."""
    text = ENCODED_PREFIX + ";".join(f"{name}:{value}" for name, value in fields.items())
    return "video_" + base64.b64encode(text.encode()).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.litellm_proxy", description=__doc__
    )
    parser.add_argument("--python", required=True, help="the LiteLLM venv's interpreter")
    parser.add_argument("--upstream", required=True, help="upstream base URL, ending in /v1")
    parser.add_argument("--upstream-key-env", required=True, metavar="VAR")
    parser.add_argument("--master-key-env", required=True, metavar="VAR")
    parser.add_argument("--num-retries", type=int)
    parser.add_argument("--completion-model")
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    for name in (args.upstream_key_env, args.master_key_env):
        if not os.environ.get(name):
            parser.error(f"{name} is not set")
    args.dir.mkdir(parents=True, exist_ok=True)
    # Stop the proxy on Ctrl-C or SIGTERM, even when started in the background (where
    # SIGINT is ignored): the `finally` below needs an exception to run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    proxy = ProxyProcess(
        args.dir,
        python=args.python,
        env={name: os.environ[name] for name in (args.upstream_key_env, args.master_key_env)},
        port=args.port,
        upstream=args.upstream,
        upstream_key_env=args.upstream_key_env,
        master_key_env=args.master_key_env,
        num_retries=args.num_retries,
        completion_model=args.completion_model,
    )
    try:
        print(proxy.start().base_url, flush=True)
        while proxy.process is not None and proxy.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
