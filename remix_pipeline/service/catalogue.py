"""The seeded source videos every embedded service starts with.

An installed wheel carries the file as `remix_pipeline/service/catalogue.json`; a source
checkout reads `data/catalogue.json` at the repository root.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

from remix_pipeline.contract import DEFAULT_MODEL, validate_id
from remix_pipeline.service.records import JobKind, JobRecord, motion_seed_for

_REPO_COPY = Path(__file__).resolve().parents[2] / "data" / "catalogue.json"


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    prompt: str
    size: str
    seconds: str
    model: str = DEFAULT_MODEL


def catalogue_text() -> str | None:
    packaged = resources.files("remix_pipeline.service").joinpath("catalogue.json")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    if _REPO_COPY.is_file():
        return _REPO_COPY.read_text(encoding="utf-8")
    return None


def load_catalogue(text: str | None = None) -> list[CatalogueEntry]:
    """The catalogue's entries; empty when no copy is installed."""
    raw = catalogue_text() if text is None else text
    if raw is None:
        return []
    entries = TypeAdapter(list[CatalogueEntry]).validate_python(json.loads(raw))
    for entry in entries:
        validate_id(entry.id)
    return entries


def source_jobs(entries: list[CatalogueEntry], now: float) -> list[JobRecord]:
    return [
        JobRecord(
            id=entry.id,
            kind=JobKind.CATALOGUE,
            model=entry.model,
            prompt=entry.prompt,
            size=entry.size,
            seconds=entry.seconds,
            created_at=now,
            remixed_from_video_id=None,
            failure=None,
            motion_seed=motion_seed_for(entry.prompt),
        )
        for entry in entries
    ]
