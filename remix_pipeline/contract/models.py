"""Pydantic models of the Videos API contract (`openai-videos.openapi.yaml`).

One source of truth for the embedded service (which emits these) and the client (which
parses them). Response models tolerate unknown extra keys, because compatible servers add
their own (`quality`, `usage`, ...); request models forbid them, as the server would.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class VideoStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (VideoStatus.COMPLETED, VideoStatus.FAILED)


class ContentVariant(StrEnum):
    VIDEO = "video"
    THUMBNAIL = "thumbnail"
    SPRITESHEET = "spritesheet"

    @property
    def media_type(self) -> str:
        return CONTENT_MEDIA_TYPES[self]

    @property
    def file_name(self) -> str:
        return CONTENT_FILE_NAMES[self]


CONTENT_MEDIA_TYPES: dict[ContentVariant, str] = {
    ContentVariant.VIDEO: "video/mp4",
    ContentVariant.THUMBNAIL: "image/webp",
    ContentVariant.SPRITESHEET: "image/jpeg",
}
CONTENT_FILE_NAMES: dict[ContentVariant, str] = {
    ContentVariant.VIDEO: "video.mp4",
    ContentVariant.THUMBNAIL: "thumbnail.webp",
    ContentVariant.SPRITESHEET: "spritesheet.jpg",
}


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


# The spec's enums (strict mode) and what the guide added later (lenient mode).
SPEC_MODELS: tuple[str, ...] = (
    "sora-2",
    "sora-2-pro",
    "sora-2-2025-10-06",
    "sora-2-pro-2025-10-06",
    "sora-2-2025-12-08",
)
SPEC_SIZES: tuple[str, ...] = ("720x1280", "1280x720", "1024x1792", "1792x1024")
GUIDE_SIZES: tuple[str, ...] = ("1920x1080", "1080x1920")
SPEC_SECONDS: tuple[str, ...] = ("4", "8", "12")
GUIDE_SECONDS: tuple[str, ...] = ("16", "20")

DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = "4"
PROMPT_MAX_CHARS = 32_000
CHARACTER_NAME_MAX_CHARS = 80


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoError(_Response):
    """Why a video job failed (`Error-2` in the spec)."""

    code: str
    message: str


class Video(_Response):
    """A video job. All 13 keys are always emitted, nulls included."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: VideoStatus
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    size: str
    seconds: str
    remixed_from_video_id: str | None
    error: VideoError | None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


class VideoList(_Response):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedVideo(_Response):
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool
    id: str


class VideoCharacter(_Response):
    id: str | None
    name: str | None
    created_at: int


class ErrorDetail(_Response):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(_Response):
    """The OpenAI error envelope: `{"error": {message, type, param, code}}`."""

    error: ErrorDetail


# Request bodies -------------------------------------------------------------------------

Prompt = Field(min_length=1, max_length=PROMPT_MAX_CHARS)


class ImageReference(_Request):
    image_url: str | None = Field(default=None, max_length=20_971_520)
    file_id: str | None = None


class VideoReference(_Request):
    id: str


class CreateVideoBody(_Request):
    prompt: str = Prompt
    model: str = DEFAULT_MODEL
    seconds: str = DEFAULT_SECONDS
    size: str = DEFAULT_SIZE
    input_reference: ImageReference | None = None


class RemixVideoBody(_Request):
    prompt: str = Prompt


class EditVideoBody(_Request):
    video: VideoReference
    prompt: str = Prompt


class ExtendVideoBody(_Request):
    video: VideoReference
    prompt: str = Prompt
    seconds: str


def dump_video(video: Video) -> dict[str, Any]:
    """The wire form of a Video: every key present, extras included."""
    return video.model_dump(mode="json")
