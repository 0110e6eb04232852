"""Run openai-python's own videos tests against `remix-pipeline serve --sdk-fixtures`.

openai-python tests its Videos resource with a generated file,
`tests/api_resources/test_videos.py`, aimed at a mock server (`TEST_API_BASE_URL`). Pointed at
the embedded service it is a conformance check written by someone else. It is OpenAI's code
(Apache-2.0), so it is not part of this repository: the release's sdist is downloaded once with
pip into a cache, its sha256 checked against the one pinned here, and only what the file needs
is unpacked: the SDK's own source at that version (the tests are run against the client they
were written for, not whichever `openai` the venv has), the test file, its conftest and
helpers, the vendored `respx2` mock it imports, and `pyproject.toml` for its pytest settings.

Then the service starts on a free loopback port with `--sdk-fixtures` (the fixed ids the
tests name) and pytest runs the file there, in this interpreter, with the file's own settings
minus `-n auto` (pytest-xdist is not needed) and with the aiohttp variants deselected (aiohttp
is not installed). docs/conformance.md lists the tests that fail and why.

Usage, from the repository root:

    .venv/bin/python scripts/openai_suite.py [--cache DIR] [--json FILE] [-- PYTEST_ARGS...]

The cache defaults to `.remix-pipeline/openai-suite/` in the repository. `--json` writes
every test's outcome and the first line of each failure. Exit status: pytest's (0 when all
pass, 1 when some fail), 2 if the service would not start, 3 if the sdist cannot be had.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "3.3.1"
SDIST = f"openai-{VERSION}.tar.gz"
# The sdist pip downloaded when this runner was written; another file under that name is
# someone else's code we did not read, so pip refuses to fetch it and the cache is checked.
SDIST_SHA256 = "6f22807de1a976c932cecda620e8172a8c3fdbaeed29c7f21564e0c2410edf56"
TEST_FILE = "tests/api_resources/test_videos.py"
# What the test file imports, relative to the sdist's top folder (folders end with "/").
NEEDED = (
    "pyproject.toml",
    "src/openai/",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/utils.py",
    "tests/respx2/",
    "tests/api_resources/__init__.py",
    TEST_FILE,
)
DESELECT = "not aiohttp"
BANNER = "Videos API serving at "
SERVER_START_SECONDS = 60
SUITE_TIMEOUT_SECONDS = 600
EXIT_NO_SERVER = 2
EXIT_NO_SDIST = 3


class Unavailable(Exception):
    """The sdist could not be downloaded or is not the one pinned."""


def default_cache() -> Path:
    return ROOT / ".remix-pipeline" / "openai-suite"


def sdist_path(cache: Path) -> Path:
    """The pinned sdist in `cache`, downloaded with pip if it is not there yet."""
    target = cache / SDIST
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as scratch:
            # Hash-checking mode: pip refuses another file before it runs any of its build
            # code (preparing an sdist's metadata runs the package's build hooks).
            pinned = Path(scratch) / "requirements.txt"
            pinned.write_text(f"openai=={VERSION} --hash=sha256:{SDIST_SHA256}\n")
            command = [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--require-hashes", "-r", str(pinned), "-d", scratch,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            downloaded = Path(scratch) / SDIST
            if done.returncode != 0 or not downloaded.is_file():
                reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise Unavailable(f"pip could not download openai=={VERSION}: {reason}")
            os.replace(downloaded, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise Unavailable(f"{target} has sha256 {digest}, not the pinned {SDIST_SHA256}")
    return target


def unpacked(cache: Path) -> Path:
    """The needed part of the sdist, unpacked once into `cache/openai-<version>/`."""
    folder = cache / f"openai-{VERSION}"
    if (folder / TEST_FILE).is_file():
        return folder
    archive = sdist_path(cache)
    top = f"openai-{VERSION}/"
    with tempfile.TemporaryDirectory(dir=cache, prefix=".unpack-") as scratch:
        with tarfile.open(archive) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith(top) and _needed(m.name.removeprefix(top))
            ]
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(scratch, members=members, **extra)  # type: ignore[arg-type]
        try:
            os.replace(Path(scratch) / top, folder)
        except OSError:
            if not (folder / TEST_FILE).is_file():  # not a concurrent run's finished copy
                raise
    return folder


def _needed(relative: str) -> bool:
    return any(
        relative.startswith(item) if item.endswith("/") else relative == item for item in NEEDED
    )


class Server:
    """`remix-pipeline serve --sdk-fixtures` from this checkout, on a free loopback port."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.log = where / "serve.err"
        env = {**os.environ, "REMIX_PIPELINE_HOME": str(where)}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        command = [
            sys.executable, "-m", "remix_pipeline.cli", "serve", "--port", "0",
            "--db", str(where / "videos.db"), "--sdk-fixtures",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        self.base_url = self._wait_for_banner()

    def _wait_for_banner(self) -> str:
        """The base URL from the line `serve` prints once it listens (it flushes it whole)."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], SERVER_START_SECONDS)
        line = stdout.readline() if ready else ""
        if not line.startswith(BANNER):
            self.stop()
            raise RuntimeError(
                f"the service did not start: {line.strip()!r}\n{self.log.read_text()[-2000:]}"
            )
        return line.removeprefix(BANNER).strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def run_suite(
    suite: Path, base_url: str, junit: Path, pytest_args: list[str]
) -> subprocess.CompletedProcess[str]:
    # The SDK's own source first, so `import openai` is the version the tests were written
    # for; nothing of this checkout, whose `tests` package would shadow the suite's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(suite / "src"), str(suite)]),
        TEST_API_BASE_URL=base_url,
    )
    command = [
        sys.executable, "-m", "pytest", TEST_FILE,
        "-c", "pyproject.toml", "--rootdir", ".",
        "-o", "addopts=--tb=short", "-p", "no:cacheprovider",
        "-k", DESELECT, "-q", f"--junitxml={junit}",
        *pytest_args,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=suite, env=env, text=True, capture_output=True, timeout=SUITE_TIMEOUT_SECONDS
    )


def outcomes(junit: Path) -> dict[str, dict[str, str]]:
    """`Class::test[variant]` -> {"outcome": passed|failed|error|skipped, "message": ...}."""
    results: dict[str, dict[str, str]] = {}
    for case in ET.parse(junit).iter("testcase"):
        classname = case.get("classname", "")
        owner = classname.rsplit(".", 1)[-1]
        name = case.get("name", "")
        test = f"{owner}::{name}" if owner and owner[0].isupper() else name
        results[test] = {"outcome": "passed", "message": ""}
        for element, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            child = case.find(element)
            if child is not None:
                lines = (child.get("message") or child.text or "").strip().splitlines()
                results[test] = {"outcome": outcome, "message": lines[0] if lines else ""}
                break
    return results


def summary(results: dict[str, dict[str, str]], seconds: float) -> dict[str, object]:
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for result in results.values():
        counts[result["outcome"]] += 1
    return {
        "openai_version": VERSION,
        "test_file": TEST_FILE,
        "deselected": DESELECT,
        **counts,
        "seconds": round(seconds, 1),
        "tests": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="Sdist cache folder.")
    parser.add_argument("--json", type=Path, default=None, help="Write the outcomes here.")
    parser.add_argument("pytest_args", nargs="*", help="After --: more pytest arguments.")
    args = parser.parse_args(argv)
    cache = (args.cache or default_cache()).resolve()
    try:
        suite = unpacked(cache)
    except (Unavailable, OSError, subprocess.TimeoutExpired, tarfile.TarError) as exc:
        print(f"openai_suite: {exc}", file=sys.stderr)
        return EXIT_NO_SDIST
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="openai-suite-") as scratch:
        work = Path(scratch)
        try:
            server = Server(work)
        except RuntimeError as exc:
            print(f"openai_suite: {exc}", file=sys.stderr)
            return EXIT_NO_SERVER
        try:
            done = run_suite(suite, server.base_url, work / "junit.xml", args.pytest_args)
        finally:
            server.stop()
        if not (work / "junit.xml").is_file():
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
            return done.returncode or 1
        report = summary(outcomes(work / "junit.xml"), time.monotonic() - started)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"openai-python {VERSION} {TEST_FILE} ({DESELECT}): {report['passed']} passed, "
        f"{report['failed']} failed, {report['error']} errors, {report['skipped']} skipped "
        f"in {report['seconds']} s"
    )
    tests = report["tests"]
    assert isinstance(tests, dict)
    for test, result in tests.items():
        if result["outcome"] in ("failed", "error"):
            print(f"  {result['outcome'].upper()} {test}: {result['message'][:160]}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
