"""The submission ledger on a real PostgreSQL server: claims and races across processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from remix_pipeline.ledger import (
    MEDIA_VARIANTS,
    AttemptState,
    Ledger,
    LedgerError,
    MediaRecord,
    VideoAlreadyClaimedError,
)
from remix_pipeline.lineage import build_lineage_frame

from ..test_ledger import (
    TABLE_HASH,
    race_processes_to_claim_the_same_videos,
    race_threads_to_record_one_intent,
    request,
    running_jobs_read_in_sql,
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


def record_every_kind_of_attempt(ledger: Ledger) -> None:
    """Attempts in every state, a retry, a failed video, media with a derived file."""
    waiting = ledger.record_intent(request("a", row=1), table_hash=TABLE_HASH, run_id="r", now=1)
    flying = ledger.record_intent(request("b", row=2), table_hash=TABLE_HASH, run_id="r", now=1)
    done = ledger.record_intent(request("c", row=3), table_hash=TABLE_HASH, run_id="r", now=1)
    retried = ledger.record_intent(request("d", row=4), table_hash=TABLE_HASH, run_id="r", now=1)
    ledger.mark_unknown(waiting.key, 1, reason="reset", now=2.0)
    ledger.mark_submitted(flying.key, 1, video("video_b"), now=2.5)
    ledger.mark_submitted(done.key, 1, video("video_c", status="completed"), now=3.25)
    ledger.record_media(
        [
            MediaRecord(
                done.key, 1, variant, f"/m/{variant}", "e" * 64, 7, derived=variant != "video"
            )
            for variant in MEDIA_VARIANTS
        ]
    )
    failure = {"error": {"code": "moderation_blocked", "message": "no"}}
    ledger.mark_submitted(retried.key, 1, video("video_d1", status="failed", **failure), now=4)
    ledger.start_retry(retried.key, run_id="r2", now=5.0)


def test_postgresql_and_sqlite_ledgers_give_the_same_lineage_table(
    postgres_url: str, tmp_path: Path
) -> None:
    frames = []
    for url in (postgres_url, f"sqlite:///{tmp_path / 'ledger.db'}"):
        with Ledger(url) as ledger:
            record_every_kind_of_attempt(ledger)
            frames.append(build_lineage_frame(ledger))
    on_postgres, on_sqlite = frames

    pd.testing.assert_frame_equal(on_postgres, on_sqlite)
    assert list(on_sqlite["state"]) == ["unknown", "submitted", "completed", "failed", "intent"]
    assert on_sqlite["error_code"].iloc[3] == "moderation_blocked"
    assert on_sqlite["thumbnail_derived"].iloc[2] and not on_sqlite["video_derived"].iloc[2]


def test_running_jobs_of_a_server_carry_each_jobs_status_and_progress(ledger: Ledger) -> None:
    running_jobs_read_in_sql(ledger)
