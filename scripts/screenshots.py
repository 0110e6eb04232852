"""Regenerate the README's screenshots: the asset graph, the lineage asset's variant matrix
and a video partition's preview in `dagster dev`, and the report.

Runs the sample experiment headless in a temporary state home, starts `dagster dev -w
workspace.yaml` on a free port against that history, photographs the sample's asset graph,
the two markdown dialogs (opened from their "[Show Markdown]" links over the DevTools
protocol, with the browser tests' driver) and the experiment report with headless Chromium,
shrinks the PNGs and stops everything.
Needs Chromium (scripts/install-browser.sh) and the test extras. Usage:
python scripts/screenshots.py
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser.test_ui_previews import SHOW_MARKDOWN  # noqa: E402
from tests.support.browser import HEADLESS_FLAGS, chromium_page  # noqa: E402

PICTURES = ("asset-graph.png", "ui-variant-matrix.png", "ui-video-partition.png", "report.png")
IMAGES = ROOT / "docs" / "images"
CHROMIUM_FLAGS = [*HEADLESS_FLAGS, "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("chromium not found: run scripts/install-browser.sh first")


def shoot(url: str, target: Path, profile: Path, wait_ms: int, size: str = "1280,800") -> None:
    """Chromium's own --screenshot, after `wait_ms` of virtual time for scripts to settle."""
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={target}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    shrink(target)


def shrink(target: Path) -> None:
    with Image.open(target) as image:
        image.convert("RGB").quantize(colors=128).save(target, optimize=True)


def shoot_markdown(url: str, label: str, target: Path, profile: Path) -> None:
    """The markdown entry `label` of the page at `url`, opened in its dialog."""
    profile.mkdir()
    with chromium_page(profile) as browser:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.open(url)
        deadline = time.monotonic() + 60
        while not browser.evaluate(SHOW_MARKDOWN.replace("LABEL", f'"{label}"')):
            if time.monotonic() > deadline:
                sys.exit(f"no markdown entry {label} on {url}")
            time.sleep(0.25)
        time.sleep(2)  # the dialog's images are data URIs: decoded at once; let it settle
        browser.screenshot(target, 1280, 900)
    shrink(target)


def wait_for_webserver(base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(240):
        if process.poll() is not None:
            sys.exit("dagster dev exited early")
        try:
            if httpx.get(f"{base}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit("dagster dev did not start in two minutes")


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="remix-screenshots-") as scratch:
        work = Path(scratch)
        env = {
            **os.environ,
            "REMIX_PIPELINE_HOME": str(work / "state"),
            "DAGSTER_HOME": str(work / "dagster_home"),
        }
        env.pop("OPENAI_BASE_URL", None)
        (work / "dagster_home").mkdir()
        cli = [sys.executable, "-m", "remix_pipeline.cli"]
        subprocess.run([*cli, "run"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        dagster = Path(sys.executable).with_name("dagster")
        server = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_webserver(base, server)
            shoot(
                f"{base}/asset-groups/sample",
                IMAGES / "asset-graph.png",
                work / "profile-graph",
                wait_ms=20000,
            )
            lineage = pd.read_parquet(ROOT / "data" / "output" / "sample" / "lineage.parquet")
            shoot_markdown(
                f"{base}/assets/sample/lineage",
                "variant_matrix",
                IMAGES / "ui-variant-matrix.png",
                work / "profile-matrix",
            )
            key = str(lineage.iloc[0]["key"])
            shoot_markdown(
                f"{base}/assets/sample/videos?view=partitions&partition={key}",
                "preview",
                IMAGES / "ui-video-partition.png",
                work / "profile-partition",
            )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        report = ROOT / "data" / "output" / "sample" / "report.html"
        shoot(report.as_uri(), IMAGES / "report.png", work / "profile-report", 3000, "1280,900")
    for name in PICTURES:
        path = IMAGES / name
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
