"""Status of many jobs with few requests: newest-first list pages, then per-id fallback.

One `GET /videos` page answers for up to 100 jobs, so a sensor watching 1,000 recent jobs
needs about 10 requests instead of 1,000. Listing stops as soon as every wanted id is seen,
the list has reached jobs older than anything wanted, a page repeats (a server that ignores
`after`), or a page cap (the pages the wanted ids could fill, plus a few) is hit; ids still
unseen are then retrieved one by one, which is all there is on a server without a list.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

from remix_pipeline.client.errors import ListUnavailableError, NotFoundError
from remix_pipeline.contract import Video, VideoList

# A server without a route answers one of these for it.
ROUTE_MISSING = frozenset({404, 405, 501})
# What a plain `GET /videos?order=desc&limit=N` gets from a server that cannot list: a missing
# route, or a refusal of a request this plain (LiteLLM's 400 "LLM Provider NOT provided").
LIST_UNAVAILABLE = ROUTE_MISSING | {400, 422}
# Ids retrieved one by one are gathered this many at a time, so their records are handed on
# (and can be dropped) in parts, as list pages are.
RETRIEVALS_PER_CHUNK = 500

FetchPage = Callable[[str | None], Awaitable[VideoList]]
Retrieve = Callable[[str], Awaitable[Video]]


async def stream_status(
    video_ids: Collection[str],
    *,
    fetch_page: FetchPage | None,
    retrieve: Retrieve,
    page_size: int,
    extra_pages: int,
    concurrency: int,
    created_after: float | None = None,
) -> AsyncIterator[dict[str, Video]]:
    """The jobs' records a page (or a chunk of retrievals) at a time, keyed by the id asked
    for, so a caller watching 100,000 jobs holds one page of records, not all of them. An id
    never yielded is unknown to the server."""
    wanted = set(video_ids)
    if not wanted:
        return
    seen: set[str] = set()
    if fetch_page is not None:
        pages = _pages(
            wanted,
            seen,
            fetch_page=fetch_page,
            max_pages=math.ceil(len(wanted) / page_size) + extra_pages,
            cutoff=None if created_after is None else math.floor(created_after),
        )
        async for found in pages:
            yield found
    missing = sorted(wanted - seen)
    for start in range(0, len(missing), RETRIEVALS_PER_CHUNK):
        chunk = missing[start : start + RETRIEVALS_PER_CHUNK]
        found = await _retrieve_each(chunk, retrieve=retrieve, concurrency=concurrency)
        if found:
            yield found


async def _pages(
    wanted: set[str], seen: set[str], *, fetch_page: FetchPage, max_pages: int, cutoff: int | None
) -> AsyncIterator[dict[str, Video]]:
    """The wanted jobs of each list page not yet `seen` (which it adds them to), newest
    first, until every one is seen or the list cannot hold any more of them."""
    after: str | None = None
    first_ids: set[str] = set()
    for _ in range(max_pages):
        try:
            page = await fetch_page(after)
        except ListUnavailableError:
            return
        if page.data and page.data[0].id in first_ids:
            return  # the server ignores `after`: every page is the first
        first_ids.update(video.id for video in page.data[:1])
        found = {v.id: v for v in page.data if v.id in wanted and v.id not in seen}
        seen.update(found)
        if found:
            yield found
        if len(seen) == len(wanted) or not page.has_more or not page.data:
            return
        if cutoff is not None and min(video.created_at for video in page.data) < cutoff:
            return
        after = page.last_id or page.data[-1].id


async def _retrieve_each(
    video_ids: list[str], *, retrieve: Retrieve, concurrency: int
) -> dict[str, Video]:
    gate = asyncio.Semaphore(concurrency)

    async def one(video_id: str) -> tuple[str, Video | None]:
        async with gate:
            try:
                return video_id, await retrieve(video_id)
            except NotFoundError:
                return video_id, None

    results = await asyncio.gather(
        *(one(video_id) for video_id in video_ids), return_exceptions=True
    )
    found: dict[str, Video] = {}
    for result in results:
        if isinstance(result, BaseException):
            raise result
        video_id, video = result
        if video is not None:
            found[video_id] = video
    return found
