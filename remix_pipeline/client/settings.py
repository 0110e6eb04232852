"""How a VideosClient reaches a server and how hard it may push it.

Frozen and secret-free: the API key is named by the environment variable that holds it, so a
settings object can be logged, stored in metadata or shown in a UI without leaking anything.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024


class ClientSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(
        default=None,
        description="Server root including /v1; None -> $OPENAI_BASE_URL -> embedded service. "
        "EMBEDDED_BASE_URL names the embedded service explicitly.",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        min_length=1,
        description="Name of the environment variable that holds the key (never the key).",
    )
    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Requests allowed per rate window; None means unpaced."
    )
    rate_window_seconds: float = Field(
        default=60.0, gt=0, description="Window of requests_per_minute; tests shorten it."
    )
    max_in_flight: int = Field(default=32, ge=1)
    max_attempts: int = Field(default=6, ge=1, description="Attempts for retry-safe requests.")
    max_retry_seconds: float = Field(
        default=120.0, ge=0, description="Total time budget for one request and its retries."
    )
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=8.0, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    gateway_model: str = Field(
        default="sora-2",
        min_length=1,
        description="Model named in remix, edit and extension bodies sent through a gateway "
        "that routes by it (LiteLLM's model_name); never sent to a server without a gateway.",
    )
    list_page_size: int = Field(default=100, ge=1, le=100)
    max_json_bytes: int = Field(
        default=DEFAULT_MAX_JSON_BYTES, ge=1, description="Larger JSON bodies are refused."
    )
    bulk_retrieve_concurrency: int = Field(default=8, ge=1)
    list_concurrency: int = Field(
        default=4,
        ge=1,
        description="List pages bulk status reads at once, each segment of a long listing "
        "by its own cursor.",
    )
    bulk_extra_pages: int = Field(
        default=2,
        ge=0,
        description="List pages bulk status may read beyond the ones the wanted ids could fill.",
    )
