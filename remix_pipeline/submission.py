"""Exactly-once submission of remix jobs: intent first, then the paid call, then the record.

The Videos API has no idempotency key, so the ledger is the only memory of what was paid for.
For every variant the intent is written durably before the POST; a POST whose outcome is
unknown (timeout, reset, 5xx, a crash) is resolved by listing the server's videos and adopting
the job that matches (source, prompt, created after the intent) before anything is sent again.
Where nothing matches, the configured policy decides: fail (the default) or resubmit.

A remote server may still be handling a POST its client gave up on, so its job can appear
after the first listing: until the listing grace (twice the client's timeout after the send)
has passed, an unmatched attempt stays unresolved and a later run looks again.

One case is not ambiguous: the embedded service runs inside the submitting process, so its
listing holds every job it will ever have; there is no grace, and the variant is sent again
whatever the policy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from remix_pipeline.client import (
    EMBEDDED_BASE_URL,
    APIStatusError,
    ListUnavailableError,
    OutcomeUnknownError,
    VideosAPIError,
    VideosClient,
)
from remix_pipeline.client.gateways import upstream_id
from remix_pipeline.contract import Video
from remix_pipeline.crashpoints import crash_point
from remix_pipeline.experiment import UnknownOutcomePolicy
from remix_pipeline.ledger import (
    Attempt,
    AttemptState,
    Ledger,
    LedgerError,
    VideoAlreadyClaimedError,
)
from remix_pipeline.planning import (
    OwnerGone,
    PayAgain,
    awaits_listing,
    listing_grace_seconds,
    needs_payment,
)
from remix_pipeline.request_table import CREATE, EDIT, EXTEND, REMIX, VariantRequest

# Server clocks and ours disagree a little; a job created this long before the recorded send
# time still counts as a candidate orphan.
CLOCK_SLACK_SECONDS = 5.0
UNRESOLVED_CODE = "submission_outcome_unknown"
# A POST whose outcome was unknown and that matched no job may be sent again at once, where
# the policy or the server allows it; this bounds how often one run pays that risk.
MAX_SENDS_PER_RUN = 3
PARENT_FAILED_CODE = "parent_failed"
# Responses to fresh POSTs that arrive this close together are recorded in one ledger
# transaction (a commit each cost about a third of a 1,000-variant submission run).
RECORD_BATCH_SECONDS = 0.05
# POSTs in flight at once. Plenty for any rate limit a Videos API server had (a 300 ms round
# trip still allows 3,000 a minute), and it keeps httpx's pool small: its bookkeeping per
# request grows with the square of its connections.
SENDS_AT_ONCE = 16
RECORD_BATCH_SIZE = 100


class Action(StrEnum):
    SUBMITTED = "submitted"  # a job was created and recorded
    ADOPTED = "adopted"  # an orphaned job from an earlier, interrupted attempt was found
    ALREADY_DONE = "already_done"  # the ledger already holds a job for this variant
    BUSY = "busy"  # another live run owns this variant's intent
    FAILED = "failed"  # the server refused the request, or the orphan could not be resolved
    UNRESOLVED = "unresolved"  # outcome still unknown; the next run resolves it before sending
    WAITING = "waiting"  # a remix chain's parent has not completed yet


@dataclass(frozen=True)
class Outcome:
    key: str
    action: Action
    attempt: Attempt | None  # None while a chained variant waits for its parent
    detail: str = ""


async def submit_variants(
    requests: Sequence[VariantRequest],
    *,
    ledger: Ledger,
    client: VideosClient,
    table_hash: str,
    run_id: str | None,
    policy: UnknownOutcomePolicy = UnknownOutcomePolicy.FAIL,
    owner_gone: OwnerGone = lambda attempt: True,
    pay_again: PayAgain = lambda attempt: False,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Submit every variant that has no job yet; resolve interrupted attempts first.

    Concurrency comes from the client's limiter: every POST is started at once and the
    limiter paces them to the server's rate.
    """
    await client.learn_server()  # a gateway needs paid bodies shaped for it
    submitter = _Submitter(ledger, client, table_hash, run_id, policy, owner_gone, pay_again)
    outcomes: list[Outcome] = []
    requests, settled = chain_sources(
        requests, ledger, table_hash=table_hash, run_id=run_id, server=client.server_label
    )
    for outcome in settled:
        outcomes.append(outcome)
        on_outcome(outcome)
    latest = ledger.latest(r.key for r in requests)
    unseen = [r for r in requests if r.key not in latest]
    if unseen:
        # One transaction records every new intent before the first paid call is made.
        latest.update(
            ledger.record_intents(
                unseen,
                table_hash=table_hash,
                run_id=run_id,
                now=time.time(),
                server=client.server_label,
            )
        )
        crash_point("submission.intents_recorded")
    to_send: list[tuple[VariantRequest, Attempt]] = []
    to_resolve: list[tuple[VariantRequest, Attempt]] = []

    for request in requests:
        decision = submitter.plan(request, latest.get(request.key))
        if isinstance(decision, Outcome):
            outcomes.append(decision)
            on_outcome(decision)
        elif decision[0] == "send":
            to_send.append((request, decision[1]))
        else:
            to_resolve.append((request, decision[1]))

    if to_resolve:
        resolved = await submitter.resolve(to_resolve, resend_allowed=True)
        for (request, attempt), outcome in zip(to_resolve, resolved, strict=True):
            if outcome is None:
                to_send.append((request, attempt))
            else:
                outcomes.append(outcome)
                on_outcome(outcome)

    async def send_one(request: VariantRequest, attempt: Attempt) -> None:
        outcome = await submitter.send(request, attempt)
        outcomes.append(outcome)
        on_outcome(outcome)

    await asyncio.gather(*(send_one(r, a) for r, a in to_send))
    return outcomes


def chain_sources(
    requests: Sequence[VariantRequest],
    ledger: Ledger,
    *,
    table_hash: str,
    run_id: str | None,
    server: str | None = None,
) -> tuple[list[VariantRequest], list[Outcome]]:
    """Point each chained variant at its parent's video, once the parent has completed.

    A variant whose parent is still running waits (nothing is recorded, the next run looks
    again); one whose parent failed ends as failed without a paid call.
    """
    chained = [r for r in requests if r.parent_key]
    if not chained:
        return list(requests), []
    parents = ledger.latest({r.parent_key for r in chained if r.parent_key})
    own = ledger.latest(r.key for r in chained)
    ready: list[VariantRequest] = []
    settled: list[Outcome] = []
    for request in requests:
        parent = parents.get(request.parent_key or "")
        if request.parent_key is None:
            ready.append(request)
        elif request.key in own:
            # Already recorded against the parent's video of that time: keep that source.
            ready.append(replace(request, source_video_id=own[request.key].source_video_id))
        elif parent is not None and parent.state is AttemptState.COMPLETED and parent.video_id:
            ready.append(replace(request, source_video_id=parent.video_id))
        elif parent is not None and parent.state is AttemptState.FAILED:
            intent = ledger.record_intent(
                request, table_hash=table_hash, run_id=run_id, now=time.time(), server=server
            )
            failed = ledger.mark_failed(
                intent.key,
                intent.attempt,
                code=PARENT_FAILED_CODE,
                message=f"Not submitted: the variant it remixes ({request.parent_key}) failed"
                f" with {parent.error_code or 'an error'}.",
                now=time.time(),
            )
            settled.append(Outcome(request.key, Action.FAILED, failed, failed.error_message or ""))
        else:
            settled.append(Outcome(request.key, Action.WAITING, None, request.parent_key or ""))
    return ready, settled


class _Submitter:
    def __init__(
        self,
        ledger: Ledger,
        client: VideosClient,
        table_hash: str,
        run_id: str | None,
        policy: UnknownOutcomePolicy,
        owner_gone: OwnerGone,
        pay_again: PayAgain,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.table_hash = table_hash
        self.run_id = run_id
        self.policy = UnknownOutcomePolicy(policy)
        self.owner_gone = owner_gone
        self.pay_again = pay_again
        self.listing_is_exhaustive = client.base_url == EMBEDDED_BASE_URL
        self.grace_seconds = listing_grace_seconds(
            exhaustive=self.listing_is_exhaustive, timeout_seconds=client.settings.timeout_seconds
        )
        self.responses = _ResponseBatch(ledger)
        self.sending = asyncio.Semaphore(SENDS_AT_ONCE)
        self._source_seconds: dict[str, int] = {}

    def plan(self, request: VariantRequest, prior: Attempt | None) -> Outcome | tuple[str, Attempt]:
        now = time.time()
        if prior is None:
            prior = self.ledger.record_intent(
                request,
                table_hash=self.table_hash,
                run_id=self.run_id,
                now=now,
                server=self.client.server_label,
            )
        mine = prior.run_id == self.run_id
        if mine and prior.state is AttemptState.INTENT and prior.sent_at is None:
            return ("send", prior)
        if prior.is_terminal and needs_payment(prior, self.pay_again):
            retry = self.ledger.start_retry(
                request.key, run_id=self.run_id, now=now, server=self.client.server_label
            )
            return ("send", retry)
        if prior.state in (AttemptState.SUBMITTED, AttemptState.COMPLETED, AttemptState.FAILED):
            return Outcome(request.key, Action.ALREADY_DONE, prior, prior.state.value)
        if prior.run_id != self.run_id and not self.owner_gone(prior):
            return Outcome(request.key, Action.BUSY, prior, f"owned by run {prior.run_id}")
        if prior.state is AttemptState.INTENT and prior.sent_at is None:
            return ("send", prior)  # the POST was never sent: sending now cannot pay twice
        if prior.state is AttemptState.INTENT:
            # Recorded as unknown, so that while its job may still appear the sensors wait
            # out the listing grace instead of starting a run per tick.
            prior = self.ledger.mark_unknown(
                prior.key,
                prior.attempt,
                reason=f"run {prior.run_id} ended before the answer to its POST was recorded",
                now=now,
            )
        return ("resolve", prior)

    async def send(self, request: VariantRequest, attempt: Attempt) -> Outcome:
        for tries_left in reversed(range(MAX_SENDS_PER_RUN)):
            try:
                async with self.sending:
                    # Stamped inside the gate, so an attempt is marked sent only when its
                    # POST is about to leave: a crash leaves few ambiguous attempts to resolve.
                    self.ledger.mark_sent(attempt.key, attempt.attempt, sent_at=time.time())
                    crash_point("submission.before_post")
                    video = await post_request(self.client, request)
                crash_point("submission.after_post")
            except OutcomeUnknownError as exc:
                attempt = self.ledger.mark_unknown(
                    attempt.key, attempt.attempt, reason=str(exc), now=time.time()
                )
                if exc.job_id is not None:
                    known = await self._record_named_job(request, attempt, exc.job_id)
                    if known is not None:
                        return known
                (outcome,) = await self.resolve([(request, attempt)], resend_allowed=tries_left > 0)
                if outcome is None:
                    continue
                return outcome
            except APIStatusError as exc:
                failed = self.ledger.mark_failed(
                    attempt.key,
                    attempt.attempt,
                    code=exc.code or f"http_{exc.status_code}",
                    message=exc.message,
                    now=time.time(),
                )
                return Outcome(request.key, Action.FAILED, failed, exc.message)
            recorded = await self.responses.claim(attempt, video)
            crash_point("submission.after_record")
            return Outcome(request.key, Action.SUBMITTED, recorded, video.id)
        raise AssertionError("unreachable: the last try never resends")

    async def _record_named_job(
        self, request: VariantRequest, attempt: Attempt, job_id: str
    ) -> Outcome | None:
        """A paid POST whose answer broke the contract but named its job: that job is this
        attempt's (it was paid for), read back with a safe GET and recorded, never resent.
        None when it cannot be read now; the attempt stays unknown and is resolved later."""
        try:
            video = await self.client.retrieve(job_id)
        except VideosAPIError:
            return None
        try:
            outcome = self._record(request, attempt, video, adopted=False)
        except VideoAlreadyClaimedError:
            return None
        return replace(outcome, detail=f"{video.id} (its creation answer broke the contract)")

    def _record(
        self, request: VariantRequest, attempt: Attempt, video: Video, *, adopted: bool
    ) -> Outcome:
        recorded = self.ledger.mark_submitted(
            attempt.key, attempt.attempt, video, now=time.time(), adopted=adopted
        )
        if video.is_terminal:
            recorded = self.ledger.update_video(
                attempt.key, attempt.attempt, video, now=time.time()
            )
        action = Action.ADOPTED if adopted else Action.SUBMITTED
        return Outcome(request.key, action, recorded, video.id)

    async def resolve(
        self,
        pending: Sequence[tuple[VariantRequest, Attempt]],
        *,
        resend_allowed: bool,
    ) -> list[Outcome | None]:
        """Find the jobs that interrupted attempts created, with one listing for all of them.

        None for an attempt means: nothing matched and the policy says send it again.
        """
        since = min((a.sent_at or a.intent_at) for _, a in pending) - CLOCK_SLACK_SECONDS
        # Compared as the upstream knows them: a gateway lists other ids than it answers with.
        wanted = {(upstream_id(r.source_video_id), r.prompt) for r, _ in pending}
        claimed = {upstream_id(video_id) for video_id in self.ledger.claimed_video_ids()}
        candidates: dict[tuple[str, str], list[Video]] = {}
        try:
            async for video in self.client.list(order="desc"):
                if video.created_at < since:
                    break
                pair = (upstream_id(video.remixed_from_video_id or ""), video.prompt or "")
                if pair in wanted and upstream_id(video.id) not in claimed:
                    candidates.setdefault(pair, []).append(video)
        except ListUnavailableError:
            pass  # nothing can be found: unmatched attempts wait out the grace, then the policy
        except VideosAPIError as exc:
            # The listing exists but failed past its retries: not having looked proves
            # nothing, so nothing is sent again and the next run looks before it sends.
            detail = f"the server's listing could not be read ({exc}); the next run looks again"
            return [Outcome(r.key, Action.UNRESOLVED, a, detail) for r, a in pending]
        for found in candidates.values():
            found.sort(key=lambda v: (v.created_at, v.id))  # oldest first: the first send
        self._source_seconds = await self._lengths_of_sources(pending)

        outcomes: list[Outcome | None] = []
        for request, attempt in pending:
            outcomes.append(self._adopt_or_decide(request, attempt, candidates, resend_allowed))
        return outcomes

    def _adopt_or_decide(
        self,
        request: VariantRequest,
        attempt: Attempt,
        candidates: dict[tuple[str, str], list[Video]],
        resend_allowed: bool,
    ) -> Outcome | None:
        threshold = (attempt.sent_at or attempt.intent_at) - CLOCK_SLACK_SECONDS
        pool = candidates.get((upstream_id(request.source_video_id), request.prompt), [])
        for video in list(pool):
            if video.created_at < threshold or not self._fits(request, video):
                continue
            pool.remove(video)
            try:
                return self._record(request, attempt, video, adopted=True)
            except VideoAlreadyClaimedError:
                continue
        if awaits_listing(attempt, grace_seconds=self.grace_seconds, now=time.time()):
            return Outcome(
                request.key,
                Action.UNRESOLVED,
                attempt,
                f"no job listed yet; looked for again until {self.grace_seconds:g} s after "
                "the send",
            )
        if self.policy is UnknownOutcomePolicy.RESUBMIT or self.listing_is_exhaustive:
            if resend_allowed:
                return None
            # Enough sends for one run; the next run looks again before sending. Where the
            # listing is exhaustive, that look can only find the job or prove there is none,
            # so transient faults on every send of this run never fail the variant.
            return Outcome(request.key, Action.UNRESOLVED, attempt, "outcome unknown")
        failed = self.ledger.mark_failed(
            attempt.key,
            attempt.attempt,
            code=UNRESOLVED_CODE,
            message=(
                f"The {request.operation} request may have created a job, but no matching "
                "job was found on "
                "the server; with on_unknown_outcome=fail it is not sent again."
            ),
            now=time.time(),
        )
        return Outcome(request.key, Action.FAILED, failed, failed.error_message or "")

    async def _lengths_of_sources(
        self, pending: Sequence[tuple[VariantRequest, Attempt]]
    ) -> dict[str, int]:
        """The length of each source video that an edit or extension among `pending` derives
        from, read with safe GETs: what tells an extension's job (source + added seconds)
        from an edit's or a remix's of the same source and prompt (the source's length)."""
        if all(r.operation == REMIX for r, _ in pending):
            return {}  # remixes alone match as they always have: by source and prompt
        sources = {r.source_video_id for r, _ in pending if r.source_video_id}

        async def length(source: str) -> tuple[str, int | None]:
            try:
                return source, int((await self.client.retrieve(source)).seconds)
            except (VideosAPIError, ValueError):
                return source, None

        found = await asyncio.gather(*(length(source) for source in sorted(sources)))
        return {source: seconds for source, seconds in found if seconds is not None}

    def _fits(self, request: VariantRequest, video: Video) -> bool:
        """Whether a listed job (already matched by source and prompt) is what `request`'s
        operation would have made. The Video record carries no operation, so: a create has
        no source and the asked size and length; an extension is its source's length plus
        the added seconds; an edit or a remix keeps its source's length. An edit and a remix
        of the same source and prompt cannot be told apart (documented)."""
        operation = request.operation
        try:
            seconds = int(video.seconds)
        except ValueError:
            return operation == REMIX
        if operation == CREATE:
            return (request.size in (None, video.size)) and (
                request.seconds is None or str(seconds) == request.seconds
            )
        source_seconds = self._source_seconds.get(request.source_video_id)
        if operation == EXTEND:
            added = int(request.seconds or 0)
            if source_seconds is None:
                return seconds > added
            return seconds == source_seconds + added
        return source_seconds is None or seconds == source_seconds


async def post_request(client: VideosClient, request: VariantRequest) -> Video:
    """The paid POST of `request`'s operation."""
    source: str | Path = (
        Path(request.source_path) if request.source_path else request.source_video_id
    )
    if request.operation == EDIT:
        return await client.edit(source, request.prompt, model=_upload_model(request))
    if request.operation == EXTEND:
        assert request.seconds is not None
        return await client.extend(
            source, request.prompt, request.seconds, model=_upload_model(request)
        )
    if request.operation == CREATE:
        reference: str | Path | None = request.input_reference
        if reference and not reference.lower().startswith(("http://", "https://", "data:")):
            reference = Path(reference)
        return await client.create(
            request.prompt,
            model=request.model,
            size=request.size,
            seconds=request.seconds,
            input_reference=reference,
            characters=request.characters,
        )
    return await client.remix(request.source_video_id, request.prompt)


def _upload_model(request: VariantRequest) -> str | None:
    return request.model if request.source_path else None


class _ResponseBatch:
    """Records fresh POST responses in batches: one ledger commit for those that arrive together.

    Exactly-once still holds: each intent was made durable (mark_sent) before its POST, and a
    crash before the batch commits leaves sent-but-unrecorded attempts, which the next run
    resolves by listing the server's videos and adopting the match, as for a dropped response.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pending: list[tuple[Attempt, Video, asyncio.Future[Attempt | LedgerError]]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def claim(self, attempt: Attempt, video: Video) -> Attempt:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Attempt | LedgerError] = loop.create_future()
        self._pending.append((attempt, video, future))
        if len(self._pending) >= RECORD_BATCH_SIZE:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(RECORD_BATCH_SECONDS, self._flush)
        result = await future
        if isinstance(result, LedgerError):
            raise result
        return result

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        claims = [(attempt.key, attempt.attempt, video) for attempt, video, _ in pending]
        try:
            results = self.ledger.mark_submitted_many(claims, now=time.time())
        except Exception as exc:
            for *_, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), result in zip(pending, results, strict=True):
            if not future.done():
                future.set_result(result)
