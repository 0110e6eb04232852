"""Workload 7: the embedded service alone: retrieve throughput over loopback, render time."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.plan import Plan
from benchmarks.report import Report, Row
from benchmarks.served import ServedService, ServiceSettings
from remix_pipeline.service.media import DEFAULT_SCALE, MediaSpec, render_media

CLIENTS = 10
VIDEO_ID = "video_src_harbor"


async def _hammer(url: str, seconds: float) -> int:
    deadline = time.perf_counter() + seconds

    async def one() -> int:
        done = 0
        async with httpx.AsyncClient(base_url=url + "/", timeout=30) as http:
            while time.perf_counter() < deadline:
                (await http.get(f"videos/{VIDEO_ID}")).raise_for_status()
                done += 1
        return done

    return sum(await asyncio.gather(*(one() for _ in range(CLIENTS))))


def _render_seconds(scale: float, repeats: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as cache:
        for i in range(repeats):
            spec = MediaSpec(
                video_id=f"video_bench_render_{i}",
                prompt="Re-grade as a warm dusk scene",
                motion_seed=i,
                width=1280,
                height=720,
                seconds=4,
                scale=scale,
            )
            started = time.perf_counter()
            render_media(spec, Path(cache))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def service_alone(plan: Plan, workdir: Path, report: Report) -> None:
    with ServedService(ServiceSettings(job_seconds=5.0), workdir / "service-alone") as service:
        started = time.perf_counter()
        count = asyncio.run(_hammer(service.url, plan.service_seconds))
        elapsed = time.perf_counter() - started
    report.add(
        Row(
            "7",
            f"GET /videos/{{id}} over loopback, {CLIENTS} concurrent httpx clients",
            f"{count:,} requests",
            count / elapsed,
            "requests / s",
            "",
            f"{elapsed:.1f} s; server and clients share the machine's cores",
        )
    )
    for label, scale in (("default", DEFAULT_SCALE), ("full", 1.0)):
        report.add(
            Row(
                "7",
                f"render one 4 s 1280x720 video at {label} size (scale {scale:g})",
                f"{plan.render_repeats} renders",
                _render_seconds(scale, plan.render_repeats),
                "s per video",
                "",
                "MP4 + WebP thumbnail + JPEG spritesheet, median",
            )
        )
