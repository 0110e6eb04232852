"""Estimated cost of a video: seconds times a per-second rate by model and size.

Defaults are the public prices of the hosted API before it shut down (sora-2 $0.10/s;
sora-2-pro $0.30/s at 720p, $0.50/s at 1024p, $0.70/s at 1080p). Dated model slugs are
priced as their family. An unknown model has no estimate rather than a wrong one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

DEFAULT_PRICES_PER_SECOND: Mapping[str, Mapping[str, float]] = {
    "sora-2": {"*": 0.10},
    "sora-2-pro": {
        "720x1280": 0.30,
        "1280x720": 0.30,
        "1024x1792": 0.50,
        "1792x1024": 0.50,
        "1080x1920": 0.70,
        "1920x1080": 0.70,
    },
}


def _family(model: str) -> str:
    for family in sorted(DEFAULT_PRICES_PER_SECOND, key=len, reverse=True):
        if model == family or model.startswith(family + "-2"):
            return family
    return model


def estimate_cost_usd(
    model: str | None,
    size: str | None,
    seconds: str | int | None,
    prices: Mapping[str, Mapping[str, float]] = DEFAULT_PRICES_PER_SECOND,
) -> float | None:
    if not model or not size or seconds in (None, ""):
        return None
    try:
        duration = float(seconds)  # type: ignore[arg-type]
    except ValueError:
        return None
    if not math.isfinite(duration) or duration <= 0:
        return None
    rates = prices.get(model) or prices.get(_family(model))
    if not rates:
        return None
    rate = rates.get(size, rates.get("*"))
    return None if rate is None else round(rate * duration, 4)


def price_table(
    overrides: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, dict[str, float]]:
    """The default prices with a user's overrides laid over them, model by model and size by
    size, so that overriding one size keeps the model's other sizes."""
    table = {model: dict(rates) for model, rates in DEFAULT_PRICES_PER_SECOND.items()}
    for model, rates in (overrides or {}).items():
        table.setdefault(model, {}).update(rates)
    return table
