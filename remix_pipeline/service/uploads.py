"""Checking an uploaded source video (a `video` file part of an edit or extension) with PyAV.

The contract allows an edit or an extension of footage the client uploads instead of a stored
video, but says nothing of formats or limits. What this server accepts, and why:

- **Containers**: the MP4/QuickTime family (`.mp4`, `.mov`, `.m4v`, `.3gp`) and
  Matroska/WebM: what phones, cameras and browsers record, and what the Videos API itself
  returns. The bytes decide, never the file name or the part's content type. Other formats
  FFmpeg can open are refused by name, on purpose: it opens a PNG or JPEG as a one-frame
  "video", and AVI, MPEG-TS and GIF are not what a user means to edit.
- **A video stream whose first frame decodes**: an audio-only MP4 or a file cut short
  before its first frame is refused before a job is made, not discovered later as a failed
  job. Only the first frame is decoded (the cost of a request stays small), so a file cut
  short later on is accepted: its header still says how long it was meant to be.
- **Duration**: more than 0 and at most `MAX_UPLOAD_SECONDS`.
- **Size**: at most `bodies.MAX_FILE_BYTES`, enforced while the part arrives.

The upload is not stored: the job keeps its sha256, and the rendered result derives from the
file the way a remix derives from its source. The motion comes from the file's hash (the
same upload edited twice moves the same way), the size is the contract size nearest the
upload's aspect ratio, and the length is the upload's duration in whole seconds (plus the
added seconds, for an extension).
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import av
import av.error

from remix_pipeline.contract import SPEC_SIZES
from remix_pipeline.service.bodies import UploadedFile
from remix_pipeline.service.errors import ApiError, invalid_request
from remix_pipeline.service.records import motion_seed_from_digest

# The longest video the contract describes: an extension chain stops at 120 s (the guide:
# "a maximum total length of 120 seconds"). The renderer draws at most as much
# (`media.MAX_SECONDS`), so every accepted upload can be rendered as an edit.
MAX_UPLOAD_SECONDS = 120
# FFmpeg demuxer names (`container.format.name`) accepted, with the name users know them by.
ACCEPTED_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/QuickTime",
    "matroska,webm": "WebM/Matroska",
}
ACCEPTED_TEXT = " or ".join(ACCEPTED_CONTAINERS.values())
# Container durations may overshoot the frames a little (rounded timestamps): within 10 ms
# of a whole second counts as that second.
_DURATION_DECIMALS = 2
_PARAM = "video"


@dataclass(frozen=True)
class VideoUpload:
    """What the service keeps of an uploaded video: facts about it, never its bytes."""

    sha256: str
    container: str
    width: int
    height: int
    duration: float

    @property
    def motion_seed(self) -> int:
        return motion_seed_from_digest(bytes.fromhex(self.sha256))

    @property
    def size(self) -> str:
        return nearest_size(self.width, self.height)

    @property
    def seconds(self) -> str:
        """The duration in whole seconds, rounded up: `Video.seconds` is a whole number."""
        return str(max(1, math.ceil(round(self.duration, _DURATION_DECIMALS))))


def nearest_size(width: int, height: int, sizes: tuple[str, ...] = SPEC_SIZES) -> str:
    """The size whose aspect ratio is nearest (in log terms, so 2:1 and 1:2 are equally far
    from square), then whose pixel count is nearest; ties go to the earlier size, portrait
    before landscape (a square upload is `1024x1792`: 4:7 is the squarest size).

    Only the spec's four sizes: the guide's 1080p sizes share their ratios with 720p ones and
    would fail a strict client's check of `Video.size`.
    """

    def distance(size: str) -> tuple[float, float]:
        w, _, h = size.partition("x")
        aspect = abs(math.log((width / height) / (int(w) / int(h))))
        area = abs(math.log((width * height) / (int(w) * int(h))))
        return round(aspect, 9), round(area, 9)

    return min(sizes, key=distance)


def inspect_upload(upload: UploadedFile) -> VideoUpload:
    """The facts of an uploaded video, or an `ApiError` 400 naming `video` and the problem.

    CPU-bound (it demuxes and decodes); call it from a worker thread.
    """
    if not upload.data:
        raise _problem("the uploaded file is empty.", "invalid_video")
    try:
        container = av.open(io.BytesIO(upload.data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError):
        raise _problem(
            f"the uploaded file is not a video this server can read; upload {ACCEPTED_TEXT}.",
            "unsupported_file_type",
        ) from None
    with container:
        format_name = container.format.name
        if format_name not in ACCEPTED_CONTAINERS:
            raise _problem(
                f"'{format_name[:40]}' files are not accepted; upload {ACCEPTED_TEXT}.",
                "unsupported_file_type",
            )
        if not container.streams.video:
            raise _problem(
                "the uploaded file has no video stream (audio only?).", "unsupported_file_type"
            )
        stream = container.streams.video[0]
        frame = _first_frame(container, stream)
        duration = _duration(container, stream)
    if duration is None or duration <= 0:
        raise _problem("the uploaded video has no duration.", "invalid_video")
    if round(duration, _DURATION_DECIMALS) > MAX_UPLOAD_SECONDS:
        raise _problem(
            f"the uploaded video is {duration:.1f} seconds long; at most "
            f"{MAX_UPLOAD_SECONDS} seconds can be edited.",
            "video_too_long",
        )
    return VideoUpload(
        sha256=hashlib.sha256(upload.data).hexdigest(),
        container=ACCEPTED_CONTAINERS[format_name],
        width=frame.width,
        height=frame.height,
        duration=duration,
    )


def _problem(message: str, code: str) -> ApiError:
    return invalid_request(f"Invalid '{_PARAM}': {message}", param=_PARAM, code=code)


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame:
    """Decode up to the first frame: proves the codec is readable and gives the true size."""
    try:
        for frame in container.decode(stream):
            if frame.width > 0 and frame.height > 0:
                return frame
    except (av.error.FFmpegError, ValueError, OSError):
        pass
    raise _problem("no frame of the uploaded video could be decoded.", "invalid_video")


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """Seconds, from the container header, else the stream's, else the packets' timestamps."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return _duration_from_packets(container, stream)


def _duration_from_packets(
    container: av.container.InputContainer, stream: av.VideoStream
) -> float | None:
    """The end of the last packet; demuxing without decoding is cheap, and the file is small."""
    try:
        container.seek(0)
        ends = [
            (packet.pts + (packet.duration or 0)) * packet.time_base
            for packet in container.demux(stream)
            if packet.pts is not None and packet.time_base is not None
        ]
    except (av.error.FFmpegError, ValueError, OSError):
        return None
    return float(max(ends)) if ends else None
