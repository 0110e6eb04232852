"""openai-python's own videos tests (v3.3.1) against `serve --sdk-fixtures`.

`scripts/openai_suite.py` fetches the suite (cached after the first run) and runs it in a
subprocess; this test holds the outcome to docs/conformance.md: the counts, and every failure
one the document lists, answered with the error code it names.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.needs import missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "openai_suite.py"
DOC = ROOT / "docs" / "conformance.md"
EXIT_NO_SDIST = 3
TOTAL = 154  # 38 sync (loose, strict) + 57 async (loose, strict) tests, aiohttp deselected
EXPECTED_FAILED = 28
CLASSES = ("TestVideos", "TestAsyncVideos")
VARIANTS = ("loose", "strict")
# A row of the document's table: | `test_name` | 400 `code` ... | why |
_ROW = re.compile(r"^\| `(test_\w+)` \| 400(?: `(\w+)`)?")


def documented_failures() -> dict[str, str | None]:
    """Each listed test id (class, test, variant) and the error code its answer names."""
    section = DOC.read_text(encoding="utf-8").split("## Tests that fail, and why", 1)[1]
    section = section.split("\n## ", 1)[0]
    failures: dict[str, str | None] = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            for owner in CLASSES:
                for variant in VARIANTS:
                    failures[f"{owner}::{match.group(1)}[{variant}]"] = match.group(2)
    return failures


def test_the_document_lists_as_many_failures_as_this_test_expects() -> None:
    assert len(documented_failures()) == EXPECTED_FAILED


def test_openai_python_suite_passes_but_for_the_documented_exceptions(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(report_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode == EXIT_NO_SDIST:
        missing(f"openai-python's test suite is not available: {done.stderr.strip()}")
    assert report_path.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    tests: dict[str, dict[str, str]] = report["tests"]
    failed = {test: r["message"] for test, r in tests.items() if r["outcome"] != "passed"}
    expected = documented_failures()
    assert sorted(set(failed) - set(expected)) == [], "failures docs/conformance.md does not list"
    assert sorted(set(expected) - set(failed)) == [], "listed failures that now pass"
    for test, code in expected.items():
        assert "Error code: 400" in failed[test], (test, failed[test])
        if code is not None:
            assert f"'code': '{code}'" in failed[test], (test, failed[test])
    assert (len(tests), report["passed"], report["failed"]) == (
        TOTAL,
        TOTAL - EXPECTED_FAILED,
        EXPECTED_FAILED,
    )
    assert (report["error"], report["skipped"]) == (0, 0)
