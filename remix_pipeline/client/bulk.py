"""Status of many jobs with few requests: newest-first list pages, then per-id fallback.

One `GET /videos` page answers for up to 100 jobs, so a sensor watching 1,000 recent jobs
needs about 10 requests instead of 1,000. Listing stops as soon as every wanted id is seen,
the list has reached jobs older than anything wanted, a page repeats (a server that ignores
`after`), or a page cap (the pages the wanted ids could fill, plus a few) is hit; ids still
unseen are then retrieved one by one, which is all there is on a server without a list.

Pages are read one after another, each cursor taken from the page before, so a long listing
is as slow as its pages laid end to end (1,000 round trips for 100,000 jobs). Given the ids
newest first, the listing is split into segments that start after one of the wanted ids,
read at once: each segment still pages by the server's own cursors, and ends where it meets
the id another segment started after, so together they cover the list once even when the
order given was not quite the server's. A segment starts only once the first has shown that
the server honours `after`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

from remix_pipeline.client.errors import APIStatusError, ListUnavailableError, NotFoundError
from remix_pipeline.contract import Video, VideoList

# A server without a route answers one of these for it.
ROUTE_MISSING = frozenset({404, 405, 501})
# What a plain `GET /videos?order=desc&limit=N` gets from a server that cannot list: a missing
# route, or a refusal of a request this plain (LiteLLM's 400 "LLM Provider NOT provided").
LIST_UNAVAILABLE = ROUTE_MISSING | {400, 422}
# Ids retrieved one by one are gathered this many at a time, so their records are handed on
# (and can be dropped) in parts, as list pages are.
RETRIEVALS_PER_CHUNK = 500
# A segment of a split listing is worth its own cursor only if it spans this many pages.
MIN_PAGES_PER_SEGMENT = 5

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
    newest_first: bool = False,
    segments: int = 1,
) -> AsyncIterator[dict[str, Video]]:
    """The jobs' records a page (or a chunk of retrievals) at a time, keyed by the id asked
    for, so a caller watching 100,000 jobs holds one page of records, not all of them. An id
    never yielded is unknown to the server.

    With `newest_first` (the ids in the order the server lists them), the listing is read in
    up to `segments` places at once."""
    wanted = set(video_ids)
    if not wanted:
        return
    seen: set[str] = set()
    if fetch_page is not None:
        pages_needed = math.ceil(len(wanted) / page_size)
        count = max(1, min(segments, pages_needed // MIN_PAGES_PER_SEGMENT)) if newest_first else 1
        listing = _Listing(
            list(dict.fromkeys(video_ids)),
            seen,
            fetch_page=fetch_page,
            segments=count,
            max_pages=pages_needed + extra_pages + count - 1,
            cutoff=None if created_after is None else math.floor(created_after),
        )
        async for found in listing.pages():
            yield found
    missing = sorted(wanted - seen)
    for start in range(0, len(missing), RETRIEVALS_PER_CHUNK):
        chunk = missing[start : start + RETRIEVALS_PER_CHUNK]
        found = await _retrieve_each(chunk, retrieve=retrieve, concurrency=concurrency)
        if found:
            yield found


def _boundaries(newest_first: list[str], count: int) -> list[str]:
    """The ids that split the listing into `count` segments of about equal wanted ids: the
    oldest wanted id of each segment but the last, after which the next segment starts."""
    length = len(newest_first)
    return [newest_first[round(length * n / count) - 1] for n in range(1, count)]


class _NoList(Exception):
    """A segment found that the server cannot list: every segment stops."""


class _Listing:
    """One listing, read as one segment per boundary plus one, its pages handed on through a
    queue as they arrive, so that while one segment's page is parsed the server already
    works on another's."""

    def __init__(
        self,
        ordered: list[str],
        seen: set[str],
        *,
        fetch_page: FetchPage,
        segments: int,
        max_pages: int,
        cutoff: int | None,
    ) -> None:
        self.wanted = set(ordered)
        self.seen = seen
        self.fetch_page = fetch_page
        self.starts: list[str | None] = [None, *_boundaries(ordered, segments)]
        # For each id a segment is to begin after, whether it did: a segment that meets one
        # stops there if it did, and reads on through that ground if the server refused it.
        loop = asyncio.get_running_loop()
        self.begun: dict[str, asyncio.Future[bool]] = {
            start: loop.create_future() for start in self.starts[1:] if start is not None
        }
        self.pages_left = max_pages
        self.cutoff = cutoff
        self.found: asyncio.Queue[dict[str, Video] | BaseException | None] = asyncio.Queue(
            maxsize=len(self.starts)
        )
        self.cursor_decided = asyncio.Event()
        self.cursor_honoured = False

    async def pages(self) -> AsyncIterator[dict[str, Video]]:
        """The wanted jobs of each page not yet `seen` (which it adds them to), until every
        one is seen or the list cannot hold any more of them."""
        tasks = [asyncio.ensure_future(self._segment(n)) for n in range(len(self.starts))]
        running = len(tasks)
        try:
            while running:
                item = await self.found.get()
                if item is None:
                    running -= 1
                elif isinstance(item, _NoList):
                    return
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _segment(self, n: int) -> None:
        """Read segment `n`, then say it is done; the first segment's end also decides for
        the others whether the server honours `after`."""
        start = self.starts[n]
        try:
            if start is None:
                await self._read(None)
            elif await self._cursor_works():
                await self._read(start)
        except ListUnavailableError:
            await self.found.put(_NoList())
        except Exception as exc:
            await self.found.put(exc)
        finally:
            if start is None:
                self.cursor_decided.set()
            else:
                self._mark_begun(start, False)  # unless it did: it never will now
        await self.found.put(None)

    async def _cursor_works(self) -> bool:
        await self.cursor_decided.wait()
        return self.cursor_honoured  # if not, the first segment's pages alone are read

    def _mark_begun(self, start: str, begun: bool) -> None:
        if not self.begun[start].done():
            self.begun[start].set_result(begun)

    async def _read(self, start: str | None) -> None:
        first_ids: set[str] = set()
        after = start
        while self.pages_left > 0 and len(self.seen) < len(self.wanted):
            self.pages_left -= 1
            page = await self._page(after, first=not first_ids, start=start)
            if page is None:
                return  # the server refused this start: the segment above reads on through it
            if page.data and page.data[0].id in first_ids:
                return  # the server ignores `after`: every page is the first
            if start is None and after is not None:
                self.cursor_honoured = True
                self.cursor_decided.set()
            first_ids.update(video.id for video in page.data[:1])
            found = {v.id: v for v in page.data if v.id in self.wanted and v.id not in self.seen}
            self.seen.update(found)
            if found:
                await self.found.put(found)
            if not page.has_more or not page.data:
                return
            if await self._reached_another_segment(page, start):
                return
            if self.cutoff is not None and min(v.created_at for v in page.data) < self.cutoff:
                return
            after = page.last_id or page.data[-1].id

    async def _page(self, after: str | None, *, first: bool, start: str | None) -> VideoList | None:
        """The page after `after`; None if it is this segment's first and the server refuses
        to start there (it no longer knows that job)."""
        if not first or start is None:
            return await self.fetch_page(after)
        try:
            page = await self.fetch_page(after)
        except APIStatusError:
            return None
        self._mark_begun(start, True)
        return page

    async def _reached_another_segment(self, page: VideoList, start: str | None) -> bool:
        """Whether another segment began after an id of this page, and so reads on from it."""
        if not self.cursor_honoured:
            return False  # no other segment reads
        met = [self.begun[v.id] for v in page.data if v.id in self.begun and v.id != start]
        return any([await begun for begun in met])


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
