"""Lost responses and transient faults at pipeline level, on the embedded service: every
variant ends completed, with one job each, and the POSTs sent per variant stay bounded."""

from __future__ import annotations

import pytest

from .conftest import assert_everything_once, sends_per_attempt

VARIANTS = 60


def test_a_fifth_of_remix_responses_dropped_loses_nothing_and_the_ledger_names_the_adopted(
    make_project, in_process
):
    project = make_project(VARIANTS, faults={"drop_rate": 0.2, "seed": 11})

    in_process(project)

    frame = assert_everything_once(project)
    adopted = project.ledger_rows("SELECT key FROM attempts WHERE adopted = 1")
    dropped_events = project.ledger_rows(
        "SELECT DISTINCT key FROM events WHERE to_state = 'unknown'"
    )
    assert adopted  # a fifth of the responses were lost, so some jobs were found, not returned
    assert {k for (k,) in adopted} <= {k for (k,) in dropped_events}
    assert int(frame["adopted"].sum()) == len(adopted)
    assert max(sends_per_attempt(project).values()) == 1  # an adopted job is never re-sent
    print(
        f"\nRELIABILITY lost-responses: variants={VARIANTS} jobs={len(project.remix_jobs())} "
        f"duplicates=0 lost=0 adopted={len(adopted)} unknown_outcomes={len(dropped_events)}"
    )


TRANSIENT = {
    "429 storm": {"requests_per_minute": 20, "rate_window_seconds": 0.5},
    "5xx burst": {"error_rate": 0.3},
    "latency spike": {"latency_ms": 300},
    "connection resets": {"drop_rate": 0.3},
    "all at once": {
        "requests_per_minute": 40,
        "rate_window_seconds": 0.5,
        "error_rate": 0.2,
        "latency_ms": 50,
        "drop_rate": 0.2,
    },
}


@pytest.mark.parametrize("faults", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_faults_end_with_every_variant_completed_once(make_project, in_process, faults):
    project = make_project(VARIANTS, faults={**faults, "seed": 5})

    in_process(project, timeout=180)

    assert_everything_once(project)
    sends = sends_per_attempt(project)
    assert max(sends.values()) <= 6  # bounded: three per submission run, at most two runs
    print(
        f"\nRELIABILITY transient {faults}: variants={VARIANTS} jobs={len(project.remix_jobs())} "
        f"duplicates=0 lost=0 posts={sum(sends.values())} max_posts_per_variant="
        f"{max(sends.values())}"
    )
