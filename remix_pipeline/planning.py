"""What needs a submission run and what is paid for again: the experiment's payment policy.

Every caller decides through these functions: the fan-out sensor and the refresh schedule
(which variants need a run), the submissions step (which variants it pays for, and what a
batch will cost), `remix-pipeline run`'s estimate, and the submitter itself. Nothing here
imports Dagster: whether the run that owns an interrupted attempt is still alive is passed
in as an `OwnerGone` callable, so the policy is tested without an instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from remix_pipeline.ledger import MEDIA_VARIANTS, Attempt, AttemptState, Ledger
from remix_pipeline.request_table import VariantRequest
from remix_pipeline.servers import ServerChangedError, other_servers

# Whether the run that recorded an attempt's intent can no longer be sending its request.
OwnerGone = Callable[[Attempt], bool]
# Whether a finished attempt is paid for again (a refresh's retryable failures, a move of
# server with `start_afresh`, expired media).
PayAgain = Callable[[Attempt], bool]

# Failure codes worth paying for again on a refresh: the server, not the content, failed.
RETRYABLE_FAILURE_CODES = frozenset(
    {"generation_failed", "internal_error", "server_error", "video_not_found"}
)


def never(attempt: Attempt) -> bool:
    return False


# -- listing grace: how long an unmatched POST may still turn up on the server ------------


def listing_grace_seconds(*, exhaustive: bool, timeout_seconds: float) -> float:
    """How long after its POST a job may still turn up in the server's listing: the server
    may handle a POST for as long again as its client waited for the answer. The embedded
    service's listing is exhaustive (it runs in the submitting process): no grace."""
    return 0.0 if exhaustive else 2 * timeout_seconds


def awaits_listing(attempt: Attempt, *, grace_seconds: float, now: float) -> bool:
    """Whether an unmatched attempt is too recent for its absence to mean anything yet."""
    return attempt.sent_at is not None and now - attempt.sent_at < grace_seconds


# -- what is paid for again ---------------------------------------------------------------


def is_retryable(attempt: Attempt) -> bool:
    return attempt.error_code in RETRYABLE_FAILURE_CODES


def has_expired(attempt: Attempt, now: float) -> bool:
    """A completed video whose media the server no longer serves."""
    expires_at = (attempt.video or {}).get("expires_at")
    return attempt.state is AttemptState.COMPLETED and expires_at is not None and expires_at <= now


def moved_away(attempt: Attempt, configured: str) -> bool:
    """An attempt that ended on another server than the configured one."""
    return attempt.is_terminal and attempt.server not in (None, configured)


@dataclass(frozen=True)
class PayAgainRules:
    """What the experiment says about paying for a finished variant again."""

    server: str  # the configured server's label
    start_afresh: bool = False
    reremix_expired_media: bool = False


def to_pay_again(
    ledger: Ledger,
    latest: Mapping[str, Attempt],
    now: float,
    rules: PayAgainRules,
    *,
    refresh: bool = True,
) -> set[str]:
    """Keys whose latest attempt is paid for again: with `start_afresh`, those that ended
    on another server; on a refresh, also failures the server caused and, when the
    experiment asks for it, videos whose media expired before download.

    Raises ServerChangedError, before anything is paid, when attempts were sent to another
    server and the experiment has not said what to do about it.
    """
    others = other_servers((a.server for a in latest.values()), rules.server)
    if others and not rules.start_afresh:
        raise ServerChangedError(rules.server, others)
    again = {key for key, a in latest.items() if moved_away(a, rules.server)}
    if not refresh:
        return again
    again |= {
        key for key, a in latest.items() if a.state is AttemptState.FAILED and is_retryable(a)
    }
    if rules.reremix_expired_media:
        expired = [(a.key, a.attempt) for a in latest.values() if has_expired(a, now)]
        for (key, _), variants in ledger.media_variants(expired).items():
            if len(variants) < len(MEDIA_VARIANTS):
                again.add(key)
    return again


# -- what needs a submission run ----------------------------------------------------------


def needs_payment(attempt: Attempt | None, pay_again: PayAgain = never) -> bool:
    """A new paid attempt is due: none yet, or a finished one that is paid for again.

    The submitter starts a paid attempt exactly where this holds, and the sensors request
    a run for it; the budget prices exactly these.
    """
    return attempt is None or (attempt.is_terminal and pay_again(attempt))


def needs_settling(
    attempt: Attempt | None, *, grace_seconds: float, owner_gone: OwnerGone, now: float
) -> bool:
    """An interrupted attempt (intent recorded, outcome unknown) that a run can settle now:
    its run is gone, and a job it may have created has had the listing grace to appear."""
    if attempt is None or attempt.state not in (AttemptState.INTENT, AttemptState.UNKNOWN):
        return False
    if attempt.state is AttemptState.UNKNOWN and awaits_listing(
        attempt, grace_seconds=grace_seconds, now=now
    ):
        return False
    return owner_gone(attempt)


def needs_submission(
    attempt: Attempt | None,
    *,
    pay_again: PayAgain = never,
    grace_seconds: float,
    owner_gone: OwnerGone,
    now: float,
) -> bool:
    """Whether a submission run has work for this variant: a payment, or an interrupted
    attempt to settle. One whose job may still appear on a remote server waits out the
    listing grace, rather than a run a tick."""
    return needs_payment(attempt, pay_again) or needs_settling(
        attempt, grace_seconds=grace_seconds, owner_gone=owner_gone, now=now
    )


def parent_settled(request: VariantRequest, latest: Mapping[str, Attempt]) -> bool:
    """A chained variant can be submitted (or failed) only once its parent has ended."""
    if request.parent_key is None:
        return True
    parent = latest.get(request.parent_key)
    return parent is not None and parent.is_terminal


def unpaid_requests(
    requests: Iterable[VariantRequest], ledger: Ledger, pay_again: PayAgain = never
) -> list[VariantRequest]:
    """The variants a submission would pay for now (`needs_payment`): those with no attempt
    in the ledger, and those whose finished latest attempt `pay_again` selects."""
    requests = list(requests)
    known = ledger.latest(r.key for r in requests)
    return [r for r in requests if needs_payment(known.get(r.key), pay_again)]
