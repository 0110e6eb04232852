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


def test_a_command_imports_only_its_own_module() -> None:
    program = (
        "import sys\n"
        "from remix_pipeline.cli import main\n"
        f"code = main(['validate', {str(SAMPLE)!r}])\n"
        "others = ('remix_pipeline.service.server', 'remix_pipeline.server_check', 'uvicorn')\n"
        "print(code, [name for name in others if name in sys.modules])\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )

    assert finished.stdout.splitlines()[-1] == "0 []"


def test_the_help_lists_every_command_and_a_commands_help_its_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    serve = capsys.readouterr().out

    for command in ("run", "serve", "lineage", "validate", "check-server"):
        assert command in listing
    assert "--port" in serve
