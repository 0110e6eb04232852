"""The submission ledger on real SQLite files: states, claims, races, events, the lineage frame."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from remix_pipeline.contract import Video
from remix_pipeline.ledger import (
    MEDIA_VARIANTS,
    AttemptState,
    InvalidTransitionError,
    Ledger,
    LedgerError,
    MediaRecord,
    UnknownAttemptError,
    VideoAlreadyClaimedError,
    frames,
)
from remix_pipeline.request_table import VariantRequest, variant_key

TABLE_HASH = "f" * 64


def request(prompt: str = "Make it night", replicate: int = 1, row: int = 1) -> VariantRequest:
    source = "video_src_city"
    return VariantRequest(
        key=variant_key(source, prompt, replicate),
        source_video_id=source,
        prompt=prompt,
        prompt_sha256="0" * 64,
        variant="night",
        experiment="sample",
        replicate=replicate,
        row_number=row,
    )


def video(video_id: str = "video_1", status: str = "queued", **extra: Any) -> Video:
    return Video.model_validate(
        {
            "id": video_id,
            "object": "video",
            "model": "sora-2",
            "status": status,
            "progress": 100 if status == "completed" else 0,
            "created_at": 1_700_000_000,
            "completed_at": None,
            "expires_at": None,
            "prompt": "Make it night",
            "size": "720x1280",
            "seconds": "4",
            "remixed_from_video_id": "video_src_city",
            "error": None,
            **extra,
        }
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(db: Path) -> Ledger:
    with Ledger.for_path(db) as opened:
        yield opened


def intent(ledger: Ledger, req: VariantRequest | None = None, now: float = 10.0):
    return ledger.record_intent(req or request(), table_hash=TABLE_HASH, run_id="run-1", now=now)


def test_record_intent_creates_attempt_1_in_intent_visible_to_another_process_handle(
    ledger: Ledger, db: Path
) -> None:
    created = intent(ledger)
    with Ledger.for_path(db) as other:
        seen = other.latest([created.key])[created.key]
    assert (seen.attempt, seen.state, seen.run_id, seen.intent_at) == (
        1,
        AttemptState.INTENT,
        "run-1",
        10.0,
    )
    assert seen.table_hash == TABLE_HASH
    assert seen.sent_at is None


def test_record_intent_twice_returns_the_existing_attempt_unchanged(ledger: Ledger) -> None:
    first = intent(ledger)
    again = ledger.record_intent(request(), table_hash="e" * 64, run_id="run-2", now=99.0)
    assert again == first
    assert ledger.lineage_columns().num_rows == 1


def test_record_intents_writes_a_batch_and_keeps_existing_attempts(ledger: Ledger) -> None:
    existing = intent(ledger)
    ledger.mark_sent(existing.key, 1, sent_at=11.0)
    batch = [request(), request("Add snow"), request("Add snow", replicate=2)]
    latest = ledger.record_intents(batch, table_hash=TABLE_HASH, run_id="run-2", now=20.0)
    assert set(latest) == {r.key for r in batch}
    assert latest[existing.key].sent_at == 11.0
    assert {latest[r.key].run_id for r in batch[1:]} == {"run-2"}


def test_mark_sent_stamps_the_attempt_and_logs_an_event(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_sent(created.key, 1, sent_at=12.5)
    assert ledger.get(created.key, 1).sent_at == 12.5
    assert ledger.history([(created.key, 1)])[(created.key, 1)][-1].detail == "sent"


def test_mark_submitted_claims_the_video_and_stores_its_record(ledger: Ledger) -> None:
    created = intent(ledger)
    recorded = ledger.mark_submitted(created.key, 1, video(), now=13.0)
    assert recorded.state is AttemptState.SUBMITTED
    assert (recorded.video_id, recorded.submitted_at, recorded.adopted) == ("video_1", 13.0, False)
    assert recorded.video is not None and recorded.video["status"] == "queued"
    assert ledger.claimed_video_ids() == {"video_1"}


def test_a_video_claimed_by_one_attempt_cannot_be_claimed_by_another(ledger: Ledger) -> None:
    first = intent(ledger)
    second = intent(ledger, request(replicate=2))
    ledger.mark_submitted(first.key, 1, video(), now=13.0)
    with pytest.raises(VideoAlreadyClaimedError, match="video_1"):
        ledger.mark_submitted(second.key, 1, video(), now=14.0, adopted=True)
    assert ledger.get(second.key, 1).state is AttemptState.INTENT


def test_mark_submitted_many_records_every_claim_and_returns_refusals_in_place(
    ledger: Ledger,
) -> None:
    taken = intent(ledger, request(replicate=1))
    ledger.mark_submitted(taken.key, 1, video("video_taken"), now=13.0)
    first = intent(ledger, request(replicate=2))
    second = intent(ledger, request(replicate=3))
    results = ledger.mark_submitted_many(
        [(first.key, 1, video("video_a")), (second.key, 1, video("video_taken"))], now=14.0
    )
    assert isinstance(results[0], type(first)) and results[0].video_id == "video_a"
    assert isinstance(results[1], VideoAlreadyClaimedError)
    assert ledger.get(first.key, 1).state is AttemptState.SUBMITTED
    assert ledger.get(second.key, 1).state is AttemptState.INTENT


def test_mark_submitted_many_finishes_a_claim_whose_video_is_already_terminal(
    ledger: Ledger,
) -> None:
    created = intent(ledger)
    (done,) = ledger.mark_submitted_many([(created.key, 1, video(status="completed"))], now=13.0)
    assert not isinstance(done, LedgerError)
    assert (done.state, done.finished_at) == (AttemptState.COMPLETED, 13.0)


def test_update_videos_refreshes_several_attempts_and_returns_those_it_ended(
    ledger: Ledger,
) -> None:
    running = intent(ledger, request("running"))
    ending = intent(ledger, request("ending"))
    ledger.mark_submitted(running.key, 1, video("video_r"), now=2.0)
    ledger.mark_submitted(ending.key, 1, video("video_e"), now=2.0)
    ended = ledger.update_videos(
        [
            (running.key, 1, video("video_r", status="in_progress", progress=40)),
            (ending.key, 1, video("video_e", status="completed")),
        ],
        now=3.0,
    )
    assert [(a.key, a.state) for a in ended] == [(ending.key, AttemptState.COMPLETED)]
    assert ledger.get(running.key, 1).video["progress"] == 40  # type: ignore[index]
    assert ledger.get(ending.key, 1).finished_at == 3.0


def test_a_refused_update_in_a_batch_writes_nothing_of_the_batch(ledger: Ledger) -> None:
    first = intent(ledger, request("first"))
    second = intent(ledger, request("second"))
    ledger.mark_submitted(first.key, 1, video("video_f"), now=2.0)
    ledger.mark_submitted(second.key, 1, video("video_s"), now=2.0)

    with pytest.raises(InvalidTransitionError, match="video_other"):
        ledger.update_videos(
            [
                (first.key, 1, video("video_f", status="in_progress", progress=40)),
                (second.key, 1, video("video_other", status="in_progress")),
            ],
            now=3.0,
        )

    assert ledger.get(first.key, 1).video["progress"] == 0  # type: ignore[index]


def test_mark_submitted_again_with_the_same_video_is_idempotent(ledger: Ledger) -> None:
    created = intent(ledger)
    first = ledger.mark_submitted(created.key, 1, video(), now=13.0)
    assert ledger.mark_submitted(created.key, 1, video(), now=20.0) == first


def test_an_adopted_orphan_is_marked_adopted_after_an_unknown_outcome(ledger: Ledger) -> None:
    created = intent(ledger)
    unknown = ledger.mark_unknown(created.key, 1, reason="read timeout", now=12.0)
    adopted = ledger.mark_submitted(created.key, 1, video(), now=30.0, adopted=True)
    assert unknown.state is AttemptState.UNKNOWN
    assert (adopted.state, adopted.adopted, adopted.error_message) == (
        AttemptState.SUBMITTED,
        True,
        None,
    )
    history = ledger.history([(created.key, 1)])[(created.key, 1)]
    assert "read timeout" in [e.detail for e in history]


def test_submitting_an_already_completed_video_completes_the_attempt(ledger: Ledger) -> None:
    created = intent(ledger)
    done = ledger.mark_submitted(created.key, 1, video(status="completed"), now=13.0)
    assert done.state is AttemptState.COMPLETED
    assert done.finished_at == 13.0


def test_update_video_to_completed_finishes_the_attempt(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_submitted(created.key, 1, video(), now=13.0)
    running = ledger.update_video(created.key, 1, video(status="in_progress"), now=14.0)
    done = ledger.update_video(created.key, 1, video(status="completed"), now=15.0)
    assert running.state is AttemptState.SUBMITTED
    assert (done.state, done.finished_at) == (AttemptState.COMPLETED, 15.0)
    assert done.video is not None and done.video["progress"] == 100


def test_update_video_to_failed_records_the_server_error(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_submitted(created.key, 1, video(), now=13.0)
    failed = ledger.update_video(
        created.key,
        1,
        video(status="failed", error={"code": "moderation_blocked", "message": "blocked"}),
        now=15.0,
    )
    assert (failed.state, failed.error_code, failed.error_message) == (
        AttemptState.FAILED,
        "moderation_blocked",
        "blocked",
    )


def test_update_video_with_another_video_id_is_refused(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_submitted(created.key, 1, video(), now=13.0)
    with pytest.raises(InvalidTransitionError, match="video_2"):
        ledger.update_video(created.key, 1, video("video_2"), now=14.0)


def test_mark_failed_ends_the_attempt_with_code_and_message(ledger: Ledger) -> None:
    created = intent(ledger)
    failed = ledger.mark_failed(created.key, 1, code="not_found", message="no source", now=12.0)
    assert (failed.state, failed.error_code, failed.finished_at) == (
        AttemptState.FAILED,
        "not_found",
        12.0,
    )
    assert failed.is_terminal


def test_a_completed_attempt_cannot_be_marked_failed(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_submitted(created.key, 1, video(status="completed"), now=13.0)
    with pytest.raises(InvalidTransitionError, match="completed"):
        ledger.mark_failed(created.key, 1, code="x", message="y", now=14.0)


def test_a_submitted_attempt_cannot_be_sent_again(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_submitted(created.key, 1, video(), now=13.0)
    with pytest.raises(InvalidTransitionError):
        ledger.mark_sent(created.key, 1, sent_at=14.0)


def test_start_retry_after_a_failure_adds_attempt_2_and_keeps_attempt_1(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_failed(created.key, 1, code="server_error", message="boom", now=12.0)
    retry = ledger.start_retry(created.key, run_id="run-2", now=20.0)
    assert (retry.attempt, retry.state, retry.run_id) == (2, AttemptState.INTENT, "run-2")
    assert (retry.prompt, retry.row_number) == (created.prompt, created.row_number)
    assert ledger.latest()[created.key].attempt == 2
    assert ledger.get(created.key, 1).state is AttemptState.FAILED


def test_start_retry_is_refused_while_the_latest_attempt_has_not_ended(ledger: Ledger) -> None:
    created = intent(ledger)
    with pytest.raises(InvalidTransitionError, match="only an ended attempt"):
        ledger.start_retry(created.key, run_id=None, now=20.0)
    ledger.mark_submitted(created.key, 1, video(), now=13.0)
    with pytest.raises(InvalidTransitionError, match="only an ended attempt"):
        ledger.start_retry(created.key, run_id=None, now=20.0)


def test_start_retry_after_a_completed_video_keeps_the_completed_attempt(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_submitted(created.key, 1, video(), now=13.0)
    ledger.update_video(created.key, 1, video(status="completed"), now=14.0)

    retry = ledger.start_retry(created.key, run_id="run-2", now=20.0)

    assert retry.attempt == 2
    assert ledger.get(created.key, 1).state is AttemptState.COMPLETED


def test_unknown_keys_raise_a_clear_error(ledger: Ledger) -> None:
    with pytest.raises(UnknownAttemptError, match="no attempt 1 recorded for nope"):
        ledger.mark_sent("nope", 1, sent_at=1.0)
    with pytest.raises(UnknownAttemptError):
        ledger.start_retry("nope", run_id=None, now=1.0)


def test_queries_select_attempts_by_state(ledger: Ledger) -> None:
    waiting = intent(ledger, request("a"))
    unknown = intent(ledger, request("b"))
    flying = intent(ledger, request("c"))
    done = intent(ledger, request("d"))
    failed = intent(ledger, request("e"))
    ledger.mark_unknown(unknown.key, 1, reason="reset", now=11.0)
    ledger.mark_submitted(flying.key, 1, video("video_c"), now=12.0)
    ledger.mark_submitted(done.key, 1, video("video_d", status="completed"), now=12.0)
    ledger.mark_failed(failed.key, 1, code="x", message="y", now=12.0)
    states = {key: a.state for key, a in ledger.latest([waiting.key, unknown.key]).items()}
    assert states == {waiting.key: AttemptState.INTENT, unknown.key: AttemptState.UNKNOWN}
    assert [a.key for a in ledger.in_flight()] == [flying.key]
    assert {a.key for a in ledger.finished_unreported()} == {done.key, failed.key}
    ledger.mark_reported([(done.key, 1)])
    assert [a.key for a in ledger.finished_unreported()] == [failed.key]
    assert ledger.get(done.key, 1).reported


def test_latest_filters_by_many_keys_in_chunks(ledger: Ledger) -> None:
    batch = [request(f"prompt {i}") for i in range(1200)]
    ledger.record_intents(batch, table_hash=TABLE_HASH, run_id=None, now=1.0)
    wanted = [r.key for r in batch[::2]] + ["absent"]
    assert set(ledger.latest(wanted)) == {r.key for r in batch[::2]}


def test_media_is_recorded_replaced_and_read_back(ledger: Ledger) -> None:
    created = intent(ledger)
    first = MediaRecord(created.key, 1, "video", "/old/video.mp4", "a" * 64, 10)
    second = MediaRecord(created.key, 1, "video", "/new/video.mp4", "b" * 64, 20)
    thumb = MediaRecord(created.key, 1, "thumbnail", "/new/thumbnail.webp", "c" * 64, 5)
    for record in (first, second, thumb):
        ledger.record_media([record])
    assert ledger.media(created.key, 1) == {"video": second, "thumbnail": thumb}


def test_record_media_records_several_files_in_one_call(ledger: Ledger) -> None:
    created = intent(ledger)
    records = [
        MediaRecord(created.key, 1, variant, f"/m/{variant}", "a" * 64, 3)
        for variant in MEDIA_VARIANTS
    ]
    ledger.record_media(records)
    assert ledger.media(created.key, 1) == {r.variant: r for r in records}
    assert ledger.media_variants([(created.key, 1), (created.key, 2)]) == {
        (created.key, 1): set(MEDIA_VARIANTS),
        (created.key, 2): set(),
    }


def test_latest_states_gives_each_keys_latest_attempt_and_whether_its_media_are_complete(
    ledger: Ledger,
) -> None:
    done = intent(ledger, request("done"))
    ledger.mark_submitted(done.key, 1, video("video_done", status="completed"), now=2.0)
    ledger.record_media(
        [MediaRecord(done.key, 1, v, f"/m/{v}", "a" * 64, 1) for v in MEDIA_VARIANTS]
    )
    retried = intent(ledger, request("retried"))
    ledger.mark_failed(retried.key, 1, code="x", message="y", now=3.0)
    ledger.start_retry(retried.key, run_id="run-2", now=4.0)
    intent(ledger, request("not in the table"))

    states = ledger.latest_states([done.key, retried.key, "never recorded"])

    assert sorted(states) == [(AttemptState.COMPLETED, True), (AttemptState.INTENT, False)]


def test_media_for_an_unknown_attempt_is_refused(ledger: Ledger) -> None:
    with pytest.raises(UnknownAttemptError):
        ledger.record_media([MediaRecord("nope", 1, "video", "/x", "a" * 64, 1)])


def test_lineage_columns_have_every_attempt_with_media_wide(ledger: Ledger) -> None:
    created = intent(ledger)
    ledger.mark_failed(created.key, 1, code="x", message="y", now=12.0)
    ledger.start_retry(created.key, run_id="run-2", now=13.0)
    ledger.record_media([MediaRecord(created.key, 2, "video", "/v.mp4", "a" * 64, 10)])
    frame = ledger.lineage_columns().to_pandas()
    assert list(frame["attempt"]) == [1, 2]
    for variant in MEDIA_VARIANTS:
        assert {f"{variant}_path", f"{variant}_sha256", f"{variant}_bytes"} <= set(frame.columns)
    assert frame.loc[1, "video_path"] == "/v.mp4"
    assert frame.loc[1, "video_bytes"] == 10
    assert frame["video_path"].isna().tolist() == [True, False]


def test_lineage_columns_read_in_slices_are_the_same_table_as_one_read(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows 1 to 9 in three slices; rows 1 and 9 failed and row 1 was retried, so the middle
    slice's error columns are all null and its column types differ before the cast."""
    made = [intent(ledger, request(f"prompt {row}", row=row)) for row in range(1, 10)]
    ledger.mark_failed(made[0].key, 1, code="x", message="y", now=12.0)
    ledger.start_retry(made[0].key, run_id="run-2", now=13.0)
    ledger.mark_failed(made[8].key, 1, code="moderation_blocked", message="no", now=12.0)
    ledger.record_media([MediaRecord(made[4].key, 1, "video", "/v.mp4", "a" * 64, 10)])
    monkeypatch.setattr(frames, "READERS", 1)
    whole = ledger.lineage_columns()

    monkeypatch.setattr(frames, "READERS", 4)
    monkeypatch.setattr(frames, "ATTEMPTS_PER_READER", 2)
    sliced = ledger.lineage_columns()

    assert sliced.equals(whole)
    assert whole["row_number"].to_pylist() == [1, 1, *range(2, 10)]
    assert whole["error_code"].to_pylist()[-1] == "moderation_blocked"


def test_lineage_readers_opening_at_once_wait_for_the_file_instead_of_failing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four slices read at once, fifty times over: without a busy timeout on the bulk
    readers, SQLite answered "database is locked" at once: this failed 6 runs in 6."""
    for row in range(1, 9):
        intent(ledger, request(f"prompt {row}", row=row))
    monkeypatch.setattr(frames, "READERS", 4)
    monkeypatch.setattr(frames, "ATTEMPTS_PER_READER", 2)

    lengths = [len(ledger.lineage_columns()) for _ in range(50)]

    assert lengths == [8] * 50


def test_writes_after_a_lineage_read_in_the_same_process_reach_the_file(
    ledger: Ledger, db: Path
) -> None:
    """The bulk read's driver carries its own copy of SQLite. Closing its connection while
    the ledger's pooled ones stayed open, it took itself for the file's last user and
    deleted the write-ahead log under them: the next write went to the deleted log, and
    another connection then failed with "disk I/O error"."""
    intent(ledger, request("before"))

    ledger.lineage_columns()
    intent(ledger, request("after"))

    with sqlite3.connect(db) as other:
        keys = {row[0] for row in other.execute("SELECT key FROM attempts")}
    assert keys == {request("before").key, request("after").key}
    assert (db.parent / f"{db.name}-wal").exists()


def test_a_lineage_read_leaves_the_log_of_a_connection_it_cannot_close_in_place(
    ledger: Ledger, db: Path
) -> None:
    """A connection the ledger does not own (here a plain sqlite3 one) stays open across the
    bulk read; the reader, opened read-only, must not delete the log that connection uses."""
    intent(ledger, request("before"))
    outside = sqlite3.connect(db, isolation_level=None)
    try:
        outside.execute("SELECT COUNT(*) FROM attempts").fetchall()
        ledger.lineage_columns()
        outside.execute("UPDATE attempts SET run_id = 'outside'")
        with sqlite3.connect(db) as other:
            run_ids = [row[0] for row in other.execute("SELECT run_id FROM attempts")]
    finally:
        outside.close()
    assert run_ids == ["outside"]


def test_lineage_columns_of_an_empty_ledger_have_the_media_columns(ledger: Ledger) -> None:
    frame = ledger.lineage_columns().to_pandas()
    assert len(frame) == 0
    assert "spritesheet_sha256" in frame.columns


def test_history_records_every_state_change_of_each_attempt_in_order(ledger: Ledger) -> None:
    created = intent(ledger)
    other = intent(ledger, request("other"))
    ledger.mark_sent(created.key, 1, sent_at=11.0)
    ledger.mark_submitted(created.key, 1, video(), now=12.0)
    ledger.update_video(created.key, 1, video(status="completed"), now=13.0)
    histories = ledger.history([(created.key, 1), (other.key, 1), (created.key, 2)])
    events = histories[(created.key, 1)]
    steps = [(e.from_state, e.to_state) for e in events]
    assert steps == [
        (None, AttemptState.INTENT),
        (AttemptState.INTENT, AttemptState.INTENT),
        (AttemptState.INTENT, AttemptState.SUBMITTED),
        (AttemptState.SUBMITTED, AttemptState.COMPLETED),
    ]
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)
    assert [(e.key, e.to_state) for e in histories[(other.key, 1)]] == [
        (other.key, AttemptState.INTENT)
    ]
    assert histories[(created.key, 2)] == []


def test_the_ledger_survives_a_restart(db: Path) -> None:
    with Ledger.for_path(db) as first:
        created = intent(first)
        first.mark_submitted(created.key, 1, video(), now=12.0)
    with Ledger.for_path(db) as reopened:
        assert reopened.in_flight()[0].video_id == "video_1"


def test_sqlite_ledger_uses_write_ahead_logging(ledger: Ledger, db: Path) -> None:
    intent(ledger)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_repr_names_the_database_without_secrets(db: Path) -> None:
    with Ledger(f"sqlite:///{db}") as opened:
        assert repr(opened) == f"Ledger('sqlite:///{db}')"


def test_an_invalid_url_is_a_clear_error_that_does_not_echo_it() -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger("not a url :: hunter2")
    assert "hunter2" not in str(caught.value)


def test_an_unopenable_database_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match="cannot open the ledger") as caught:
        Ledger(f"sqlite:///{blocker}/sub/ledger.db")
    assert "Traceback" not in str(caught.value)


def test_a_missing_driver_is_a_clear_error() -> None:
    with pytest.raises(LedgerError, match="no database driver") as caught:
        Ledger("nosuchdb://user:hunter2@host/db")
    assert "hunter2" not in str(caught.value)


def race_threads_to_record_one_intent(ledger: Ledger) -> None:
    """Eight threads record the same intent at once: exactly one attempt exists after."""
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
    assert ledger.lineage_columns().num_rows == 1


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


def race_processes_to_claim_the_same_videos(url: str) -> None:
    """Two processes claim the same 40 videos for their own replicates: each video is won once."""
    Ledger(url).close()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    wins = context.Queue()
    count = 40
    workers = [
        context.Process(target=_claim_all, args=(url, worker, count, start, wins))
        for worker in (1, 2)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    assert wins.get() + wins.get() == count
    with Ledger(url) as check:
        claimed = [a for a in check.latest().values() if a.video_id is not None]
        assert sorted(a.video_id for a in claimed) == sorted(f"video_{i}" for i in range(count))
        assert len(claimed) == count


def test_threads_racing_to_record_one_intent_create_exactly_one_attempt(ledger: Ledger) -> None:
    race_threads_to_record_one_intent(ledger)


def test_two_processes_racing_to_claim_the_same_videos_each_win_each_video_once(
    db: Path,
) -> None:
    race_processes_to_claim_the_same_videos(f"sqlite:///{db}")


def test_lineage_columns_read_100k_attempts_in_bulk(
    ledger: Ledger, record_property: pytest.RecordProperty
) -> None:
    batch = [request(f"prompt {i}", row=i + 1) for i in range(100_000)]
    ledger.record_intents(batch, table_hash=TABLE_HASH, run_id="run-1", now=1.0)
    started = time.perf_counter()
    frame = ledger.lineage_columns().to_pandas()
    seconds = time.perf_counter() - started
    record_property("lineage_columns_100k_seconds", round(seconds, 2))
    print(f"lineage_columns: {len(frame)} rows in {seconds:.2f} s")
    assert len(frame) == 100_000
    assert frame["key"].is_unique
    assert set(frame["state"]) == {"intent"}


def test_a_ledger_of_an_older_version_gains_the_new_columns_and_indexes_and_keeps_its_rows(
    tmp_path,
):
    """Made with the schema of 2026-11-25 (no server, poll-violation or media-derived
    columns, no indexes beyond its constraints), then opened by this version: nothing is lost
    and every new column and index is there."""
    import sqlite3

    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE attempts (
                id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(200) NOT NULL,
                attempt INTEGER NOT NULL, state VARCHAR(16) NOT NULL,
                source_video_id VARCHAR(200) NOT NULL, prompt TEXT NOT NULL,
                prompt_sha256 VARCHAR(64) NOT NULL, variant TEXT NOT NULL,
                experiment TEXT NOT NULL, replicate INTEGER NOT NULL,
                table_hash VARCHAR(64) NOT NULL, row_number INTEGER NOT NULL,
                run_id VARCHAR(200), intent_at FLOAT NOT NULL, sent_at FLOAT,
                submitted_at FLOAT, finished_at FLOAT, video_id VARCHAR(200), video TEXT,
                error_code VARCHAR(200), error_message TEXT, adopted BOOLEAN NOT NULL,
                reported BOOLEAN NOT NULL,
                UNIQUE (key, attempt), UNIQUE (video_id));
            CREATE TABLE media (
                key VARCHAR(200) NOT NULL, attempt INTEGER NOT NULL, variant VARCHAR(32) NOT NULL,
                path TEXT NOT NULL, sha256 VARCHAR(64) NOT NULL, size_bytes BIGINT NOT NULL,
                PRIMARY KEY (key, attempt, variant));
            CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(200) NOT NULL,
                attempt INTEGER NOT NULL, at FLOAT NOT NULL, from_state VARCHAR(16),
                to_state VARCHAR(16) NOT NULL, detail TEXT);
            INSERT INTO events (key, attempt, at, to_state) VALUES ('k.1', 1, 1.0, 'intent');
            INSERT INTO attempts (key, attempt, state, source_video_id, prompt, prompt_sha256,
                variant, experiment, replicate, table_hash, row_number, intent_at, adopted,
                reported) VALUES ('k.1', 1, 'intent', 'video_src', 'p', 'x', 'v', 'e', 1, 'h',
                1, 1.0, 0, 0);
            INSERT INTO media VALUES ('k.1', 1, 'video', '/m/video.mp4', 'a', 10);
            """
        )
    ledger = Ledger.for_path(path)
    old = ledger.get("k.1", 1)
    assert (old.server, old.poll_violations, old.violation) == (None, 0, None)
    assert (old.operation, old.source_sha256) == ("remix", None)  # every older attempt remixed
    assert ledger.media("k.1", 1)["video"].derived is False
    assert ledger.assign_server("embedded", recorded=None) == 1
    assert ledger.get("k.1", 1).server == "embedded"
    with sqlite3.connect(path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list(attempts)")}
        event_indexes = {row[1] for row in db.execute("PRAGMA index_list(events)")}
    assert {"ix_attempts_state", "ix_attempts_table_order"} <= indexes
    assert "ix_events_key" in event_indexes
    assert [e.to_state.value for e in ledger.history([("k.1", 1)])[("k.1", 1)]] == ["intent"]
    Ledger.for_path(path)  # opening it again changes nothing


def running_jobs_read_in_sql(ledger: Ledger) -> None:
    """Shared with the PostgreSQL tests: the Video's fields come out of each dialect's JSON."""
    for prompt, server, status, progress in [
        ("a", "http://one", "queued", 0),
        ("b", "http://two", "in_progress", 40),
        ("c", None, "in_progress", 65),
        ("d", "http://one", "completed", 100),
    ]:
        made = ledger.record_intent(
            request(prompt), table_hash=TABLE_HASH, run_id=None, now=1.0, server=server
        )
        ledger.mark_sent(made.key, 1, sent_at=1.5)
        ledger.mark_submitted(
            made.key, 1, video(f"video_{prompt}", status=status, progress=progress), now=2.0
        )
    ledger.record_intent(request("e"), table_hash=TABLE_HASH, run_id=None, now=1.0)

    one = {(j.video_id, j.status, j.progress, j.since) for j in ledger.running_jobs("http://one")}
    assert one == {("video_a", "queued", 0, 1.5), ("video_c", "in_progress", 65, 1.5)}
    assert {j.video_id for j in ledger.running_jobs()} == {"video_a", "video_b", "video_c"}


def test_running_jobs_of_a_server_carry_each_jobs_status_and_progress(ledger: Ledger) -> None:
    running_jobs_read_in_sql(ledger)


def test_servers_in_flight_names_each_server_holding_a_running_job_once(ledger: Ledger) -> None:
    for prompt, server, status in [
        ("a", "http://one", "queued"),
        ("b", "http://one", "in_progress"),
        ("c", "http://two", "completed"),
        ("d", "embedded", "queued"),
    ]:
        made = ledger.record_intent(
            request(prompt), table_hash=TABLE_HASH, run_id=None, now=1.0, server=server
        )
        ledger.mark_submitted(made.key, 1, video(f"video_{prompt}", status=status), now=2.0)
    ledger.record_intent(request("e"), table_hash=TABLE_HASH, run_id=None, now=1.0, server="x")

    assert ledger.servers_in_flight() == {"http://one", "embedded"}
