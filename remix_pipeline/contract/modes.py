"""Strict and lenient readings of the contract's enumerations.

Strict is the OpenAPI text; lenient also admits what the guide documented later (1080p
sizes, 16 and 20 second clips) and any model string, as compatible servers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from remix_pipeline.contract.models import (
    GUIDE_SECONDS,
    GUIDE_SIZES,
    SPEC_MODELS,
    SPEC_SECONDS,
    SPEC_SIZES,
)


class ContractMode(StrEnum):
    STRICT = "strict"
    LENIENT = "lenient"


@dataclass(frozen=True)
class Allowed:
    """The values a server in one mode accepts; `models is None` means any string."""

    sizes: tuple[str, ...]
    seconds: tuple[str, ...]
    models: tuple[str, ...] | None

    def check_size(self, size: str) -> str | None:
        return None if size in self.sizes else _one_of("size", size, self.sizes)

    def check_seconds(self, seconds: str) -> str | None:
        return None if seconds in self.seconds else _one_of("seconds", seconds, self.seconds)

    def check_model(self, model: str) -> str | None:
        if not model:
            return "Invalid 'model': must be a non-empty string."
        if self.models is None or model in self.models:
            return None
        return _one_of("model", model, self.models)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    choices = ", ".join(f"'{v}'" for v in allowed)
    return f"Invalid value for '{name}': expected one of {choices}, but got '{value}' instead."


def allowed_values(mode: ContractMode | str) -> Allowed:
    if ContractMode(mode) is ContractMode.STRICT:
        return Allowed(sizes=SPEC_SIZES, seconds=SPEC_SECONDS, models=SPEC_MODELS)
    return Allowed(
        sizes=SPEC_SIZES + GUIDE_SIZES, seconds=SPEC_SECONDS + GUIDE_SECONDS, models=None
    )
