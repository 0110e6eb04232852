"""The embedded service's media renderer, checked by decoding its real output files."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from remix_pipeline.contract import ContentVariant
from remix_pipeline.service import media
from remix_pipeline.service.media import MediaSpec, media_folder, render_media

SOURCE_PROMPT = "A fishing harbor at dawn, boats rocking on slow swells"
REMIX_PROMPT = "Neon cyberpunk remix with purple rain"


def _spec(**changes: object) -> MediaSpec:
    fields: dict[str, object] = {
        "video_id": "video_src_harbor",
        "prompt": SOURCE_PROMPT,
        "motion_seed": 42,
        "width": 1280,
        "height": 720,
        "seconds": 4,
    }
    fields.update(changes)
    return MediaSpec(**fields)  # type: ignore[arg-type]


def _decode_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _foreground_centroids(frames: np.ndarray) -> np.ndarray:
    """Per-frame centre of the pixels that differ from the clip's static background.

    The background is the per-pixel median over time, so the signal is measured from the
    decoded video alone, without knowing which colours the renderer chose.
    """
    background = np.median(frames, axis=0)
    moving = np.abs(frames.astype(np.float32) - background).max(axis=3) > 48
    height, width = frames.shape[1:3]
    ys, xs = np.mgrid[0:height, 0:width]
    counts = moving.sum(axis=(1, 2))
    assert counts.min() > 0, "every frame should show moving shapes"
    cx = (moving * xs).sum(axis=(1, 2)) / counts / width
    cy = (moving * ys).sum(axis=(1, 2)) / counts / height
    return np.stack([cx, cy], axis=1)


def _colour_histogram(frames: np.ndarray) -> np.ndarray:
    bins = (frames // 32).reshape(-1, 3).astype(np.int64)
    codes = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    counts = np.bincount(codes, minlength=512).astype(np.float64)
    return counts / counts.sum()


def _digests(paths: dict[ContentVariant, Path]) -> dict[ContentVariant, str]:
    return {v: hashlib.sha256(p.read_bytes()).hexdigest() for v, p in paths.items()}


def _render_in_worker(spec: MediaSpec, cache_dir: Path) -> dict[ContentVariant, str]:
    return _digests(render_media(spec, cache_dir))


@pytest.mark.parametrize(
    ("width", "height", "seconds", "fps"),
    [(1280, 720, 4, 8), (720, 1280, 8, 8), (1792, 1024, 1, 5)],
)
def test_video_decodes_as_h264_with_requested_duration_and_scaled_size(
    tmp_path: Path, width: int, height: int, seconds: int, fps: int
) -> None:
    spec = _spec(width=width, height=height, seconds=seconds, fps=fps)
    path = render_media(spec, tmp_path)[ContentVariant.VIDEO]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == spec.frame_size
        assert stream.duration is not None
        duration = float(stream.duration * stream.time_base)
        frame_count = sum(1 for _ in container.decode(video=0))
    assert spec.frame_size == (round(width * 0.125), round(height * 0.125))
    assert frame_count == seconds * fps
    assert abs(duration - seconds) <= 1 / fps


def test_video_streams_from_the_start_and_carries_no_creation_time(tmp_path: Path) -> None:
    path = render_media(_spec(), tmp_path)[ContentVariant.VIDEO]
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    with av.open(str(path)) as container:
        assert "creation_time" not in container.metadata
        assert "creation_time" not in container.streams.video[0].metadata


def test_thumbnail_is_webp_at_the_scaled_size(tmp_path: Path) -> None:
    spec = _spec()
    with Image.open(render_media(spec, tmp_path)[ContentVariant.THUMBNAIL]) as image:
        assert image.format == "WEBP"
        assert image.size == spec.frame_size == (160, 90)


def test_thumbnail_shows_a_frame_from_the_clip(tmp_path: Path) -> None:
    paths = render_media(_spec(scale=0.25), tmp_path)
    frames = _decode_frames(paths[ContentVariant.VIDEO]).astype(np.float32)
    with Image.open(paths[ContentVariant.THUMBNAIL]) as image:
        thumbnail = np.asarray(image.convert("RGB"), dtype=np.float32)
    errors = np.abs(frames - thumbnail).mean(axis=(1, 2, 3))
    assert errors.min() < 4
    assert errors.min() < np.median(errors) / 3


@pytest.mark.parametrize(("seconds", "fps", "grid"), [(4, 8, (4, 4)), (1, 5, (4, 2))])
def test_spritesheet_is_jpeg_grid_of_scaled_frames(
    tmp_path: Path, seconds: int, fps: int, grid: tuple[int, int]
) -> None:
    spec = _spec(seconds=seconds, fps=fps)
    width, height = spec.frame_size
    with Image.open(render_media(spec, tmp_path)[ContentVariant.SPRITESHEET]) as image:
        assert image.format == "JPEG"
        assert image.size == (grid[0] * width, grid[1] * height)


def test_spritesheet_tiles_are_sampled_across_the_clip(tmp_path: Path) -> None:
    paths = render_media(_spec(scale=0.25), tmp_path)
    frames = _decode_frames(paths[ContentVariant.VIDEO]).astype(np.float32)
    height, width = frames.shape[1:3]
    with Image.open(paths[ContentVariant.SPRITESHEET]) as image:
        sheet = np.asarray(image.convert("RGB"), dtype=np.float32)
    first, last = sheet[:height, :width], sheet[-height:, -width:]
    assert np.abs(frames[0] - first).mean() < 4
    assert np.abs(frames[-1] - last).mean() < 4
    assert np.abs(first - last).mean() > 4 * np.abs(frames[0] - first).mean()


def test_scaled_size_rounds_to_even_pixels_with_a_minimum_of_16() -> None:
    assert _spec(width=1000, height=30).frame_size == (126, 16)
    assert _spec(width=1024, height=1792, scale=1.0).frame_size == (1024, 1792)
    assert _spec(width=1281, height=721, scale=1.0).frame_size == (1282, 722)


def test_same_spec_renders_identical_bytes_in_two_cache_dirs(tmp_path: Path) -> None:
    first = render_media(_spec(), tmp_path / "one")
    second = render_media(_spec(), tmp_path / "two")
    assert first[ContentVariant.VIDEO] != second[ContentVariant.VIDEO]
    assert _digests(first) == _digests(second)


def test_remix_changes_colours_but_keeps_the_motion(tmp_path: Path) -> None:
    source = _decode_frames(render_media(_spec(scale=0.25), tmp_path)[ContentVariant.VIDEO])
    remix_spec = _spec(video_id="video_remix", prompt=REMIX_PROMPT, scale=0.25)
    remix = _decode_frames(render_media(remix_spec, tmp_path)[ContentVariant.VIDEO])

    histogram_distance = 0.5 * np.abs(_colour_histogram(source) - _colour_histogram(remix)).sum()
    assert histogram_distance > 0.5
    drift = np.abs(_foreground_centroids(source) - _foreground_centroids(remix)).max()
    assert drift < 0.02


def test_different_motion_seed_changes_the_motion(tmp_path: Path) -> None:
    source = _decode_frames(render_media(_spec(scale=0.25), tmp_path)[ContentVariant.VIDEO])
    other_spec = _spec(video_id="video_other", motion_seed=7, scale=0.25)
    other = _decode_frames(render_media(other_spec, tmp_path)[ContentVariant.VIDEO])

    distance = np.abs(_foreground_centroids(source) - _foreground_centroids(other)).max()
    assert distance > 0.08


def test_different_motion_seed_keeps_the_look(tmp_path: Path) -> None:
    source = _decode_frames(render_media(_spec(scale=0.25), tmp_path)[ContentVariant.VIDEO])
    other_spec = _spec(video_id="video_other", motion_seed=7, scale=0.25)
    other = _decode_frames(render_media(other_spec, tmp_path)[ContentVariant.VIDEO])

    histogram_distance = 0.5 * np.abs(_colour_histogram(source) - _colour_histogram(other)).sum()
    assert histogram_distance < 0.1


def test_cached_files_are_returned_without_rerendering(tmp_path: Path) -> None:
    first = render_media(_spec(), tmp_path)
    stamps = {v: p.stat().st_mtime_ns for v, p in first.items()}
    first[ContentVariant.VIDEO].write_bytes(b"marker: not re-rendered")
    os.utime(first[ContentVariant.VIDEO], ns=(0, stamps[ContentVariant.VIDEO]))

    second = render_media(_spec(), tmp_path)

    folder = media_folder(_spec(), tmp_path)
    assert second == first == {v: folder / v.file_name for v in first}
    assert {v: p.stat().st_mtime_ns for v, p in second.items()} == stamps
    assert second[ContentVariant.VIDEO].read_bytes() == b"marker: not re-rendered"


def test_leftover_temp_files_are_not_taken_for_a_complete_render(tmp_path: Path) -> None:
    expected = _digests(render_media(_spec(), tmp_path / "clean"))
    out_dir = media_folder(_spec(), tmp_path / "cache")
    out_dir.mkdir(parents=True)
    for variant in ContentVariant:
        (out_dir / f".{variant.file_name}.crashed.part").write_bytes(b"half a file")

    rendered = render_media(_spec(), tmp_path / "cache")

    assert _digests(rendered) == expected


def test_stale_temp_files_are_swept_but_fresh_ones_are_spared(tmp_path: Path) -> None:
    out_dir = media_folder(_spec(), tmp_path)
    out_dir.mkdir(parents=True)
    stale = out_dir / ".video.mp4.died.part"
    fresh = out_dir / ".video.mp4.writing.part"
    for part in (stale, fresh):
        part.write_bytes(b"half a file")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    render_media(_spec(), tmp_path)

    assert not stale.exists()
    assert fresh.exists()


def test_a_lone_final_file_from_an_interrupted_render_is_rendered_again(tmp_path: Path) -> None:
    expected = _digests(render_media(_spec(), tmp_path / "clean"))
    out_dir = media_folder(_spec(), tmp_path / "cache")
    out_dir.mkdir(parents=True)
    (out_dir / "video.mp4").write_bytes(b"left by a render that died before the others")

    assert _digests(render_media(_spec(), tmp_path / "cache")) == expected


def test_failed_render_leaves_neither_final_nor_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(media, "_write_spritesheet", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        render_media(_spec(), tmp_path)

    assert list(media_folder(_spec(), tmp_path).iterdir()) == []


def test_concurrent_renders_from_several_processes_agree(tmp_path: Path) -> None:
    expected = _digests(render_media(_spec(), tmp_path / "clean"))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(_render_in_worker, [_spec()] * 6, [tmp_path / "shared"] * 6))

    assert all(result == expected for result in results)
    names = sorted(p.name for p in media_folder(_spec(), tmp_path / "shared").iterdir())
    assert names == sorted(v.file_name for v in ContentVariant)


@pytest.mark.parametrize(
    "prompt", ["", "x" * 1000, "Café au lait 🌊 日本の港 " * 20, "  spaced\tout\nprompt  "]
)
def test_unusual_prompts_render_valid_media(tmp_path: Path, prompt: str) -> None:
    paths = render_media(_spec(prompt=prompt), tmp_path)
    assert len(_decode_frames(paths[ContentVariant.VIDEO])) == 32


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"video_id": "../etc"}, "video id"),
        ({"video_id": ""}, "video id is empty"),
        ({"width": 0}, "width must be a positive integer"),
        ({"height": -720}, "height must be a positive integer"),
        ({"width": 12.5}, "width must be a positive integer"),
        ({"seconds": 0}, "seconds must be an integer from 1"),
        ({"seconds": True}, "seconds must be an integer from 1"),
        ({"fps": 0}, "fps must be an integer from 1"),
        ({"scale": 0}, "scale must be a number in (0, 1]"),
        ({"scale": 1.5}, "scale must be a number in (0, 1]"),
        ({"prompt": None}, "prompt must be a string"),
        ({"motion_seed": "42"}, "motion_seed must be an integer"),
        ({"width": 40000, "scale": 1.0}, "exceeds 4096 pixels per side"),
    ],
)
def test_invalid_spec_is_refused_with_a_clear_message(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="invalid media spec") as caught:
        _spec(**changes)
    assert message in str(caught.value)


def test_render_media_refuses_something_other_than_a_spec(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs a MediaSpec"):
        render_media({"video_id": "video_x"}, tmp_path)  # type: ignore[arg-type]


def test_a_render_at_another_scale_is_not_served_from_the_old_one(tmp_path: Path) -> None:
    small = render_media(_spec(scale=0.25), tmp_path)
    full = render_media(_spec(scale=0.5), tmp_path)

    assert small[ContentVariant.VIDEO] != full[ContentVariant.VIDEO]
    with av.open(str(full[ContentVariant.VIDEO])) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == _spec(scale=0.5).frame_size
