"""Workload 6 reads the submission times of a real lineage table."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.rate_limit import submission_span
from remix_pipeline.lineage import LINEAGE_COLUMNS, TIME_DTYPE


def lineage_with_submissions(*seconds: float | None) -> pd.DataFrame:
    frame = pd.DataFrame({c: [None] * len(seconds) for c in LINEAGE_COLUMNS})
    frame["submitted_at"] = pd.to_datetime(
        pd.Series(seconds, dtype=float), unit="s", utc=True
    ).astype(TIME_DTYPE)
    return frame


def test_span_runs_from_the_first_submission_to_the_last_skipping_unsent_attempts():
    frame = lineage_with_submissions(1_700_000_010.5, None, 1_700_000_000.0, 1_700_000_030.25)

    assert submission_span(frame) == (3, pytest.approx(30.25))


def test_one_or_no_submission_has_no_span():
    assert submission_span(lineage_with_submissions(1_700_000_000.0)) == (1, 0.0)
    assert submission_span(lineage_with_submissions(None)) == (0, 0.0)
