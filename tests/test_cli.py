"""`remix-pipeline` as a program, as against `main` called with arguments from Python."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from remix_pipeline.cli import main

SAMPLE = Path(__file__).parent.parent / "data" / "requests.csv"


def test_main_called_with_arguments_leaves_the_callers_heap_to_the_collector(
    capsys: pytest.CaptureFixture[str],
) -> None:
    frozen = gc.get_freeze_count()

    assert main(["validate", str(SAMPLE)]) == 0
    assert gc.get_freeze_count() == frozen


def test_the_program_freezes_its_heap_as_it_ends_so_exit_skips_collecting_it() -> None:
    program = (
        "import gc, sys\n"
        f"sys.argv = ['remix-pipeline', 'validate', {str(SAMPLE)!r}]\n"
        "from remix_pipeline.cli import main\n"
        "code = main()\n"
        "print(code, gc.get_freeze_count() > 0)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )

    assert finished.stdout.splitlines()[-1] == "0 True"
