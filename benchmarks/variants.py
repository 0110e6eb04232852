"""The one list of (source, prompt) variants every contender remixes, and its request table."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from remix_pipeline.contract import ContentVariant

# Catalogue sources of 4 s each, so every contender's server renders the same amount of media.
SOURCES = ("video_src_harbor", "video_src_forest", "video_src_dunes")
MEDIA = tuple(ContentVariant)


@dataclass(frozen=True)
class Variant:
    source_video_id: str
    prompt: str
    label: str


def variants(count: int, tag: str) -> list[Variant]:
    """`count` distinct variants; `tag` keeps prompts of different workloads apart."""
    return [
        Variant(
            source_video_id=SOURCES[i % len(SOURCES)],
            prompt=f"Benchmark {tag} variant {i}: re-grade as a warm dusk scene",
            label=f"v{i}",
        )
        for i in range(count)
    ]


def write_request_table(path: Path, rows: list[Variant], experiment: str = "bench") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_video_id", "variant", "prompt", "experiment", "replicates"])
        for row in rows:
            writer.writerow([row.source_video_id, row.label, row.prompt, experiment, 1])
    return path
