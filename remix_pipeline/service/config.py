"""Settings of one embedded Videos API service instance.

Every process that opens the same `db_path` with the same settings sees the same jobs: job
state derives from the clock and these durations, not from a background worker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from remix_pipeline.contract import ContractMode
from remix_pipeline.service.dialects import Dialect


class FaultConfig(BaseModel):
    """Faults the service injects, reproducibly for a given seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Answer 429 with retry headers beyond this rate."
    )
    rate_window_seconds: float = Field(
        default=60.0, gt=0, description="Window of the rate limit; tests shorten it."
    )
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of 5xx answers.")
    latency_ms: int = Field(default=0, ge=0, description="Added to every response.")
    spike_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of requests held for `spike_ms` before they are handled: a job "
        "they create appears only after the hold, as behind a congested gateway.",
    )
    spike_ms: int = Field(default=0, ge=0, description="How long a spiked request is held.")
    drop_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of create/remix requests whose response is dropped after the job "
        "was created (the connection closes without an answer).",
    )
    garble_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of successful create/remix/retrieve/list answers whose JSON is "
        "broken (cut short, missing id and status, or an unknown status); a job is still made.",
    )
    misdirect_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of successful retrieve/list answers whose videos carry another id "
        "(status answers about the wrong job).",
    )
    failure_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of jobs that end `failed`."
    )
    moderation_terms: tuple[str, ...] = Field(
        default=(), description="Prompts containing one of these end `moderation_blocked`."
    )


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    db_path: Path
    media_dir: Path | None = Field(
        default=None, description="Rendered media cache; defaults to `<db_path>.media/`."
    )
    api_key: str | None = Field(default=None, repr=False)
    mode: ContractMode = ContractMode.LENIENT
    dialect: Dialect = Field(
        default=Dialect.OPENAI,
        description="Imitate a compatible server's deviations (litellm, sglang, vllm, "
        "no-list); `openai` is the contract itself.",
    )
    queued_seconds: float = Field(default=0.5, ge=0)
    run_seconds: float = Field(default=2.0, ge=0)
    expires_after_seconds: int = Field(default=3600, ge=1)
    poll_after_ms: int = Field(default=1000, ge=0)
    media_scale: float = Field(
        default=0.125, gt=0, le=1, description="Rendered size as a share of the requested size."
    )
    media_fps: int = Field(default=8, ge=1, le=60)
    render_ahead: bool = Field(
        default=True,
        description="Render a job's media in the last seconds of its run (see "
        "`render_ahead`), as a real server makes the video, rather than on its first download.",
    )
    sdk_fixtures: bool = Field(
        default=False,
        description="Hold the fixed ids openai-python's own tests use (video `video_123`, "
        "character `char_123`); the video comes back after a delete (see `fixtures`).",
    )
    faults: FaultConfig = FaultConfig()

    @property
    def media_cache_dir(self) -> Path:
        return self.media_dir or self.db_path.with_name(self.db_path.name + ".media")


HOME_ENV = "REMIX_PIPELINE_HOME"
DB_FILE_NAME = "service.db"
SETTINGS_FILE_NAME = "service.json"


def state_home() -> Path:
    """Where local state lives: `$REMIX_PIPELINE_HOME`, else `.remix-pipeline` in the cwd."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured) if configured else Path.cwd() / ".remix-pipeline"


def default_service_config() -> ServiceConfig:
    """The embedded service every process of a project shares.

    Settings (durations, faults) come from `service.json` beside the database when present,
    so the webserver, the daemon and every run worker run the same service.
    """
    home = state_home()
    settings_file = home / SETTINGS_FILE_NAME
    if settings_file.is_file():
        settings = json.loads(settings_file.read_text())
        settings.setdefault("db_path", str(home / DB_FILE_NAME))
        return ServiceConfig.model_validate(settings)
    return ServiceConfig(db_path=home / DB_FILE_NAME)
