"""Gateways between the client and a Videos API server, recognised and seen through.

A gateway (the LiteLLM proxy is the one measured, `reference/litellm-real.md`) answers with
its own encoding of the upstream's ids: the same video has one id in a create or retrieve
answer, another in a list, and `remixed_from_video_id` holds the raw upstream id. Comparing
ids therefore goes through `upstream_id`, which reads the raw id out of an encoded one and
leaves any other id as it is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from enum import StrEnum

LITELLM_ID_PREFIX = "litellm:"
_LITELLM_HEADER_PREFIX = "x-litellm-"


class Gateway(StrEnum):
    LITELLM = "litellm"


def gateway_of(headers: Mapping[str, str]) -> Gateway | None:
    """The gateway that sent an answer, from headers it adds to every answer."""
    if any(name.lower().startswith(_LITELLM_HEADER_PREFIX) for name in headers):
        return Gateway.LITELLM
    return None


def upstream_id(video_id: str) -> str:
    """The id the server behind a gateway knows; an id no gateway encoded, unchanged.

    LiteLLM's ids are `video_` + base64 of
    `litellm:custom_llm_provider:<p>;model_id:<m>;video_id:<raw>[;deployment_id:<hex>]`.
    """
    fields = _litellm_fields(video_id)
    return fields.get("video_id") or video_id if fields else video_id


def same_video(first: str | None, second: str | None) -> bool:
    """Whether two ids name the same upstream video, whatever encoding each arrived in."""
    if first is None or second is None:
        return first is second
    return first == second or upstream_id(first) == upstream_id(second)


def is_gateway_encoded(video_id: str) -> bool:
    return bool(_litellm_fields(video_id))


def _litellm_fields(video_id: str) -> dict[str, str]:
    head, _, encoded = video_id.partition("_")
    if not encoded or not head:
        return {}
    try:
        text = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return {}
    if not text.startswith(LITELLM_ID_PREFIX):
        return {}
    fields: dict[str, str] = {}
    for part in text.removeprefix(LITELLM_ID_PREFIX).split(";"):
        name, sep, value = part.partition(":")
        if sep:
            fields[name] = value
    return fields
