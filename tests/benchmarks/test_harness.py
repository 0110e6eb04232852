"""The benchmark harness in quick mode: it runs end to end and reports every workload.

No timing is asserted: the quick sizes are far too small to mean anything. What could fail is
the harness itself (a server that does not start, a contender that cannot finish its work, a
workload that raises) and the table it writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.child import in_child
from benchmarks.plan import QUICK
from benchmarks.report import WORKLOADS
from benchmarks.run import OPT_IN, main


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = tmp_path_factory.mktemp("bench")
    output = where / "RESULTS.md"
    assert main(["--quick", "--output", str(output), "--workdir", str(where / "work")]) == 0
    return output.read_text()


def _table_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_quick_mode_measures_every_workload(results: str) -> None:
    measured = {row[0].split(".")[0] for row in _table_rows(results) if row[3] != "not measured"}
    assert measured == set(WORKLOADS) - OPT_IN


def test_quick_mode_reports_no_failed_workload(results: str) -> None:
    failed = [row for row in _table_rows(results) if row[1].endswith(" failed")]
    assert failed == []


def test_every_contender_completes_every_variant_it_was_given(results: str) -> None:
    end_to_end = [row for row in _table_rows(results) if row[0].startswith("1.")]
    assert len(end_to_end) == len(QUICK.sweep) + 6  # the sweep, then six contenders at N
    for row in end_to_end:
        assert ", 0 failed of" in row[6]
        done, given = row[6].split("; ")[-1].split(" completed, 0 failed of ")
        assert int(done) == int(given)


def test_results_name_the_machine_and_the_targets(results: str) -> None:
    assert "CPU cores:" in results
    assert "dagster 1.13" in results
    assert "## Against the targets of issue 16" in results
    assert "pipeline / tuned floor =" in results


def test_bad_only_option_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "99", "--output", str(Path("/nonexistent/never-written"))]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _nothing() -> None:
    return None


def test_a_childs_peak_memory_is_its_own_not_its_parents() -> None:
    held = bytearray(600 * 2**20)  # this process now holds 600 MiB more than the child needs
    held[::4096] = b"x" * len(held[::4096])  # touched, so it is resident

    _, baseline, peak = in_child(_nothing)

    assert baseline <= peak < 400
