"""Media files checked by their bytes, and images derived from the MP4 where a server has none.

A gateway may ignore the content request's `variant` and answer every request with the MP4
(the LiteLLM proxy does), so a file named `thumbnail.webp` would silently hold a video. Each
download is therefore read back by its signature; a thumbnail or spritesheet that is not the
image it claims is made here from the downloaded MP4 instead (PyAV decodes, Pillow encodes),
and the lineage marks it derived.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import av
from PIL import Image

from remix_pipeline.contract import ContentVariant
from remix_pipeline.tempfiles import write_atomically

# The media type each variant must have, by its leading bytes.
MP4 = "video/mp4"
WEBP = "image/webp"
JPEG = "image/jpeg"
EXPECTED_TYPES: dict[ContentVariant, str] = {
    ContentVariant.VIDEO: MP4,
    ContentVariant.THUMBNAIL: WEBP,
    ContentVariant.SPRITESHEET: JPEG,
}
THUMBNAIL_WIDTH = 320
SPRITESHEET_TILES = 16
SPRITESHEET_COLUMNS = 4
SPRITESHEET_TILE_WIDTH = 160
_HEAD_BYTES = 12


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes, among those the contract serves."""
    if head[4:8] == b"ftyp":
        return MP4
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    return None


def media_type_of(path: Path) -> str | None:
    with path.open("rb") as handle:
        return sniff(handle.read(_HEAD_BYTES))


def holds_expected_media(path: Path, variant: ContentVariant) -> bool:
    return media_type_of(path) == EXPECTED_TYPES[variant]


def can_derive(variant: ContentVariant) -> bool:
    return variant is not ContentVariant.VIDEO


def derive(video: Path, variant: ContentVariant, target: str) -> bytes:
    """Write `variant` made from the MP4 at `video` to `target` atomically; returns its bytes."""
    if variant is ContentVariant.THUMBNAIL:
        payload = _thumbnail(video)
    elif variant is ContentVariant.SPRITESHEET:
        payload = _spritesheet(video)
    else:
        raise ValueError(f"a {variant.value} cannot be derived from the video")
    write_atomically(target, payload)
    return payload


def _frames_at(video: Path, shares: list[float]) -> list[Image.Image]:
    """Frames at the given shares (0..1) of the clip, decoded in one pass."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        count = stream.frames or sum(1 for _ in container.decode(stream))
        if not stream.frames:
            container.seek(0)
        indices = [min(count - 1, max(0, math.floor(share * count))) for share in shares]
        wanted = set(indices)
        found: dict[int, Image.Image] = {}
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                found[index] = frame.to_image()
            if len(found) == len(wanted):
                break
    if not found:
        raise ValueError(f"{video.name} holds no decodable video frame")
    # A stream that declared more frames than it decodes gives its last frame for the rest.
    return [found.get(index, found[max(found)]) for index in indices]


def _scaled(image: Image.Image, width: int) -> Image.Image:
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.BILINEAR)


def _thumbnail(video: Path) -> bytes:
    (middle,) = _frames_at(video, [0.5])
    buffer = io.BytesIO()
    _scaled(middle, min(THUMBNAIL_WIDTH, middle.width)).save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def _spritesheet(video: Path) -> bytes:
    shares = [(i + 0.5) / SPRITESHEET_TILES for i in range(SPRITESHEET_TILES)]
    frames = _frames_at(video, shares)
    width = min(SPRITESHEET_TILE_WIDTH, frames[0].width)
    tiles = [_scaled(frame, width) for frame in frames]
    rows = math.ceil(len(tiles) / SPRITESHEET_COLUMNS)
    sheet = Image.new("RGB", (width * SPRITESHEET_COLUMNS, tiles[0].height * rows))
    for index, tile in enumerate(tiles):
        column, row = index % SPRITESHEET_COLUMNS, index // SPRITESHEET_COLUMNS
        sheet.paste(tile, (column * width, row * tile.height))
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
