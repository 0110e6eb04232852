"""Media files appear at their target only when complete, with the right sha256."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from remix_pipeline.client.download import stream_to_file
from remix_pipeline.contract import ContentVariant

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class BreakingStream(httpx.AsyncByteStream):
    """Serves part of a body, then the connection fails."""

    def __init__(self, data: bytes, break_after: int) -> None:
        self.data = data
        self.break_after = break_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, self.break_after, 64 * 1024):
            yield self.data[start : min(start + 64 * 1024, self.break_after)]
        raise httpx.ReadError("connection reset by peer")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_complete_download_lands_at_target_with_its_sha256(tmp_path: Path) -> None:
    response = httpx.Response(200, headers={"content-type": "video/mp4"}, content=PAYLOAD)
    result = await stream_to_file(response, tmp_path / "out" / "video.mp4", ContentVariant.VIDEO)
    assert result.path.read_bytes() == PAYLOAD
    assert result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert (result.size_bytes, result.media_type) == (len(PAYLOAD), "video/mp4")
    assert leftovers(tmp_path / "out") == ["video.mp4"]


async def test_interrupted_download_leaves_no_file_at_the_target(tmp_path: Path) -> None:
    response = httpx.Response(
        200,
        headers={"content-length": str(len(PAYLOAD))},
        stream=BreakingStream(PAYLOAD, len(PAYLOAD) // 2),
    )
    with pytest.raises(httpx.ReadError):
        await stream_to_file(response, tmp_path / "video.mp4", ContentVariant.VIDEO)
    assert leftovers(tmp_path) == []


async def test_failed_download_leaves_an_existing_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "video.mp4"
    target.write_bytes(b"the previous good file")
    response = httpx.Response(200, stream=BreakingStream(PAYLOAD, 1000))
    with pytest.raises(httpx.ReadError):
        await stream_to_file(response, target, ContentVariant.VIDEO)
    assert target.read_bytes() == b"the previous good file"
    assert leftovers(tmp_path) == ["video.mp4"]


async def test_body_shorter_than_its_declared_length_is_not_a_file(tmp_path: Path) -> None:
    response = httpx.Response(200, headers={"content-length": "999999"}, content=b"short")
    with pytest.raises(httpx.RemoteProtocolError, match="5 of 999999"):
        await stream_to_file(response, tmp_path / "thumbnail.webp", ContentVariant.THUMBNAIL)
    assert leftovers(tmp_path) == []


async def test_media_type_falls_back_to_the_variant_when_the_server_names_none(
    tmp_path: Path,
) -> None:
    response = httpx.Response(200, content=b"jpeg bytes")
    result = await stream_to_file(response, tmp_path / "s.jpg", ContentVariant.SPRITESHEET)
    assert result.media_type == "image/jpeg"
