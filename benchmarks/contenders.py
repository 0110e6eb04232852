"""What a user would write instead of the pipeline, each doing the same work: remix every
variant, wait for every job to end, download the three media files of each completed one.

- `floor`: a minimal asyncio + httpx script with no ledger and no Dagster, only the HTTP
  work; everything submitted at once, status read in bulk from newest-first list pages once
  per poll interval. Its pool, concurrency and event loop are a `FloorSetting`; the
  harness sweeps a small grid of them and takes the fastest as the floor
  (`benchmarks/floor_sweep.py`).
- `sdk_sequential`: the official SDK as its docs show it, remix then `videos.poll`, one
  video at a time.
- `sdk_threads`: the same with three threads (OpenAI's own sora tool submits three at a time).
- `sdk_async`: AsyncOpenAI with every remix gathered at once, each followed by `videos.poll`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from benchmarks.plan import UNTUNED, FloorSetting
from benchmarks.variants import MEDIA, Variant

# The served benchmark service takes any key; the SDK insists on having one.
BENCH_KEY = "benchmark-key"
TERMINAL = frozenset({"completed", "failed"})
KEEPALIVE_SECONDS = 3.0


@dataclass(frozen=True)
class Outcome:
    completed: int
    failed: int
    seconds: float


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    """The SDK marks every videos method deprecated since the hosted API shut down."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def floor(
    url: str,
    rows: list[Variant],
    out_dir: Path,
    poll_seconds: float = 1.0,
    setting: FloorSetting = UNTUNED,
) -> Outcome:
    started = time.perf_counter()
    if setting.uvloop:
        import uvloop

        completed, failed = uvloop.run(_floor(url, rows, out_dir, poll_seconds, setting))
    else:
        completed, failed = asyncio.run(_floor(url, rows, out_dir, poll_seconds, setting))
    return Outcome(completed, failed, time.perf_counter() - started)


async def _floor(
    url: str, rows: list[Variant], out_dir: Path, poll_seconds: float, setting: FloorSetting
) -> tuple[int, int]:
    limits = httpx.Limits(
        max_connections=setting.connections,
        max_keepalive_connections=setting.connections,
        # Below the server's keep-alive timeout (uvicorn: 5 s, httpx's default expiry too), so
        # the client never reuses a connection the server is closing (an httpx.ReadError).
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url + "/", limits=limits, timeout=120)
            )
            for _ in range(setting.clients)
        ]
        turn = itertools.cycle(clients)
        gate = asyncio.Semaphore(setting.in_flight)

        async def submit(row: Variant) -> str:
            async with gate:
                response = await next(turn).post(
                    f"videos/{row.source_video_id}/remix", json={"prompt": row.prompt}
                )
                response.raise_for_status()
                return str(response.json()["id"])

        async def download(video_id: str) -> None:
            async with gate:
                http = next(turn)
                for variant in MEDIA:
                    response = await http.get(
                        f"videos/{video_id}/content", params={"variant": variant.value}
                    )
                    response.raise_for_status()
                    target = out_dir / video_id / variant.file_name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(response.content)

        pending = set(await asyncio.gather(*(submit(row) for row in rows)))
        downloads: list[asyncio.Task[None]] = []
        completed = failed = 0
        while pending:
            await asyncio.sleep(poll_seconds)
            ended: set[str] = set()
            seen = 0
            after: str | None = None
            while seen < len(pending):
                params: dict[str, str | int] = {"limit": 100, "order": "desc"}
                if after:
                    params["after"] = after
                page = (await next(turn).get("videos", params=params)).raise_for_status().json()
                for video in page["data"]:
                    if video["id"] not in pending:
                        continue
                    seen += 1
                    if video["status"] == "completed":
                        completed += 1
                        downloads.append(asyncio.create_task(download(video["id"])))
                    elif video["status"] == "failed":
                        failed += 1
                    if video["status"] in TERMINAL:
                        ended.add(video["id"])
                if not page["has_more"] or not page["data"]:
                    break
                after = page["last_id"]
            pending -= ended
        await asyncio.gather(*downloads)
    return completed, failed


def _save_sdk_media(client: openai.OpenAI, video_id: str, out_dir: Path) -> None:
    for variant in MEDIA:
        target = out_dir / video_id / variant.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        client.videos.download_content(video_id, variant=variant.value).write_to_file(target)


def _sdk_one(client: openai.OpenAI, row: Variant, out_dir: Path) -> str:
    """Remix, poll with the SDK's own helper, download: the pattern the SDK's docs show."""
    video = client.videos.remix(row.source_video_id, prompt=row.prompt)
    video = client.videos.poll(video.id)
    if video.status == "completed":
        _save_sdk_media(client, video.id, out_dir)
    return video.status


def _tally(statuses: list[str], started: float) -> Outcome:
    return Outcome(
        completed=statuses.count("completed"),
        failed=statuses.count("failed"),
        seconds=time.perf_counter() - started,
    )


def sdk_sequential(url: str, rows: list[Variant], out_dir: Path) -> Outcome:
    with _quiet_sdk(), openai.OpenAI(base_url=url, api_key=BENCH_KEY) as client:
        started = time.perf_counter()
        return _tally([_sdk_one(client, row, out_dir) for row in rows], started)


def sdk_threads(url: str, rows: list[Variant], out_dir: Path, threads: int = 3) -> Outcome:
    with _quiet_sdk(), openai.OpenAI(base_url=url, api_key=BENCH_KEY) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            statuses = list(pool.map(lambda row: _sdk_one(client, row, out_dir), rows))
        return _tally(statuses, started)


def sdk_async(url: str, rows: list[Variant], out_dir: Path) -> Outcome:
    started = time.perf_counter()
    with _quiet_sdk():
        statuses = asyncio.run(_sdk_async(url, rows, out_dir))
    return _tally(statuses, started)


async def _sdk_async(url: str, rows: list[Variant], out_dir: Path) -> list[str]:
    async with openai.AsyncOpenAI(base_url=url, api_key=BENCH_KEY) as client:

        async def one(row: Variant) -> str:
            video = await client.videos.remix(row.source_video_id, prompt=row.prompt)
            video = await client.videos.poll(video.id)
            if video.status == "completed":
                for variant in MEDIA:
                    target = out_dir / video.id / variant.file_name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    content = await client.videos.download_content(video.id, variant=variant.value)
                    content.write_to_file(target)
            return video.status

        return list(await asyncio.gather(*(one(row) for row in rows)))
