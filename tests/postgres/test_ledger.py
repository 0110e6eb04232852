"""The submission ledger on a real PostgreSQL server: claims and races across processes."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest

from remix_pipeline.ledger import AttemptState, Ledger, LedgerError, VideoAlreadyClaimedError

from ..test_ledger import TABLE_HASH, request, video


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
    barrier = threading.Barrier(8)
    results = []

    def race(n: int) -> None:
        barrier.wait()
        results.append(
            ledger.record_intent(request(), table_hash=TABLE_HASH, run_id=f"run-{n}", now=1.0)
        )

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({(r.key, r.attempt, r.run_id) for r in results}) == 1
    assert len(ledger.attempts_frame()) == 1


def _claim_all(url: str, worker: int, count: int, start: Any, wins: Any) -> None:
    """One process: claim every video id for its own replicate; count what it won."""
    with Ledger(url) as own:
        keys = [
            own.record_intent(
                request(f"prompt {i}", replicate=worker), table_hash=TABLE_HASH, run_id=None, now=1
            ).key
            for i in range(count)
        ]
        start.wait()
        won = 0
        for i, key in enumerate(keys):
            try:
                own.mark_submitted(key, 1, video(f"video_{i}"), now=2.0, adopted=True)
                won += 1
            except VideoAlreadyClaimedError:
                pass
        wins.put(won)


def test_two_processes_racing_to_claim_the_same_videos_each_win_each_video_once(
    postgres_url: str,
) -> None:
    Ledger(postgres_url).close()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    wins = context.Queue()
    count = 40
    workers = [
        context.Process(target=_claim_all, args=(postgres_url, worker, count, start, wins))
        for worker in (1, 2)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    assert wins.get() + wins.get() == count
    with Ledger(postgres_url) as check:
        claimed = [a for a in check.latest().values() if a.video_id is not None]
        assert sorted(a.video_id for a in claimed) == sorted(f"video_{i}" for i in range(count))
        assert len(claimed) == count
