"""Exactly-once submission against the real embedded service and a real SQLite ledger."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.client.client import REMIX_PROBE_ID
from remix_pipeline.experiment import UnknownOutcomePolicy
from remix_pipeline.ledger import AttemptState, Ledger
from remix_pipeline.request_table import VariantRequest, variant_key
from remix_pipeline.service import FaultConfig, ServiceConfig, embedded_transport
from remix_pipeline.submission import (
    SENDS_AT_ONCE,
    UNRESOLVED_CODE,
    Action,
    Outcome,
    submit_variants,
)
from tests.support.builders import SOURCE, requests
from tests.support.jobs import listed_remix_prompts


def service(tmp_path: Path, **faults: object) -> ServiceConfig:
    return ServiceConfig(
        db_path=tmp_path / "service.db",
        queued_seconds=0.05,
        run_seconds=0.2,
        faults=FaultConfig(**faults),
    )


def is_paid_remix(request: httpx.Request) -> bool:
    """A remix POST that can start a job (the client's free capability probe cannot)."""
    path = request.url.path
    return path.endswith("/remix") and REMIX_PROBE_ID not in path


class LosesRemixes(httpx.AsyncBaseTransport):
    """A network that loses the first `lose` paid remix requests before they reach the server
    (the client's free capability probe goes through)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, lose: int) -> None:
        self.inner = inner
        self.lose = lose

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and is_paid_remix(request) and self.lose:
            self.lose -= 1
            raise httpx.ReadTimeout("lost on the way", request=request)
        return await self.inner.handle_async_request(request)


# The remote client's timeout: its listing grace, twice that, is what the tests wait out.
REMOTE_TIMEOUT = 0.1


def remote_client(config: ServiceConfig, lose: int = 0) -> VideosClient:
    """A client that treats the service as a remote server (its listing is not conclusive)."""
    transport = LosesRemixes(embedded_transport(config), lose)
    settings = ClientSettings(base_url="http://remote.invalid/v1", timeout_seconds=REMOTE_TIMEOUT)
    return VideosClient.from_settings(settings, transport=transport)


async def after_the_listing_grace() -> None:
    await asyncio.sleep(2 * REMOTE_TIMEOUT + 0.05)


async def remix_jobs(config: ServiceConfig) -> list[str]:
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        return await listed_remix_prompts(client)


async def test_dropped_responses_are_adopted_and_nothing_is_paid_twice(tmp_path):
    config = service(tmp_path, drop_rate=0.4, seed=3)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    batch = requests(30)

    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        outcomes = await submit_variants(
            batch, ledger=ledger, client=client, table_hash="h", run_id="r1"
        )

    jobs = await remix_jobs(config)
    assert sorted(jobs) == sorted(r.prompt for r in batch)
    adopted = [o for o in outcomes if o.action is Action.ADOPTED]
    assert adopted, "with 40% of responses dropped, some jobs must have been adopted"
    assert all(o.attempt.adopted for o in adopted)
    assert len(ledger.claimed_video_ids()) == 30


async def test_an_unmatched_unknown_outcome_waits_out_the_listing_grace_before_failing(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")

    async with remote_client(config, lose=1) as client:
        (first,) = await submit_variants(
            requests(1), ledger=ledger, client=client, table_hash="h", run_id="r1"
        )
        await after_the_listing_grace()
        (later,) = await submit_variants(
            requests(1), ledger=ledger, client=client, table_hash="h", run_id="r2"
        )

    assert first.action is Action.UNRESOLVED
    assert first.attempt.state is AttemptState.UNKNOWN
    assert later.action is Action.FAILED
    assert later.attempt.error_code == UNRESOLVED_CODE
    assert await remix_jobs(config) == []


async def test_a_job_listed_only_after_the_first_look_is_adopted_by_the_next_run(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    (request,) = requests(1)

    async with remote_client(config, lose=1) as client:
        (first,) = await submit_variants(
            [request], ledger=ledger, client=client, table_hash="h", run_id="r1"
        )
        late = await client.remix(SOURCE, request.prompt)  # the server got to it after all
        await after_the_listing_grace()
        (later,) = await submit_variants(
            [request], ledger=ledger, client=client, table_hash="h", run_id="r2"
        )

    assert first.action is Action.UNRESOLVED
    assert later.action is Action.ADOPTED
    assert later.attempt.video_id == late.id
    assert await remix_jobs(config) == ["prompt 0"]


async def test_resubmit_sends_again_only_once_the_listing_grace_has_passed(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")

    async with remote_client(config, lose=1) as client:

        async def resubmit(run_id: str) -> list[Outcome]:
            return await submit_variants(
                requests(1),
                ledger=ledger,
                client=client,
                table_hash="h",
                run_id=run_id,
                policy=UnknownOutcomePolicy.RESUBMIT,
            )

        (first,) = await resubmit("r1")
        jobs_before_grace = await remix_jobs(config)
        await after_the_listing_grace()
        (later,) = await resubmit("r2")

    assert (first.action, jobs_before_grace) == (Action.UNRESOLVED, [])
    assert later.action is Action.SUBMITTED
    assert await remix_jobs(config) == ["prompt 0"]


async def test_an_intent_owned_by_a_live_run_is_left_alone(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    (request,) = requests(1)
    ledger.record_intent(request, table_hash="h", run_id="other", now=0.0)
    ledger.mark_sent(request.key, 1, sent_at=1.0)

    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        (outcome,) = await submit_variants(
            [request],
            ledger=ledger,
            client=client,
            table_hash="h",
            run_id="mine",
            owner_gone=lambda attempt: False,
        )

    assert outcome.action is Action.BUSY
    assert await remix_jobs(config) == []


async def test_an_intent_never_sent_by_a_dead_run_is_sent_once(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    (request,) = requests(1)
    ledger.record_intent(request, table_hash="h", run_id="dead", now=0.0)

    async with remote_client(config) as client:
        (outcome,) = await submit_variants(
            [request], ledger=ledger, client=client, table_hash="h", run_id="mine"
        )

    assert outcome.action is Action.SUBMITTED
    assert await remix_jobs(config) == ["prompt 0"]


async def test_a_job_created_before_a_crash_is_adopted_not_paid_again(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    (request,) = requests(1)
    attempt = ledger.record_intent(request, table_hash="h", run_id="dead", now=0.0)
    async with remote_client(config) as client:
        ledger.mark_sent(request.key, attempt.attempt, sent_at=time.time())
        created = await client.remix(SOURCE, request.prompt)  # then the process "died"

        (outcome,) = await submit_variants(
            [request], ledger=ledger, client=client, table_hash="h", run_id="mine"
        )

    assert outcome.action is Action.ADOPTED
    assert outcome.attempt.video_id == created.id
    assert await remix_jobs(config) == ["prompt 0"]


async def test_a_sent_intent_of_a_dead_run_is_recorded_unknown_while_its_job_may_appear(
    tmp_path,
):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    (request,) = requests(1)
    attempt = ledger.record_intent(request, table_hash="h", run_id="dead", now=time.time())
    ledger.mark_sent(request.key, attempt.attempt, sent_at=time.time())

    async with remote_client(config) as client:
        (outcome,) = await submit_variants(
            [request], ledger=ledger, client=client, table_hash="h", run_id="mine"
        )

    assert outcome.action is Action.UNRESOLVED
    assert outcome.attempt.state is AttemptState.UNKNOWN
    history = ledger.history([(request.key, 1)])[(request.key, 1)]
    assert "run dead ended before" in (history[-1].detail or "")
    assert await remix_jobs(config) == []


async def test_responses_arriving_together_are_recorded_in_few_ledger_commits(tmp_path):
    # Jobs that outlast the submission: with 0.25 s jobs, an answer delayed by the ledger's
    # fsyncs could already say "completed" (about one run in eight).
    config = service(tmp_path).model_copy(update={"run_seconds": 60.0})
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    batch = requests(60)
    commits = []
    sa.event.listen(ledger._engine, "commit", lambda conn: commits.append(1))

    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        outcomes = await submit_variants(
            batch, ledger=ledger, client=client, table_hash="h", run_id="r"
        )

    assert [o.action for o in outcomes] == [Action.SUBMITTED] * 60
    assert {a.state for a in ledger.latest().values()} == {AttemptState.SUBMITTED}
    assert len(set(ledger.claimed_video_ids())) == 60
    # One intent commit and one mark_sent per variant; responses share commits.
    assert len(commits) < 1 + 60 + 30


class ListingDown(httpx.AsyncBaseTransport):
    """A server whose listing answers 503 while `down`, on a network that loses the first
    paid remix before it reaches the server."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = LosesRemixes(inner, lose=1)
        self.down = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down and request.method == "GET" and request.url.path.endswith("/videos"):
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return await self.inner.handle_async_request(request)


async def test_a_listing_that_keeps_failing_leaves_the_unknown_outcome_for_the_next_run(tmp_path):
    # The embedded server's listing is exhaustive: had the failed look counted as "no job",
    # the variant would have been sent again at once, unseen.
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    network = ListingDown(embedded_transport(config))
    client = VideosClient.from_settings(ClientSettings(max_attempts=2), transport=network)

    async with client:
        (first,) = await submit_variants(
            requests(1), ledger=ledger, client=client, table_hash="h", run_id="r1"
        )
        jobs_while_down = await remix_jobs(config)
        network.down = False
        (later,) = await submit_variants(
            requests(1), ledger=ledger, client=client, table_hash="h", run_id="r2"
        )

    assert first.action is Action.UNRESOLVED
    assert first.attempt.state is AttemptState.UNKNOWN
    assert "HTTP 503" in first.detail
    assert jobs_while_down == []
    assert later.action is Action.SUBMITTED
    assert await remix_jobs(config) == ["prompt 0"]


class HoldsRemixes(httpx.AsyncBaseTransport):
    """A network that holds every paid remix request until the test lets them through."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.held = 0
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and is_paid_remix(request):
            self.held += 1
            await self.release.wait()
        return await self.inner.handle_async_request(request)


async def test_only_attempts_whose_post_is_leaving_are_stamped_sent(tmp_path):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    network = HoldsRemixes(embedded_transport(config))
    client = VideosClient.from_settings(ClientSettings(), transport=network)

    async with client:
        task = asyncio.create_task(
            submit_variants(requests(50), ledger=ledger, client=client, table_hash="h", run_id="r")
        )
        while network.held < SENDS_AT_ONCE:
            await asyncio.sleep(0.01)
        stamped = [a for a in ledger.latest().values() if a.sent_at is not None]
        network.release.set()
        outcomes = await task

    assert len(stamped) == SENDS_AT_ONCE < 50
    assert [o.action for o in outcomes] == [Action.SUBMITTED] * 50


@pytest.mark.parametrize("source", ["video_missing_source"])
async def test_a_source_the_server_does_not_know_fails_with_the_servers_message(tmp_path, source):
    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    request = VariantRequest(
        key=variant_key(source, "p", 1),
        source_video_id=source,
        prompt="p",
        prompt_sha256="0" * 64,
        variant="v",
        experiment="t",
        replicate=1,
        row_number=1,
    )

    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        (outcome,) = await submit_variants(
            [request], ledger=ledger, client=client, table_hash="h", run_id="r"
        )

    assert outcome.action is Action.FAILED
    assert source in (outcome.attempt.error_message or "")


# Every operation exactly once (issue 12) ---------------------------------------------------

KIND = {"remix": "remix", "edit": "edit", "extend": "extension", "create": "create"}


def operation_request(
    operation: str, prompt: str, row: int, clip: Path | None = None
) -> VariantRequest:
    fields: dict[str, object] = {"operation": operation}
    source = SOURCE
    if operation == "create":
        source = ""
        fields.update(model="sora-2", seconds="4", size="720x1280")
    if operation == "extend":
        fields["seconds"] = "4"
    if clip is not None:
        source = ""
        fields.update(source_path=str(clip), source_sha256="0" * 64)
    upload = "-upload" if clip is not None else ""
    return VariantRequest(
        key=f"{operation}{upload}.{row:012d}.r1",
        source_video_id=source,
        prompt=prompt,
        prompt_sha256="0" * 64,
        variant=f"{operation}{upload}-{row}",
        experiment="t",
        replicate=1,
        row_number=row,
        **fields,  # type: ignore[arg-type]
    )


def jobs_by_kind(config: ServiceConfig) -> list[tuple[str, str]]:
    """(kind, prompt) of every job the service made, read from its SQLite store."""
    with sa.create_engine(f"sqlite:///{config.db_path}").connect() as db:
        rows = db.execute(sa.text("SELECT kind, prompt, id FROM videos WHERE kind != 'catalogue'"))
        return sorted((row.kind, row.prompt) for row in rows)


def kind_of_claims(config: ServiceConfig, ledger: Ledger) -> dict[str, str]:
    with sa.create_engine(f"sqlite:///{config.db_path}").connect() as db:
        kinds = dict(db.execute(sa.text("SELECT id, kind FROM videos")).all())
    return {a.key: kinds[a.video_id] for a in ledger.latest().values() if a.video_id}


async def source_clip(config: ServiceConfig, target: Path) -> Path:
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        await client.download(SOURCE, "video", target)
    return target


async def test_dropped_responses_of_every_operation_pay_once_and_lose_nothing(tmp_path):
    # Edits, extensions and creates share prompts, so the matching must tell them apart by
    # what each operation makes, not by prompt alone. Every response is dropped: a partial
    # rate draws in arrival order, which concurrency makes vary, so an operation could go
    # undropped and untested.
    config = service(tmp_path, drop_rate=1.0)
    clip = await source_clip(service(tmp_path), tmp_path / "clip.mp4")
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    batch = [
        operation_request(operation, f"prompt {i}", row=10 * i + n)
        for i in range(8)
        for n, operation in enumerate(("edit", "extend", "create"))
    ]
    batch += [operation_request("remix", f"remix {i}", row=200 + i) for i in range(8)]
    batch += [operation_request("edit", f"upload {i}", row=100 + i, clip=clip) for i in range(4)]

    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        outcomes = await submit_variants(
            batch, ledger=ledger, client=client, table_hash="h", run_id="r1"
        )

    expected = sorted(("edit" if r.source_path else KIND[r.operation], r.prompt) for r in batch)
    assert jobs_by_kind(config) == expected  # 0 duplicate jobs, 0 lost variants
    assert len(ledger.claimed_video_ids()) == len(batch)
    claims = kind_of_claims(config, ledger)
    assert {key: claims[key] for key in claims} == {
        r.key: ("edit" if r.source_path else KIND[r.operation]) for r in batch
    }
    assert all(o.action is Action.ADOPTED for o in outcomes)


@pytest.mark.parametrize("operation", ["create", "edit", "extend", "edit-upload"])
async def test_a_job_of_each_operation_created_before_a_crash_is_adopted_not_paid_again(
    tmp_path, operation
):
    from remix_pipeline.submission import post_request

    config = service(tmp_path)
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    clip = None
    if operation == "edit-upload":
        clip = await source_clip(config, tmp_path / "clip.mp4")
        operation = "edit"
    request = operation_request(operation, "the same prompt", row=1, clip=clip)
    # Another operation on the same prompt, sent by the same dead run: not this one's job.
    other_operation = {"create": "extend", "edit": "extend", "extend": "edit"}[operation]
    other = operation_request(other_operation, "the same prompt", row=2)
    for each in (request, other):
        ledger.record_intent(each, table_hash="h", run_id="dead", now=time.time())
    async with remote_client(config) as client:
        ledger.mark_sent(request.key, 1, sent_at=time.time())
        created = await post_request(client, request)  # then the process "died"

        outcomes = await submit_variants(
            [request, other], ledger=ledger, client=client, table_hash="h", run_id="mine"
        )

    by_key = {o.key: o for o in outcomes}
    assert by_key[request.key].action is Action.ADOPTED
    assert by_key[request.key].attempt.video_id == created.id
    assert by_key[other.key].action is Action.SUBMITTED  # never sent: sent now, once
    assert by_key[request.key].attempt.operation == request.operation
    assert len(jobs_by_kind(config)) == 2
