"""What a batch will cost before it is sent, and the guard that refuses one over budget.

A remix inherits its source's model, size and duration, so the estimate needs each source's
record: every distinct source is retrieved once (a batch of a thousand variants over four
sources costs four GETs), and never a paid call. A source the server cannot describe is
counted as unpriced, not guessed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remix_pipeline.client import VideosAPIError, VideosClient
from remix_pipeline.client.gateways import is_gateway_encoded
from remix_pipeline.contract.models import DEFAULT_MODEL
from remix_pipeline.pricing import DEFAULT_PRICES_PER_SECOND, estimate_cost_usd
from remix_pipeline.request_table import CREATE, EXTEND, VariantRequest


@dataclass(frozen=True)
class SourcePrice:
    """One source's terms, which every remix of it inherits."""

    source_video_id: str
    model: str | None
    size: str | None
    seconds: str | None
    cost_per_remix_usd: float | None
    problem: str | None = None


@dataclass(frozen=True)
class BatchEstimate:
    """The cost of the variants a batch would pay for."""

    variants: int
    total_usd: float
    sources: tuple[SourcePrice, ...] = field(default=())
    unpriced_variants: int = 0

    def describe(self) -> str:
        text = f"estimated cost ${self.total_usd:.2f} for {self.variants} new variants"
        if self.unpriced_variants:
            text += f" ({self.unpriced_variants} could not be priced)"
        return text

    def metadata(self) -> dict[str, Any]:
        """Plain values for Dagster metadata and manifests."""
        return {
            "estimate_variants": self.variants,
            "estimated_cost_usd": round(self.total_usd, 4),
            "unpriced_variants": self.unpriced_variants,
        }


class BudgetExceededError(Exception):
    """The batch would cost more than the experiment's `max_cost_usd`; nothing was sent."""

    def __init__(self, estimate: BatchEstimate, max_cost_usd: float) -> None:
        self.estimate = estimate
        self.max_cost_usd = max_cost_usd
        super().__init__(
            f"Refused: the batch's estimated cost ${estimate.total_usd:.2f} "
            f"({estimate.variants} new variants) exceeds the budget max_cost_usd="
            f"${max_cost_usd:.2f}; no remix request was sent. Raise max_cost_usd or remove rows."
        )


async def _price_source(
    client: VideosClient, source_video_id: str, prices: Mapping[str, Mapping[str, float]]
) -> SourcePrice:
    if not client.profile.serves_raw_ids and not is_gateway_encoded(source_video_id):
        # A gateway (LiteLLM) cannot route a retrieve of an id it did not issue: asking
        # would only cost retries of its 500s.
        problem = "the gateway cannot describe a source it did not create"
        return SourcePrice(source_video_id, None, None, None, None, problem=problem)
    try:
        video = await client.retrieve(source_video_id)
    except VideosAPIError as exc:
        return SourcePrice(source_video_id, None, None, None, None, problem=str(exc))
    cost = estimate_cost_usd(video.model, video.size, video.seconds, prices)
    return SourcePrice(source_video_id, video.model, video.size, video.seconds, cost)


async def estimate_batch(
    requests: Sequence[VariantRequest],
    client: VideosClient,
    prices: Mapping[str, Mapping[str, float]] = DEFAULT_PRICES_PER_SECOND,
) -> BatchEstimate:
    """Price `requests` by retrieving each distinct source once."""
    await client.learn_server()
    per_source = Counter(r.source_video_id for r in requests if r.operation != CREATE)
    per_source.pop("", None)  # chained off a create or an upload: priced by its own terms
    priced = await asyncio.gather(*(_price_source(client, s, prices) for s in sorted(per_source)))
    terms = {p.source_video_id: p for p in priced}
    by_key = {r.key: r for r in requests}
    costs = [_request_cost(r, terms, by_key, prices) for r in requests]
    total = sum(cost or 0.0 for cost in costs)
    unpriced = sum(1 for cost in costs if cost is None)
    return BatchEstimate(
        variants=len(requests),
        total_usd=round(total, 4),
        sources=tuple(priced),
        unpriced_variants=unpriced,
    )


def _terms(
    request: VariantRequest,
    sources: Mapping[str, SourcePrice],
    by_key: Mapping[str, VariantRequest],
) -> tuple[str | None, str | None, int | None]:
    """(model, size, seconds) of the video `request` makes, where they can be known: a create
    says them, a remix or an edit keeps its source's, an extension adds its seconds."""
    if request.operation == CREATE:
        return request.model, request.size, int(request.seconds or 0) or None
    parent = by_key.get(request.parent_key or "")
    if parent is not None:
        model, size, seconds = _terms(parent, sources, by_key)
    elif request.source_video_id in sources:
        source = sources[request.source_video_id]
        seconds = int(source.seconds) if source.seconds and source.seconds.isdigit() else None
        model, size = source.model, source.size
    else:  # an upload: its model is the row's (the server's default otherwise), size unknown
        model, size, seconds = request.model or DEFAULT_MODEL, None, None
    if request.operation == EXTEND and seconds is not None:
        seconds += int(request.seconds or 0)
    return model, size, seconds


def _request_cost(
    request: VariantRequest,
    sources: Mapping[str, SourcePrice],
    by_key: Mapping[str, VariantRequest],
    prices: Mapping[str, Mapping[str, float]],
) -> float | None:
    """A create costs its seconds at its model's rate, an extension the seconds it adds, a
    remix or an edit what its source cost; None where that cannot be known."""
    model, size, seconds = _terms(request, sources, by_key)
    if request.operation == EXTEND:
        seconds = int(request.seconds or 0)
        # An upload's size is unknown: a model priced alike for every size still has a price.
        size = size or "*"
    return estimate_cost_usd(model, size, seconds, prices)


def enforce_budget(estimate: BatchEstimate, max_cost_usd: float | None) -> None:
    """Raise BudgetExceededError when the estimate is over a set budget."""
    if max_cost_usd is not None and estimate.total_usd > max_cost_usd:
        raise BudgetExceededError(estimate, max_cost_usd)
