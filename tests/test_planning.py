"""The payment policy alone: no Dagster instance, no server, no database."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from remix_pipeline.ledger import Attempt, AttemptState
from remix_pipeline.planning import (
    PayAgainRules,
    awaits_listing,
    has_expired,
    is_retryable,
    listing_grace_seconds,
    moved_away,
    needs_payment,
    needs_settling,
    needs_submission,
    parent_settled,
    to_pay_again,
    unpaid_requests,
)
from remix_pipeline.request_table import VariantRequest
from remix_pipeline.servers import ServerChangedError

NOW = 1_000_000.0
HERE = "embedded"


def attempt(key: str = "k", state: AttemptState = AttemptState.SUBMITTED, **fields: Any) -> Attempt:
    base = Attempt(
        key=key,
        attempt=1,
        state=state,
        source_video_id="video_src",
        prompt="p",
        prompt_sha256="0" * 64,
        variant="v",
        experiment="e",
        replicate=1,
        table_hash="h",
        row_number=1,
        run_id="run-1",
        intent_at=NOW - 100,
        sent_at=NOW - 90,
        submitted_at=None,
        finished_at=None,
        video_id=None,
        video=None,
        error_code=None,
        error_message=None,
        adopted=False,
        reported=False,
        server=HERE,
        poll_violations=0,
        violation=None,
        violation_since=None,
    )
    return replace(base, **fields)


def request(key: str, parent_key: str | None = None) -> VariantRequest:
    return VariantRequest(key, "video_src", "p", "0" * 64, "v", "e", 1, 1, parent_key)


class StubLedger:
    """The two reads the policy makes, answered from memory."""

    def __init__(self, latest: dict[str, Attempt], media: dict[tuple[str, int], set[str]]):
        self._latest, self._media = latest, media

    def latest(self, keys: Any = None) -> dict[str, Attempt]:
        wanted = self._latest.keys() if keys is None else set(keys)
        return {k: a for k, a in self._latest.items() if k in wanted}

    def media_variants(self, pairs: Any) -> dict[tuple[str, int], set[str]]:
        return {pair: self._media.get(pair, set()) for pair in pairs}


def gone(attempt: Attempt) -> bool:
    return True


def alive(attempt: Attempt) -> bool:
    return False


def test_the_embedded_service_has_no_listing_grace():
    assert listing_grace_seconds(exhaustive=True, timeout_seconds=60) == 0.0


def test_a_remote_server_has_twice_the_timeout_as_listing_grace():
    assert listing_grace_seconds(exhaustive=False, timeout_seconds=60) == 120.0


def test_an_attempt_sent_within_the_grace_awaits_the_listing():
    assert awaits_listing(attempt(sent_at=NOW - 10), grace_seconds=120, now=NOW)


def test_an_attempt_never_sent_does_not_await_the_listing():
    assert not awaits_listing(attempt(sent_at=None), grace_seconds=120, now=NOW)


def test_a_variant_without_an_attempt_needs_payment():
    assert needs_payment(None)


def test_a_finished_attempt_needs_payment_only_when_paid_again():
    failed = attempt(state=AttemptState.FAILED)
    assert not needs_payment(failed)
    assert needs_payment(failed, lambda a: True)


def test_an_attempt_in_flight_is_never_paid_again():
    assert not needs_payment(attempt(state=AttemptState.SUBMITTED), lambda a: True)


def test_an_interrupted_intent_whose_run_is_gone_needs_settling():
    intent = attempt(state=AttemptState.INTENT)
    assert needs_settling(intent, grace_seconds=0, owner_gone=gone, now=NOW)


def test_an_interrupted_intent_whose_run_lives_does_not_need_settling():
    intent = attempt(state=AttemptState.INTENT)
    assert not needs_settling(intent, grace_seconds=0, owner_gone=alive, now=NOW)


def test_an_unknown_outcome_within_the_listing_grace_waits_even_if_its_run_is_gone():
    unknown = attempt(state=AttemptState.UNKNOWN, sent_at=NOW - 10)
    assert not needs_settling(unknown, grace_seconds=120, owner_gone=gone, now=NOW)


def test_an_unknown_outcome_after_the_listing_grace_needs_settling():
    unknown = attempt(state=AttemptState.UNKNOWN, sent_at=NOW - 500)
    assert needs_settling(unknown, grace_seconds=120, owner_gone=gone, now=NOW)


def test_a_submitted_job_needs_no_submission():
    running = attempt(state=AttemptState.SUBMITTED)
    assert not needs_submission(running, grace_seconds=0, owner_gone=gone, now=NOW)


def test_needs_submission_is_payment_or_settling():
    failed = attempt(state=AttemptState.FAILED)
    again = needs_submission(
        failed, pay_again=lambda a: True, grace_seconds=0, owner_gone=alive, now=NOW
    )
    assert again
    assert needs_submission(None, grace_seconds=0, owner_gone=alive, now=NOW)


def test_a_server_caused_failure_is_retryable():
    assert is_retryable(attempt(state=AttemptState.FAILED, error_code="internal_error"))


def test_a_moderation_failure_is_not_retryable():
    assert not is_retryable(attempt(state=AttemptState.FAILED, error_code="moderation_blocked"))


def test_a_completed_video_past_expires_at_has_expired():
    done = attempt(state=AttemptState.COMPLETED, video={"expires_at": NOW - 1})
    assert has_expired(done, NOW)


def test_a_completed_video_without_expires_at_never_expires():
    assert not has_expired(attempt(state=AttemptState.COMPLETED, video={}), NOW)


def test_a_finished_attempt_on_another_server_moved_away():
    assert moved_away(attempt(state=AttemptState.COMPLETED, server="http://old/v1"), HERE)


def test_an_attempt_still_running_elsewhere_has_not_moved_away():
    assert not moved_away(attempt(state=AttemptState.SUBMITTED, server="http://old/v1"), HERE)


def test_attempts_on_another_server_stop_payment_until_the_user_chooses():
    latest = {"k": attempt(state=AttemptState.COMPLETED, server="http://old/v1")}
    with pytest.raises(ServerChangedError):
        to_pay_again(StubLedger(latest, {}), latest, NOW, PayAgainRules(server=HERE))


def test_start_afresh_pays_again_for_attempts_that_ended_elsewhere():
    latest = {"k": attempt(state=AttemptState.COMPLETED, server="http://old/v1")}
    rules = PayAgainRules(server=HERE, start_afresh=True)
    assert to_pay_again(StubLedger(latest, {}), latest, NOW, rules, refresh=False) == {"k"}


def test_a_refresh_pays_again_for_retryable_failures_only():
    latest = {
        "a": attempt("a", AttemptState.FAILED, error_code="server_error"),
        "b": attempt("b", AttemptState.FAILED, error_code="moderation_blocked"),
    }
    assert to_pay_again(StubLedger(latest, {}), latest, NOW, PayAgainRules(HERE)) == {"a"}


def test_without_a_refresh_retryable_failures_are_not_paid_again():
    latest = {"a": attempt("a", AttemptState.FAILED, error_code="server_error")}
    rules = PayAgainRules(HERE)
    assert to_pay_again(StubLedger(latest, {}), latest, NOW, rules, refresh=False) == set()


def test_expired_undownloaded_media_are_paid_again_only_when_the_experiment_asks():
    expired = attempt("a", AttemptState.COMPLETED, video={"expires_at": NOW - 1})
    latest = {"a": expired}
    ledger = StubLedger(latest, {("a", 1): {"video"}})
    assert to_pay_again(ledger, latest, NOW, PayAgainRules(HERE)) == set()
    asked = PayAgainRules(HERE, reremix_expired_media=True)
    assert to_pay_again(ledger, latest, NOW, asked) == {"a"}


def test_expired_media_already_downloaded_are_not_paid_again():
    expired = attempt("a", AttemptState.COMPLETED, video={"expires_at": NOW - 1})
    latest = {"a": expired}
    ledger = StubLedger(latest, {("a", 1): {"video", "thumbnail", "spritesheet"}})
    rules = PayAgainRules(HERE, reremix_expired_media=True)
    assert to_pay_again(ledger, latest, NOW, rules) == set()


def test_a_chained_variant_waits_for_its_parent_to_end():
    child = request("child", parent_key="parent")
    assert not parent_settled(child, {})
    assert not parent_settled(child, {"parent": attempt("parent", AttemptState.SUBMITTED)})
    assert parent_settled(child, {"parent": attempt("parent", AttemptState.FAILED)})


def test_unpaid_requests_are_exactly_those_that_need_payment():
    latest = {
        "done": attempt("done", AttemptState.COMPLETED),
        "retry": attempt("retry", AttemptState.FAILED, error_code="server_error"),
        "running": attempt("running", AttemptState.SUBMITTED),
    }
    requests = [request(k) for k in ("new", "done", "retry", "running")]
    unpaid = unpaid_requests(requests, StubLedger(latest, {}), lambda a: a.key == "retry")
    assert [r.key for r in unpaid] == ["new", "retry"]
