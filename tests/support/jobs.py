"""The jobs a service holds, counted at the service: a run's promise is one paid job per
variant, so tests count what the server made rather than what the pipeline says it sent."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from remix_pipeline.client import VideosClient


def remix_jobs_in(db_path: Path) -> list[tuple[str, str]]:
    """(source, prompt) of every remix job in a service's SQLite store, in creation order."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT remixed_from_video_id, prompt FROM videos WHERE kind = 'remix' ORDER BY seq"
        ).fetchall()
    return [(str(source), str(prompt)) for source, prompt in rows]


def remix_jobs(project: Path) -> list[tuple[str, str]]:
    """(source, prompt) of every remix job the embedded service of `project` holds."""
    return remix_jobs_in(project / ".remix-pipeline" / "service.db")


def duplicates(jobs: list[tuple[str, str]]) -> int:
    """How many jobs repeat one made before them (each a variant paid twice)."""
    return sum(n - 1 for n in Counter(jobs).values() if n > 1)


async def listed_remix_prompts(client: VideosClient, source: str | None = None) -> list[str]:
    """Prompts of the remix jobs the service lists (of `source` only, when given), seen
    through its API as a remote service is seen."""
    return [
        video.prompt or ""
        async for video in client.list()
        if video.remixed_from_video_id and source in (None, video.remixed_from_video_id)
    ]
