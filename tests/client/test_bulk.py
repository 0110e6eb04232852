"""Bulk status against the real embedded service: few list requests, per-id fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from remix_pipeline.contract import VideoStatus
from tests.support.embedded import Embedded

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
