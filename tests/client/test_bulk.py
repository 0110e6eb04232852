"""Bulk status against the real embedded service: few list requests, per-id fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from remix_pipeline.client import VideosClient
from remix_pipeline.client.bulk import _boundaries
from remix_pipeline.contract import VideoStatus
from tests.support.embedded import Embedded
from tests.support.fakes import fast_settings

SOURCE = "video_src_harbor"


async def submit(service: Embedded, count: int) -> list[str]:
    async with service.client() as client:
        made = await asyncio.gather(*(client.remix(SOURCE, f"job {n}") for n in range(count)))
    return [video.id for video in made]


async def list_and_retrieve_counts(service: Embedded) -> tuple[int, int]:
    operations = (await service.stats())["operations"]
    return operations.get("list", 0), operations.get("retrieve", 0)


async def test_a_thousand_in_flight_jobs_resolve_in_at_most_twelve_list_requests(
    embedded: Callable[..., Embedded],
) -> None:
    service = embedded()
    ids = await submit(service, 1000)
    async with service.client() as client:
        found = await client.bulk_status(ids)
    assert sorted(found) == sorted(ids)
    assert {video.status for video in found.values()} == {VideoStatus.QUEUED}
    lists, retrieves = await list_and_retrieve_counts(service)
    assert lists <= 12
    assert retrieves == 0


async def test_ids_the_server_does_not_know_are_absent(embedded: Callable[..., Embedded]) -> None:
    service = embedded()
    ids = await submit(service, 150)
    async with service.client() as client:
        found = await client.bulk_status([*ids, "video_never_made", "video_gone_too"])
    assert sorted(found) == sorted(ids)


async def test_old_ids_beyond_the_page_cap_are_retrieved_one_by_one(
    embedded: Callable[..., Embedded],
) -> None:
    service = embedded()
    await submit(service, 400)
    newest = [video.id for video in (await service.all_videos())[:50]]
    async with service.client(bulk_extra_pages=2) as client:
        found = await client.bulk_status([*newest, SOURCE])
    assert sorted(found) == sorted([*newest, SOURCE])
    assert found[SOURCE].status is VideoStatus.COMPLETED
    assert await list_and_retrieve_counts(service) == (3, 1)


async def test_empty_request_sends_nothing(embedded: Callable[..., Embedded]) -> None:
    service = embedded()
    async with service.client() as client:
        assert await client.bulk_status([]) == {}
    assert await list_and_retrieve_counts(service) == (0, 0)


async def test_streamed_status_hands_on_one_page_of_records_at_a_time(
    embedded: Callable[..., Embedded],
) -> None:
    service = embedded()
    ids = await submit(service, 250)
    async with service.client() as client:
        parts = [part async for part in client.stream_status([*ids, "video_never_made"])]
    assert [len(part) for part in parts] == [100, 100, 50]
    assert sorted(video_id for part in parts for video_id in part) == sorted(ids)


class ListWatch(httpx.AsyncBaseTransport):
    """The service behind a network that counts list requests and how many overlap, and can
    refuse chosen `after` cursors or drop `after` altogether (a server that ignores it)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        refuse_after: frozenset[str] = frozenset(),
        ignore_after: bool = False,
    ) -> None:
        self.inner = inner
        self.refuse_after = refuse_after
        self.ignore_after = ignore_after
        self.lists = 0
        self.in_flight = 0
        self.most_at_once = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/videos"):
            return await self.inner.handle_async_request(request)
        after = request.url.params.get("after")
        if after in self.refuse_after:
            return httpx.Response(400, json={"error": {"message": "no such id", "param": "after"}})
        if self.ignore_after:
            request.url = request.url.copy_remove_param("after")
        self.lists += 1
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


async def newest_first_ids(service: Embedded, count: int) -> list[str]:
    """`count` new jobs' ids, newest first as the server lists them."""
    made = set(await submit(service, count))
    return [video.id for video in await service.all_videos() if video.id in made]


async def listed(network: ListWatch, ids: list[str]) -> list[str]:
    """The ids `stream_status` hands on, given newest first, as often as it hands them on:
    ten to a page, read in up to four segments."""
    settings = fast_settings(base_url=None, list_page_size=10, list_concurrency=4)
    async with VideosClient.from_settings(settings, transport=network) as client:
        parts = [part async for part in client.stream_status(ids, newest_first=True)]
    return [video_id for part in parts for video_id in part]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(lambda ids: ids, id="newest first"),
        # As a ledger whose jobs were all stamped sent at one moment gives them: each segment
        # still ends where another began.
        pytest.param(lambda ids: ids[::-1], id="oldest first"),
    ],
)
async def test_segments_read_at_once_cover_the_list_once_whatever_order_the_ids_came_in(
    embedded: Callable[..., Embedded], given: Callable[[list[str]], list[str]]
) -> None:
    service = embedded()
    ids = await newest_first_ids(service, 200)
    network = ListWatch(service.transport)

    assert sorted(await listed(network, given(ids))) == sorted(ids)  # each id handed on once
    assert network.most_at_once >= 2
    # 20 pages of wanted ids; at most one page shared by each of the three segment joins.
    assert network.lists <= 20 + 3
    assert (await list_and_retrieve_counts(service))[1] == 0


async def test_a_server_that_ignores_after_is_read_by_one_segment_then_retrieved(
    embedded: Callable[..., Embedded],
) -> None:
    service = embedded()
    ids = await newest_first_ids(service, 200)
    network = ListWatch(service.transport, ignore_after=True)

    assert sorted(await listed(network, ids)) == sorted(ids)
    assert network.lists == 2  # the repeat of the first page shows the cursor is ignored
    assert network.most_at_once == 1


async def test_a_segment_whose_start_is_refused_is_read_through_by_the_segment_above(
    embedded: Callable[..., Embedded],
) -> None:
    service = embedded()
    ids = await newest_first_ids(service, 210)
    refused = frozenset(_boundaries(ids, 4)[1:2])  # the third segment cannot start there
    network = ListWatch(service.transport, refuse_after=refused)

    assert sorted(await listed(network, ids)) == sorted(ids)
    assert (await list_and_retrieve_counts(service))[1] == 0
