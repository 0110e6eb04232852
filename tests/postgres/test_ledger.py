"""The submission ledger on a real PostgreSQL server: claims and races across processes."""

from __future__ import annotations

from typing import Any

import pytest

from remix_pipeline.ledger import AttemptState, Ledger, LedgerError, VideoAlreadyClaimedError

from ..test_ledger import (
    TABLE_HASH,
    race_processes_to_claim_the_same_videos,
    race_threads_to_record_one_intent,
    request,
    video,
)


@pytest.fixture
def ledger(postgres_url: str) -> Any:
    with Ledger(postgres_url) as opened:
        yield opened


def test_an_intent_recorded_by_one_handle_is_seen_by_another(postgres_url: str) -> None:
    with Ledger(postgres_url) as first, Ledger(postgres_url) as second:
        made = first.record_intent(request(), table_hash=TABLE_HASH, run_id="run-1", now=1.0)
        seen = second.latest()[made.key]
    assert (seen.attempt, seen.state) == (1, AttemptState.INTENT)


def test_a_video_claimed_by_one_attempt_cannot_be_claimed_by_another(ledger: Ledger) -> None:
    one = ledger.record_intent(request(replicate=1), table_hash=TABLE_HASH, run_id=None, now=1)
    two = ledger.record_intent(request(replicate=2), table_hash=TABLE_HASH, run_id=None, now=1)
    ledger.mark_submitted(one.key, 1, video("video_a"), now=2.0)
    with pytest.raises(VideoAlreadyClaimedError):
        ledger.mark_submitted(two.key, 1, video("video_a"), now=2.0)


def test_the_ledger_survives_a_restart(postgres_url: str) -> None:
    with Ledger(postgres_url) as first:
        made = first.record_intent(request(), table_hash=TABLE_HASH, run_id="run-1", now=1.0)
        first.mark_submitted(made.key, 1, video("video_r"), now=2.0)
    with Ledger(postgres_url) as again:
        assert again.latest()[made.key].video_id == "video_r"


def test_a_wrong_password_is_a_clear_error_that_does_not_echo_it(postgres_url: str) -> None:
    bad = postgres_url.replace("remix:remix@", "remix:hunter2@", 1)
    with pytest.raises(LedgerError) as caught:
        Ledger(bad)
    assert "hunter2" not in str(caught.value)
    assert "cannot open the ledger" in str(caught.value)


def test_threads_racing_to_record_one_intent_create_exactly_one_attempt(ledger: Ledger) -> None:
    race_threads_to_record_one_intent(ledger)


def test_two_processes_racing_to_claim_the_same_videos_each_win_each_video_once(
    postgres_url: str,
) -> None:
    race_processes_to_claim_the_same_videos(postgres_url)
