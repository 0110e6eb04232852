"""Normalising compatible servers' deviations into the Videos API contract.

Gateways and self-hosted servers (LiteLLM, vLLM-Omni, SGLang, ...) bend the contract a little:
other status words, missing optional keys, lists without cursors, free-form sizes, extra keys.
The client reads their answers as contract objects anyway, and says so once per kind of
deviation (per client), so a user learns what the server does without a warning per poll.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from remix_pipeline.contract.models import (
    GUIDE_SECONDS,
    GUIDE_SIZES,
    SPEC_SECONDS,
    SPEC_SIZES,
    Video,
    VideoList,
)

logger = logging.getLogger("remix_pipeline.client")

# Status words of compatible servers, read as the contract's nearest phase.
STATUS_ALIASES: dict[str, str] = {
    "pending": "queued",
    "preprocessing": "queued",
    "processing": "in_progress",
    "running": "in_progress",
    "succeeded": "completed",
    "cancelled": "failed",
    "expired": "failed",
}
# The contract's 13 keys, in its order: the one list of them is the Video model.
VIDEO_KEYS: tuple[str, ...] = tuple(Video.model_fields)
_NULLABLE = ("completed_at", "expires_at", "prompt", "remixed_from_video_id", "error")
_KNOWN_SIZES = frozenset(SPEC_SIZES + GUIDE_SIZES)
_KNOWN_SECONDS = frozenset(SPEC_SECONDS + GUIDE_SECONDS)


class Deviation(StrEnum):
    """One kind of departure from the contract; each is reported once per client."""

    STATUS_ALIAS = "status_alias"
    MISSING_FIELDS = "missing_fields"
    EXTRA_FIELDS = "extra_fields"
    FREE_FORM_SIZE = "free_form_size"
    FREE_FORM_SECONDS = "free_form_seconds"
    LIST_WITHOUT_CURSORS = "list_without_cursors"
    LIST_IGNORES_CURSOR = "list_ignores_cursor"
    NO_LIST = "no_list"
    GATEWAY = "gateway"
    MEDIA_VARIANT_IGNORED = "media_variant_ignored"


_EXPLANATIONS: dict[Deviation, str] = {
    Deviation.STATUS_ALIAS: "a status outside queued/in_progress/completed/failed "
    "(read as the nearest contract status)",
    Deviation.MISSING_FIELDS: "Video objects without some optional keys (read as null)",
    Deviation.EXTRA_FIELDS: "keys outside the contract (ignored)",
    Deviation.FREE_FORM_SIZE: "a size outside the documented values (kept as sent)",
    Deviation.FREE_FORM_SECONDS: "a seconds value outside the documented values (kept as text)",
    Deviation.LIST_WITHOUT_CURSORS: "a video list without has_more/first_id/last_id "
    "(read as one page; unseen jobs are retrieved one by one)",
    Deviation.LIST_IGNORES_CURSOR: "a video list that ignores 'after' (only its first page "
    "is read; unseen jobs are retrieved one by one)",
    Deviation.NO_LIST: "no usable GET /videos (jobs are polled one by one, and a job whose "
    "creation answer was lost cannot be found by listing)",
    Deviation.GATEWAY: "a gateway in front of the server (its ids are read through its "
    "encoding; remix bodies carry the experiment's model for it to route by)",
    Deviation.MEDIA_VARIANT_IGNORED: "content requests that ignore 'variant' (thumbnails and "
    "spritesheets are derived from the MP4 here and marked derived in the lineage)",
}


# The deviations that reshape a record or a page on its way in.
_RESHAPING = frozenset(
    {
        Deviation.STATUS_ALIAS,
        Deviation.MISSING_FIELDS,
        Deviation.EXTRA_FIELDS,
        Deviation.FREE_FORM_SIZE,
        Deviation.FREE_FORM_SECONDS,
        Deviation.LIST_WITHOUT_CURSORS,
    }
)


class DeviationLog:
    """The deviation kinds one client has met, each warned about once."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.seen: dict[Deviation, str] = {}

    @property
    def reshapes(self) -> bool:
        """Whether this server's answers have needed reshaping: from then on they are
        normalised before they are read, without trying them as they came first."""
        return not _RESHAPING.isdisjoint(self.seen)

    def note(self, kind: Deviation, example: str) -> None:
        if kind in self.seen:
            return
        self.seen[kind] = example
        logger.warning(
            "The server at %s deviates from the Videos API contract: %s; e.g. %s",
            self.server,
            _EXPLANATIONS[kind],
            example,
        )


def needs_no_normalising(parsed: BaseModel) -> bool:
    """Whether a record or page read straight from the JSON is what normalising would have
    made of it: the contract's keys and values only. A tick reads 1,000 pages of 100, and
    reading them so costs 0.36 ms a page where decoding, normalising and validating cost 0.82."""
    if isinstance(parsed, VideoList):
        return not parsed.model_extra and all(_as_normalised(v) for v in parsed.data)
    return isinstance(parsed, Video) and _as_normalised(parsed)


def _as_normalised(video: Video) -> bool:
    error = video.error
    return (
        not video.model_extra
        and video.size in _KNOWN_SIZES
        and video.seconds in _KNOWN_SECONDS
        and (error is None or (bool(error.code) and not error.model_extra))
    )


def normalise_video(data: Any, log: DeviationLog) -> Any:
    """A Video object in contract shape; anything not a JSON object is left for validation."""
    if not isinstance(data, dict):
        return data
    video = {key: data[key] for key in VIDEO_KEYS if key in data}
    extra = sorted(set(data) - set(VIDEO_KEYS))
    if extra:
        log.note(Deviation.EXTRA_FIELDS, ", ".join(extra[:8]))
    status = video.get("status")
    if isinstance(status, str) and status in STATUS_ALIASES:
        log.note(Deviation.STATUS_ALIAS, f"{status!r}")
        video["status"] = STATUS_ALIASES[status]
    missing = [key for key in _NULLABLE if key not in video]
    if "object" not in video:
        video["object"] = "video"
    if "progress" not in video or video["progress"] is None:
        missing.append("progress")
        video["progress"] = 100 if video.get("status") == "completed" else 0
    if "model" not in video or video["model"] is None:
        missing.append("model")
        video["model"] = ""
    for key in _NULLABLE:
        video.setdefault(key, None)
    if missing:
        log.note(Deviation.MISSING_FIELDS, ", ".join(missing))
    _normalise_size(video, log)
    _normalise_seconds(video, log)
    error = video.get("error")
    if isinstance(error, dict):
        video["error"] = {
            "code": str(error.get("code") or "unknown_error"),
            "message": str(error.get("message") or ""),
        }
    return video


def _normalise_size(video: dict[str, Any], log: DeviationLog) -> None:
    size = video.get("size")
    if isinstance(size, str) and size in _KNOWN_SIZES:
        return
    log.note(Deviation.FREE_FORM_SIZE, repr(size))
    video["size"] = "" if size is None else str(size)


def _normalise_seconds(video: dict[str, Any], log: DeviationLog) -> None:
    seconds = video.get("seconds")
    if isinstance(seconds, str) and seconds in _KNOWN_SECONDS:
        return
    log.note(Deviation.FREE_FORM_SECONDS, repr(seconds))
    if isinstance(seconds, float) and seconds.is_integer():
        seconds = int(seconds)
    video["seconds"] = "" if seconds is None else str(seconds)


def normalise_list(data: Any, log: DeviationLog) -> Any:
    """A VideoList in contract shape; a list without cursors counts as the last page."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return data
    items = [normalise_video(item, log) for item in data["data"]]
    listed: dict[str, Any] = {"object": data.get("object") or "list", "data": items}
    absent = [key for key in ("has_more", "first_id", "last_id") if key not in data]
    if absent:
        log.note(Deviation.LIST_WITHOUT_CURSORS, "no " + ", ".join(absent))
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    listed["first_id"] = data.get("first_id", ids[0] if ids else None)
    listed["last_id"] = data.get("last_id", ids[-1] if ids else None)
    listed["has_more"] = bool(data.get("has_more", False))
    return listed
