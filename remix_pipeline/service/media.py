"""Real media for the embedded Videos API: an MP4 clip, a WebP thumbnail and a JPEG spritesheet.

Users download and look at what the embedded service "generated", so the files are real media,
rendered deterministically and fast enough for demos. The picture splits in two on purpose so a
remix visibly derives from its source: the motion (shapes orbiting on paths) depends only on
`motion_seed` and the frame time, which a remix inherits, while the look (palette, gradient,
texture, shape style, caption) depends only on the prompt, which a remix changes.
"""

from __future__ import annotations

import colorsys
import contextlib
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from remix_pipeline.contract import ContentVariant, id_problem

DEFAULT_SCALE = 0.125
DEFAULT_FPS = 8
MAX_FPS = 60
MAX_SECONDS = 120
MAX_RENDER_SIDE = 4096
MIN_RENDER_SIDE = 16
SPRITESHEET_TILES = 16
SPRITESHEET_COLUMNS = 4
THUMBNAIL_POSITION = 0.5
STALE_PART_SECONDS = 600.0
_PART_SUFFIX = ".part"

_SILHOUETTES = ("disc", "square", "bar")
_FILLS = ("solid", "outlined", "shaded", "striped")
_TEXTURES = ("plain", "stripes", "grain", "checker")
# Reproducible bytes: bit-exact flags keep version strings out of the file, and the encoder
# runs on one thread (set on the codec context in `_write_mp4`).
# mbtree is off: with it, about 1 encode in 10 of the very same frames in one process came
# out a few bytes different (seen as a flaky byte-comparison test); with it off, 120 of 120
# encodes agreed.
_X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "23",
    "flags": "+bitexact",
    "x264-params": "mbtree=0",
}
_MP4_OPTIONS = {"movflags": "+faststart", "fflags": "+bitexact"}


@dataclass(frozen=True)
class MediaSpec:
    """Everything the rendered bytes depend on (plus the id that names the cache folder)."""

    video_id: str
    prompt: str
    motion_seed: int
    width: int
    height: int
    seconds: int
    scale: float = DEFAULT_SCALE
    fps: int = DEFAULT_FPS

    def __post_init__(self) -> None:
        problem = _spec_problem(self)
        if problem is not None:
            raise ValueError(f"invalid media spec: {problem}")

    @property
    def frame_size(self) -> tuple[int, int]:
        """Rendered (width, height): the scaled size rounded to even numbers, as yuv420p needs."""
        return _scaled_side(self.width, self.scale), _scaled_side(self.height, self.scale)

    @property
    def frame_count(self) -> int:
        return self.seconds * self.fps


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scaled_side(side: int, scale: float) -> int:
    """Round half up to an even number: Python's round() would round 640.5 pairs to even."""
    return max(MIN_RENDER_SIDE, 2 * math.floor(side * scale / 2 + 0.5))


def _spec_problem(spec: MediaSpec) -> str | None:
    id_issue = id_problem(spec.video_id)
    if id_issue is not None:
        return id_issue
    if not isinstance(spec.prompt, str):
        return f"prompt must be a string, got {type(spec.prompt).__name__}"
    if not _is_int(spec.motion_seed):
        return f"motion_seed must be an integer, got {spec.motion_seed!r}"
    for name in ("width", "height"):
        value = getattr(spec, name)
        if not _is_int(value) or value <= 0:
            return f"{name} must be a positive integer, got {value!r}"
    if not _is_int(spec.seconds) or not 1 <= spec.seconds <= MAX_SECONDS:
        return f"seconds must be an integer from 1 to {MAX_SECONDS}, got {spec.seconds!r}"
    if not _is_int(spec.fps) or not 1 <= spec.fps <= MAX_FPS:
        return f"fps must be an integer from 1 to {MAX_FPS}, got {spec.fps!r}"
    if (
        not isinstance(spec.scale, int | float)
        or isinstance(spec.scale, bool)
        or not 0 < spec.scale <= 1
    ):
        return f"scale must be a number in (0, 1], got {spec.scale!r}"
    width, height = spec.frame_size
    if max(width, height) > MAX_RENDER_SIDE:
        return (
            f"rendered size {width}x{height} exceeds {MAX_RENDER_SIDE} pixels per side; "
            "lower the scale"
        )
    return None


def media_folder(spec: MediaSpec, cache_dir: Path) -> Path:
    """`cache_dir/<video_id>/<render settings>/`: a video's prompt, seed, size and length never
    change, but a service restarted with another scale must not serve the old renders."""
    return Path(cache_dir) / spec.video_id / f"scale{spec.scale:g}-fps{spec.fps}"


def render_media(spec: MediaSpec, cache_dir: Path) -> dict[ContentVariant, Path]:
    """Render the three media files of `spec` into its `media_folder`, or reuse them.

    Files appear only by `os.replace` from temporary files in the same folder, so concurrent
    renders of one video (from several processes) are safe and a crashed render never leaves a
    final name behind; only when all three final files exist is the render skipped.
    """
    if not isinstance(spec, MediaSpec):
        raise TypeError(f"render_media needs a MediaSpec, got {type(spec).__name__}")
    out_dir = media_folder(spec, cache_dir)
    targets = {variant: out_dir / variant.file_name for variant in ContentVariant}
    if all(path.is_file() for path in targets.values()):
        return targets
    out_dir.mkdir(parents=True, exist_ok=True)
    _sweep_stale_parts(out_dir)

    temps: dict[ContentVariant, Path] = {}
    try:
        for variant in ContentVariant:
            temps[variant] = _temp_path(out_dir, variant.file_name)
        kept = _write_mp4(spec, temps[ContentVariant.VIDEO])
        _write_thumbnail(kept, spec, temps[ContentVariant.THUMBNAIL])
        _write_spritesheet(kept, spec, temps[ContentVariant.SPRITESHEET])
        for variant, temp in temps.items():
            os.replace(temp, targets[variant])
    finally:
        for temp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return targets


def _temp_path(out_dir: Path, file_name: str) -> Path:
    """A unique temporary name that can never be taken for a finished file."""
    handle, name = tempfile.mkstemp(dir=out_dir, prefix=f".{file_name}.", suffix=_PART_SUFFIX)
    os.close(handle)
    return Path(name)


def _sweep_stale_parts(out_dir: Path) -> None:
    """Delete temp files left by renders that died, sparing any a live render may be writing.

    No render runs for minutes, so a part file older than `STALE_PART_SECONDS` is an orphan.
    """
    cutoff = time.time() - STALE_PART_SECONDS
    for part in out_dir.glob(f".*{_PART_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_mtime < cutoff:
                part.unlink()


@dataclass(frozen=True)
class _Motion:
    """What moves and how, in frame-relative coordinates; a function of the seed only.

    Silhouettes (and so the area each shape covers) belong to the motion too: a remix keeps
    them, so the foreground of every frame is the same region in source and remix.
    """

    silhouettes: tuple[str, ...]
    centres: np.ndarray
    amplitudes: np.ndarray
    frequencies: np.ndarray
    phases: np.ndarray
    radii: np.ndarray
    spins: np.ndarray
    tilts: np.ndarray

    @classmethod
    def from_seed(cls, seed: int) -> _Motion:
        rng = np.random.default_rng([seed & (2**64 - 1), 0x6D6F74696F6E])
        count = int(rng.integers(3, 6))
        return cls(
            silhouettes=tuple(str(s) for s in rng.choice(_SILHOUETTES, size=count)),
            centres=rng.uniform(0.3, 0.7, size=(count, 2)),
            amplitudes=rng.uniform(0.12, 0.26, size=(count, 2)),
            frequencies=rng.uniform(0.2, 0.5, size=(count, 2)) * rng.choice([-1, 1], (count, 2)),
            phases=rng.uniform(0, 2 * math.pi, size=(count, 2)),
            radii=rng.uniform(0.06, 0.1, size=count),
            spins=rng.uniform(-1.5, 1.5, size=count),
            tilts=rng.uniform(0, math.pi, size=count),
        )

    def positions(self, t: float) -> np.ndarray:
        """Shape centres at time `t` seconds, as (x, y) shares of the frame size."""
        return self.centres + self.amplitudes * np.sin(
            2 * math.pi * self.frequencies * t + self.phases
        )

    def angles(self, t: float) -> np.ndarray:
        """Shape rotations in radians at time `t` seconds."""
        return self.tilts + self.spins * t


@dataclass(frozen=True)
class _Look:
    """Colours and styling of a clip; a function of the prompt only."""

    background: np.ndarray
    shape_colours: np.ndarray
    highlight: np.ndarray
    fill: str
    caption_colour: np.ndarray
    caption: str

    @classmethod
    def from_prompt(cls, prompt: str, size: tuple[int, int]) -> _Look:
        digest = hashlib.sha256(prompt.encode("utf-8")).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:16], "big"))
        hue = float(rng.random())
        dark = bool(rng.random() < 0.6)
        light_bg, light_fg = (0.2, 0.78) if dark else (0.8, 0.25)
        start = _rgb(hue, light_bg - 0.07, 0.65)
        end = _rgb(hue + rng.uniform(0.05, 0.15), light_bg + 0.07, 0.55)
        background = _gradient(size, float(rng.uniform(0, 2 * math.pi)), start, end)
        background += _texture(size, str(rng.choice(_TEXTURES)), rng)
        fg_hue = hue + 0.5 + rng.uniform(-0.08, 0.08)
        shape_colours = np.stack(
            [_rgb(fg_hue + offset, light_fg, 0.85) for offset in (0.0, 0.3, -0.1, 0.15, -0.25)]
        )
        # Contrasting colours, so every fill stands out from the background as much as a solid one.
        extreme = np.array([255.0, 255.0, 255.0] if dark else [0.0, 0.0, 0.0])
        return cls(
            background=np.clip(background, 0, 255),
            shape_colours=shape_colours,
            highlight=extreme,
            fill=str(rng.choice(_FILLS)),
            caption_colour=np.array([245.0, 245.0, 240.0] if dark else [20.0, 20.0, 25.0]),
            caption=" ".join(prompt.split()),
        )


def _rgb(hue: float, lightness: float, saturation: float) -> np.ndarray:
    return np.array(colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)) * 255.0


def _gradient(
    size: tuple[int, int], angle: float, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs / width - 0.5) * math.cos(angle) + (ys / height - 0.5) * math.sin(angle)
    share = np.clip(along + 0.5, 0, 1)[..., None]
    return (start * (1 - share) + end * share).astype(np.float32)


def _texture(size: tuple[int, int], kind: str, rng: np.random.Generator) -> np.ndarray:
    """A faint static pattern, so looks differ in texture too without hiding the shapes."""
    width, height = size
    strength = float(rng.uniform(4, 9))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    period = max(4.0, min(width, height) / float(rng.uniform(6, 12)))
    if kind == "stripes":
        pattern = np.sin(2 * math.pi * (xs + ys) / period)
    elif kind == "checker":
        pattern = ((xs // period + ys // period) % 2) * 2 - 1
    elif kind == "grain":
        pattern = rng.uniform(-1, 1, size=(height, width)).astype(np.float32)
    else:
        pattern = np.zeros((height, width), np.float32)
    return (pattern * strength)[..., None].astype(np.float32)


def _render_frames(spec: MediaSpec) -> Iterator[np.ndarray]:
    """The clip's frames in order, each (height, width, 3) uint8, one at a time to bound memory."""
    size = spec.frame_size
    width, height = size
    motion = _Motion.from_seed(spec.motion_seed)
    look = _Look.from_prompt(spec.prompt, size)
    base = look.background.astype(np.uint8)
    caption_rows, caption_alpha = _caption_layer(look.caption, size)
    pixel_radii = motion.radii * min(width, height)
    colours = look.shape_colours
    for index in range(spec.frame_count):
        t = index / spec.fps
        frame = base.copy()
        centres = motion.positions(t) * np.array([width, height])
        for shape, silhouette in enumerate(motion.silhouettes):
            shape_pose = _Pose(
                float(centres[shape, 0]),
                float(centres[shape, 1]),
                float(pixel_radii[shape]),
                float(motion.angles(t)[shape]),
            )
            paint = (colours[shape % len(colours)], colours[(shape + 1) % len(colours)])
            _draw_shape(frame, shape_pose, silhouette, look, paint)
        if caption_alpha is not None:
            band = frame[caption_rows].astype(np.float32)
            band = band * (1 - caption_alpha) + look.caption_colour * caption_alpha
            frame[caption_rows] = np.rint(band).astype(np.uint8)
        yield frame


@dataclass(frozen=True)
class _Pose:
    """Where one shape is in one frame, in pixels and radians."""

    x: float
    y: float
    radius: float
    angle: float


def _draw_shape(
    frame: np.ndarray,
    pose: _Pose,
    silhouette: str,
    look: _Look,
    paint: tuple[np.ndarray, np.ndarray],
) -> None:
    """Blend one antialiased shape into `frame`, touching only its bounding box.

    The silhouette alone decides which pixels are covered; the fill only colours them, always
    in colours that contrast with the background, so a remix covers exactly the same pixels.
    """
    height, width = frame.shape[:2]
    reach = pose.radius * 1.5 + 2
    x0, x1 = max(0, math.floor(pose.x - reach)), min(width, math.ceil(pose.x + reach) + 1)
    y0, y1 = max(0, math.floor(pose.y - reach)), min(height, math.ceil(pose.y + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs + 0.5 - pose.x, ys + 0.5 - pose.y
    cos, sin = math.cos(pose.angle), math.sin(pose.angle)
    u, v = dx * cos + dy * sin, dy * cos - dx * sin
    # Half extents along u and v: equal areas (pi * radius^2) for every silhouette.
    if silhouette == "square":
        half_u = half_v = pose.radius * math.sqrt(math.pi) / 2
        edge = np.maximum(np.abs(u) - half_u, np.abs(v) - half_v)
        depth = np.maximum(np.abs(u) / half_u, np.abs(v) / half_v)
    elif silhouette == "bar":
        half_u = pose.radius * math.sqrt(math.pi / 2)
        half_v = half_u / 2
        edge = np.maximum(np.abs(u) - half_u, np.abs(v) - half_v)
        depth = np.maximum(np.abs(u) / half_u, np.abs(v) / half_v)
    else:
        edge = np.hypot(u, v) - pose.radius
        depth = np.hypot(u, v) / pose.radius
    coverage = np.clip(0.5 - edge, 0, 1)[..., None]
    main, second = paint
    if look.fill == "outlined":
        colour = np.where((depth > 0.72)[..., None], second, main)
    elif look.fill == "shaded":
        glow = np.clip(1 - depth, 0, 1)[..., None] * 0.6
        colour = main * (1 - glow) + look.highlight * glow
    elif look.fill == "striped":
        stripe = np.floor(u / max(1.5, pose.radius * 0.4)) % 2 == 0
        colour = np.where(stripe[..., None], main, second)
    else:
        colour = main
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.rint(region * (1 - coverage) + colour * coverage).astype(np.uint8)


def _caption_layer(caption: str, size: tuple[int, int]) -> tuple[slice, np.ndarray | None]:
    """The prompt drawn with Pillow's default font along the bottom edge, if it fits at all."""
    width, height = size
    font = _caption_font(height)
    pad = max(2, height // 40)
    text = _fit_caption(caption, font, width - 2 * pad)
    left, top, _right, bottom = font.getbbox(text or "x")
    text_height = bottom - top
    if not text or text_height + 2 * pad > height // 4:
        return slice(0, 0), None
    band_height = text_height + 2 * pad
    mask = Image.new("L", (width, band_height), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, fill=255, font=font)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    return slice(height - band_height, height), alpha


def _caption_font(height: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=min(40, max(10, height // 14)))
    except (ImportError, OSError):
        return ImageFont.load_default()


def _fit_caption(
    caption: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int
) -> str:
    """The longest word-boundary prefix of `caption` (with '...' if cut) within `max_width`."""
    words = caption.split(" ")
    for count in range(len(words), 0, -1):
        text = " ".join(words[:count]) + ("" if count == len(words) else "...")
        if font.getlength(text) <= max_width:
            return text
    return ""


def _thumbnail_index(spec: MediaSpec) -> int:
    return min(spec.frame_count - 1, int(spec.frame_count * THUMBNAIL_POSITION))


def _spritesheet_indices(spec: MediaSpec) -> list[int]:
    count = min(SPRITESHEET_TILES, spec.frame_count)
    return [int(i) for i in np.linspace(0, spec.frame_count - 1, count).round()]


def _write_mp4(spec: MediaSpec, path: Path) -> dict[int, np.ndarray]:
    """Encode the clip to `path`; return the frames the still images need, keyed by index."""
    width, height = spec.frame_size
    wanted = {_thumbnail_index(spec), *_spritesheet_indices(spec)}
    kept: dict[int, np.ndarray] = {}
    time_base = Fraction(1, spec.fps)
    with av.open(str(path), mode="w", format="mp4", options=_MP4_OPTIONS) as container:
        stream = container.add_stream("libx264", rate=spec.fps, options=_X264_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.codec_context.thread_count = 1
        for index, pixels in enumerate(_render_frames(spec)):
            if index in wanted:
                kept[index] = pixels
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return kept


def _write_thumbnail(kept: dict[int, np.ndarray], spec: MediaSpec, path: Path) -> None:
    Image.fromarray(kept[_thumbnail_index(spec)]).save(path, format="WEBP", quality=80, method=4)


def _write_spritesheet(kept: dict[int, np.ndarray], spec: MediaSpec, path: Path) -> None:
    """A grid of frames sampled evenly across the clip, first frame top left."""
    picks = _spritesheet_indices(spec)
    columns = min(SPRITESHEET_COLUMNS, len(picks))
    rows = math.ceil(len(picks) / columns)
    width, height = spec.frame_size
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for tile, index in enumerate(picks):
        top, left = (tile // columns) * height, (tile % columns) * width
        sheet[top : top + height, left : left + width] = kept[index]
    Image.fromarray(sheet).save(path, format="JPEG", quality=85)
