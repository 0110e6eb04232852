"""`remix-pipeline check-server` through the real LiteLLM proxy and straight to the service:
what it reports must be what each of them really does (tests/gateway/test_litellm_facts.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.gateway import Gateway

REMIX_PIPELINE = Path(sys.executable).parent / "remix-pipeline"


def check(base_url: str, key: str, tmp_path: Path, *options: str) -> dict[str, tuple[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REMIX_"))}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=key, REMIX_PIPELINE_HOME=str(tmp_path))
    result = subprocess.run(
        [str(REMIX_PIPELINE), "check-server", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert key not in result.stdout + result.stderr
    rows: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines()[1:]:
        name, mark, detail = _split(line)
        rows[name] = (mark, detail)
    return rows


def _split(line: str) -> tuple[str, str, str]:
    parts = [part.strip() for part in line.split("  ") if part.strip()]
    return parts[0], parts[1], "  ".join(parts[2:])


def test_through_litellm_it_reports_the_deviations_the_proxy_really_has(
    gateway: Gateway, tmp_path: Path
):
    rows = check(
        gateway.base_url,
        gateway.master_key,
        tmp_path,
        "--create",
        "--remix-source",
        "video_src_harbor",
    )
    assert rows["gateway"][1] == "litellm"
    assert rows["list"][0] == "NO" and "400" in rows["list"][1]
    assert rows["delete"][0] == "NO" and "405" in rows["delete"][1]
    assert rows["content video"][0] == "ok"
    assert rows["content thumbnail"] == ("NO", "video/mp4 instead of image/webp")
    assert rows["content spritesheet"] == ("NO", "video/mp4 instead of image/jpeg")
    assert rows["remix of raw ids"][0] == "ok"  # with the body model the client sends it
    assert rows["id length"][0] == "ok" and "gateway-encoded" in rows["id length"][1]
    assert rows["openai-poll-after-ms"] == ("NO", "not seen")


def test_straight_to_the_service_every_check_passes(gateway: Gateway, tmp_path: Path):
    rows = check(gateway.upstream_base_url, gateway.upstream_key, tmp_path, "--create")
    assert rows["gateway"][1] == "none recognised"
    for name in ("remix route", "list", "delete", "content video", "content thumbnail"):
        assert rows[name][0] == "ok", (name, rows[name])
    assert rows["openai-poll-after-ms"] == ("ok", "sent")
