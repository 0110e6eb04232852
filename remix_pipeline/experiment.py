"""What one experiment is: its table, its server, its limits and where its results go.

The Dagster component, the `remix-pipeline run` command and the tests all build the same
definitions from one `ExperimentSettings`. Secrets are referred to by environment variable
name only, so the settings can be shown in the UI and written to a manifest safely.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from remix_pipeline.client import ClientSettings
from remix_pipeline.pricing import price_table
from remix_pipeline.servers import ResolvedServer, resolve_server, server_of_label

LEDGER_FILE_NAME = "ledger.db"
LEDGER_URL_ENV = "REMIX_PIPELINE_LEDGER_URL"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")


class UnknownOutcomePolicy(StrEnum):
    """What to do when a remix POST may or may not have created a job and no job matches."""

    FAIL = "fail"
    RESUBMIT = "resubmit"


class ExperimentSettings(BaseModel):
    """One experiment: a request table fanned out against one Videos API server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        default="sample",
        description="Names the experiment's assets, partitions, sensors and schedule.",
    )
    table: str = Field(description="Path of the request table (CSV, Parquet or JSON Lines).")
    output_dir: str | None = Field(
        default=None,
        description="Where media and the lineage table go (local path or fsspec URL); "
        "defaults to `data/output/<name>` beside the table's folder.",
    )
    ledger_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the submission ledger, without a password (put a URL "
        "with credentials in the variable named by `ledger_url_env`); defaults to SQLite in "
        "$REMIX_PIPELINE_HOME. A cluster must use a shared database.",
    )
    ledger_url_env: str = Field(
        default=LEDGER_URL_ENV,
        description="Name of the variable that may hold the ledger's URL, credentials included; "
        "read at run time when `ledger_url` is not set.",
    )
    base_url_env: str = Field(
        default="OPENAI_BASE_URL",
        description="Name of the variable holding the server's base URL; unset means the "
        "embedded service.",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Name of the variable holding the API key."
    )
    gateway_model: str = Field(
        default="sora-2",
        min_length=1,
        description="The model a gateway routes remixes by (LiteLLM's model_name); sent only "
        "to a gateway that needs it. A remix itself keeps its source's model.",
    )
    start_afresh: bool = Field(
        default=False,
        description="When the attempts were sent to another server than the configured one: "
        "submit every variant again on this one (the earlier attempts stay in the lineage).",
    )
    same_server_as: list[str] = Field(
        default_factory=list,
        description="Earlier base URLs of the configured server (a renamed host): attempts "
        "recorded with them are polled and downloaded on the configured one.",
    )
    requests_per_minute: int | None = Field(default=None, ge=1)
    max_in_flight: int = Field(default=32, ge=1)
    pool: str | None = Field(
        default=None,
        description="Dagster concurrency pool of the submission step; limit it in "
        "dagster.yaml (`concurrency: pools:`) so a cluster has few submitting steps at once.",
    )
    poll_interval_seconds: int = Field(default=10, ge=1)
    ui_matrix_cells: int = Field(
        default=48,
        ge=1,
        le=200,
        description="How many variants the lineage asset's variant matrix draws in the "
        "Dagster UI, each with its thumbnail; beyond it only the most recently submitted are "
        "drawn and the report holds them all.",
    )
    request_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long one request to the server may take. A remix POST that times out "
        "is looked for on the server until twice this long after it was sent before "
        "`on_unknown_outcome` decides.",
    )
    refresh_cron: str | None = Field(default=None, description="Cron of the refresh schedule.")
    on_unknown_outcome: UnknownOutcomePolicy = UnknownOutcomePolicy.FAIL
    reremix_expired_media: bool = Field(
        default=False,
        description="On a refresh, pay for a new attempt of a completed variant whose media "
        "expired on the server before they were downloaded (the expired attempt stays in the "
        "lineage).",
    )
    strict: bool = Field(default=False, description="Refuse the whole table if any row is bad.")
    failure_rate_warn_threshold: float = Field(default=0.25, ge=0, le=1)
    automation_running: bool = Field(
        default=True, description="Ship the sensors and schedule running."
    )
    max_cost_usd: float | None = Field(
        default=None,
        ge=0,
        description="Budget of one batch: a batch whose estimated cost exceeds it is refused "
        "before any paid call. Unset means no limit.",
    )
    prices: dict[str, dict[str, float]] | None = Field(
        default=None,
        description="Per-second prices laid over the defaults, by model then size ('*' for "
        "any size), e.g. {'sora-2': {'*': 0.12}}.",
    )
    owners: list[str] | None = Field(
        default=None,
        description="Owners of the experiment's assets in the Dagster UI (emails or 'team:name').",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_key_part(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                "name must be lowercase letters, digits and '_', starting with a letter "
                "(at most 40 characters)"
            )
        return value

    @field_validator("owners")
    @classmethod
    def _owners_dagster_accepts(cls, value: list[str] | None) -> list[str] | None:
        for owner in value or []:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+|team:[A-Za-z0-9_-]+", owner):
                raise ValueError(f"owner {owner!r} must be an email or 'team:<name>'")
        return value

    @field_validator("ledger_url")
    @classmethod
    def _no_password_in_the_url(cls, value: str | None) -> str | None:
        if value and re.search(r"//[^/@]*:[^/@]*@", value):
            raise ValueError(
                "must not hold a password: put the URL in the environment variable named by "
                "ledger_url_env instead"
            )
        return value

    @field_validator("base_url_env", "api_key_env", "ledger_url_env")
    @classmethod
    def _is_a_variable_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                "must be the NAME of an environment variable (the value is read at run time)"
            )
        return value

    @property
    def table_path(self) -> Path:
        return Path(self.table).expanduser().resolve()

    @property
    def resolved_output_dir(self) -> str:
        if self.output_dir:
            return self.output_dir
        return str(self.table_path.parent / "output" / self.name)

    @property
    def resolved_ledger_url(self) -> str | None:
        """The ledger's URL, or None for the default SQLite file in the state home."""
        return self.ledger_url or os.environ.get(self.ledger_url_env) or None

    def price_table(self) -> dict[str, dict[str, float]]:
        return price_table(self.prices)

    def server(self) -> ResolvedServer:
        """The configured server, from the variable named by `base_url_env` alone."""
        return resolve_server(self.base_url_env)

    def client_settings(self, server: str | None = None) -> ClientSettings:
        """Settings of a client for the configured server, or for `server` (an attempt's
        recorded label: its polls and downloads go back where it was sent)."""
        resolved = self.server() if server is None else server_of_label(server)
        return ClientSettings(
            base_url=resolved.base_url,
            api_key_env=self.api_key_env,
            requests_per_minute=self.requests_per_minute,
            max_in_flight=self.max_in_flight,
            timeout_seconds=self.request_timeout_seconds,
            gateway_model=self.gateway_model,
        )

    def uses_embedded_service(self) -> bool:
        return self.server().embedded

    def server_label(self) -> str:
        """The server as shown to people: a base URL without credentials, or 'embedded'."""
        return self.server().label
