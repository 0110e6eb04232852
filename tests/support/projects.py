"""A pipeline project on disk: its request table and its embedded service's settings.

Tests in several folders build the same project (the sample table, fast jobs); it is written
here once, so a change to the table's columns or the settings file is made in one place.
"""

from __future__ import annotations

import json
from pathlib import Path

from .servers import FAST_TIMINGS

TABLE_HEADER = "source_video_id,variant,prompt,experiment,replicates\n"
SAMPLE_ROWS = [
    "video_src_harbor,noir,Re-grade as 1940s film noir,t,1",
    "video_src_harbor,anime,Restyle as hand-drawn anime,t,2",
    "video_src_forest,noir,Re-grade as 1940s film noir,t,1",
]


def write_table(path: Path, rows: list[str]) -> Path:
    path.write_text(TABLE_HEADER + "".join(f"{row}\n" for row in rows))
    return path


def write_service_settings(home: Path, **overrides: object) -> None:
    """The embedded service's settings for every later process of the project at `home`:
    fast jobs, with `overrides`."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "service.json").write_text(json.dumps({**FAST_TIMINGS, **overrides}))
