"""`python -m benchmarks.run` without the test extras: one line naming the install command.

The README's first command installs the project without its test extras, so the official
`openai` SDK the contenders use is missing; a system Python lacks the project's own
dependencies too. The harness runs as a user starts it, `python -m benchmarks.run`, with a
`sitecustomize` that makes the named module unimportable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

BLOCKER = """\
import sys

BLOCKED = {blocked!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""


def run_without(module: str, where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = where / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=module))
    path = os.pathsep.join(
        p for p in (str(site), str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            *(args or ("--quick", "--output", str(where / "R.md"))),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("module", ["openai", "httpx"])
def test_a_missing_module_is_one_line_naming_the_install_command(tmp_path: Path, module: str):
    ran = run_without(module, tmp_path)

    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: ")
    assert f"'{module}'" in line
    assert "pip install -e '.[test]'" in line
    assert ".venv/bin/python -m benchmarks.run" in line
    assert not (tmp_path / "R.md").exists()


def test_help_needs_no_test_extra(tmp_path: Path):
    ran = run_without("openai", tmp_path, "--help")

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("usage: python -m benchmarks.run")
