"""Writing a streamed media body to disk so that only a complete file ever has its name.

Bytes go to a hidden temporary file beside the target (same filesystem, so the final rename
is atomic), hashed on the way; the file is synced and renamed into place only after the body
ended at its declared length. Any failure removes the temporary file and leaves the target
as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from remix_pipeline.contract import ContentVariant
from remix_pipeline.crashpoints import crash_point
from remix_pipeline.tempfiles import owned_prefix, sweep_abandoned

_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    size_bytes: int
    media_type: str


async def stream_to_file(
    response: httpx.Response, target: Path, variant: ContentVariant
) -> DownloadResult:
    target.parent.mkdir(parents=True, exist_ok=True)
    # A download killed mid-stream left its part file; its owner is gone, so it goes now.
    sweep_abandoned(target.parent, target.name, ".part")
    fd, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=owned_prefix(target.name), suffix=".part"
    )
    temp_path = Path(temp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as sink:
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                sink.write(chunk)
                crash_point("download.mid_stream")
                digest.update(chunk)
                size += len(chunk)
            _check_complete(response, size)
            sink.flush()
            # Off the event loop: a sync waits for the disk, and the other downloads, which
            # have nothing to do with this file, would wait with it (a third of a media run).
            await asyncio.to_thread(os.fsync, sink.fileno())
        os.replace(temp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp_path.unlink()
        raise
    return DownloadResult(
        path=target,
        sha256=digest.hexdigest(),
        size_bytes=size,
        media_type=_media_type(response, variant),
    )


def _check_complete(response: httpx.Response, size: int) -> None:
    """A body shorter than its declared length is a broken connection, not a file."""
    declared = response.headers.get("content-length")
    if declared is None or not declared.isdigit() or "content-encoding" in response.headers:
        return
    if size != int(declared):
        raise httpx.RemoteProtocolError(f"media body ended after {size} of {int(declared)} bytes")


def _media_type(response: httpx.Response, variant: ContentVariant) -> str:
    header = response.headers.get("content-type", "")
    media_type = header.split(";", 1)[0].strip().lower()
    return media_type or variant.media_type
