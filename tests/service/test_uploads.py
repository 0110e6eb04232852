"""Edits (and extensions) of an uploaded video: what is accepted, what is refused and why,
and what is kept.

The uploads are real files made on the spot: an MP4 from the service's own renderer, a WebM
and an over-long MP4 encoded with PyAV, and files that are not videos at all.
"""

from __future__ import annotations

import hashlib
import io
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from remix_pipeline.contract import SPEC_SIZES, ContentVariant
from remix_pipeline.service import bodies
from remix_pipeline.service.media import MediaSpec, render_media
from remix_pipeline.service.store import JobStore
from remix_pipeline.service.uploads import MAX_UPLOAD_SECONDS, nearest_size
from tests.support.clock import FakeClock
from tests.support.servers import MakeConfig, serving

Client = httpx.AsyncClient
SOURCE = "video_src_harbor"


def _rendered_mp4(tmp_path: Path, width: int = 1280, height: int = 720) -> bytes:
    """A real MP4 (H.264) from the service's own renderer: what a user downloads and edits."""
    spec = MediaSpec(
        video_id="video_upload_source",
        prompt="a lighthouse at night",
        motion_seed=7,
        width=width,
        height=height,
        seconds=4,
        scale=0.05,
        fps=4,
    )
    return render_media(spec, tmp_path / "renders")[ContentVariant.VIDEO].read_bytes()


def _encoded(
    container_format: str, codec: str, *, seconds: float, fps: int, size: tuple[int, int]
) -> bytes:
    """A small clip encoded with PyAV; a very low fps makes a long clip cheap."""
    width, height = size
    buffer = io.BytesIO()
    time_base = Fraction(1, fps)
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(seconds * fps)):
            pixels = np.full((height, width, 3), (index * 37) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _audio_only_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        for index in range(4):
            samples = np.zeros((1, 1024), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _avi() -> bytes:
    return _encoded("avi", "mpeg4", seconds=1, fps=4, size=(32, 32))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _edit(
    client: Client, data: bytes, *, name: str = "clip.mp4", **fields: str
) -> httpx.Response:
    return await client.post(
        "/v1/videos/edits",
        data={"prompt": "add rain", **fields},
        files={"video": (name, data, "video/mp4")},
    )


def _error(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def _store(client: Client) -> JobStore:
    return client.app.state.service.store  # type: ignore[attr-defined]


# accepted uploads ----------------------------------------------------------------------------


async def test_an_uploaded_mp4_becomes_an_edit_with_no_source_id_and_its_hash_kept(
    app_client: Client, tmp_path: Path
) -> None:
    mp4 = _rendered_mp4(tmp_path)
    response = await _edit(app_client, mp4)
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["remixed_from_video_id"] is None
    assert (video["prompt"], video["model"], video["seconds"]) == ("add rain", "sora-2", "4")
    assert video["size"] == "1280x720"
    assert _store(app_client).get_video(video["id"]).upload_sha256 == (
        hashlib.sha256(mp4).hexdigest()
    )


async def test_a_webm_upload_is_accepted_and_a_portrait_one_maps_to_a_portrait_size(
    app_client: Client,
) -> None:
    webm = _encoded("webm", "libvpx", seconds=3, fps=8, size=(36, 64))
    response = await _edit(app_client, webm, name="clip.webm")
    assert response.status_code == 200, response.text
    assert (response.json()["size"], response.json()["seconds"]) == ("720x1280", "3")


async def test_the_bytes_decide_not_the_file_name(app_client: Client) -> None:
    mkv = _encoded("matroska", "libx264", seconds=2, fps=4, size=(64, 36))
    response = await _edit(app_client, mkv, name="notes.txt")
    assert response.status_code == 200, response.text


async def test_the_edit_derives_from_the_upload_same_file_same_motion(
    app_client: Client, clock: FakeClock, tmp_path: Path
) -> None:
    mp4 = _rendered_mp4(tmp_path)
    other = _encoded("mp4", "libx264", seconds=4, fps=4, size=(64, 36))
    ids = [(await _edit(app_client, data)).json()["id"] for data in (mp4, mp4, other)]
    seeds = [_store(app_client).get_video(video_id).motion_seed for video_id in ids]
    assert seeds[0] == seeds[1] != seeds[2]
    clock.advance(10)
    content = await app_client.get(f"/v1/videos/{ids[0]}/content")
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"


async def test_model_may_be_set_with_an_upload_and_is_checked(
    make_config: MakeConfig, clock: FakeClock, tmp_path: Path
) -> None:
    from remix_pipeline.contract import ContractMode
    from remix_pipeline.service import create_app

    mp4 = _rendered_mp4(tmp_path)
    app = create_app(make_config(mode=ContractMode.STRICT), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        chosen = await _edit(client, mp4, model="sora-2-pro")
        unknown = await _edit(client, mp4, model="sora-9")
    assert chosen.json()["model"] == "sora-2-pro"
    assert (_error(unknown)["param"], _error(unknown)["code"]) == ("model", "invalid_value")


# refused uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"", "invalid_video"),
        (lambda: b"Example data", "unsupported_file_type"),
        (lambda: b"%PDF-1.4\n" + b"0" * 200, "unsupported_file_type"),
        (_png, "unsupported_file_type"),
        (_audio_only_mp4, "unsupported_file_type"),
        (_avi, "unsupported_file_type"),
    ],
    ids=["empty", "text", "pdf", "png", "audio-only-mp4", "avi"],
)
async def test_a_file_that_is_not_an_accepted_video_is_a_400_naming_video(
    app_client: Client, make: object, code: str
) -> None:
    assert callable(make)
    error = _error(await _edit(app_client, make()))
    assert (error["param"], error["code"]) == ("video", code)
    assert str(error["message"]).startswith("Invalid 'video': ")
    assert _store(app_client).count_videos() == 4  # only the catalogue: no job was made


async def test_a_png_is_refused_by_its_format_name(app_client: Client) -> None:
    error = _error(await _edit(app_client, _png(), name="frame.mp4"))
    assert "png" in str(error["message"])


async def test_a_truncated_mp4_is_refused(app_client: Client, tmp_path: Path) -> None:
    mp4 = _rendered_mp4(tmp_path)
    error = _error(await _edit(app_client, mp4[: len(mp4) // 3]))
    assert (error["param"], error["code"]) == ("video", "invalid_video")


async def test_a_video_longer_than_the_limit_is_refused(app_client: Client) -> None:
    long = _encoded("mp4", "libx264", seconds=MAX_UPLOAD_SECONDS + 2, fps=1, size=(16, 16))
    error = _error(await _edit(app_client, long))
    assert (error["param"], error["code"]) == ("video", "video_too_long")
    assert "122.0 seconds" in str(error["message"])


async def test_a_video_of_exactly_the_limit_is_accepted(app_client: Client) -> None:
    limit = _encoded("mp4", "libx264", seconds=MAX_UPLOAD_SECONDS, fps=1, size=(16, 16))
    response = await _edit(app_client, limit)
    assert (response.status_code, response.json()["seconds"]) == (200, "120")


async def test_a_file_over_the_byte_cap_is_refused_while_it_is_read(
    app_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mp4 = _rendered_mp4(tmp_path)
    monkeypatch.setattr(bodies, "MAX_FILE_BYTES", len(mp4) - 1)
    error = _error(await _edit(app_client, mp4))
    assert (error["param"], error["code"]) == ("video", "file_too_large")
    monkeypatch.setattr(bodies, "MAX_FILE_BYTES", len(mp4))
    assert (await _edit(app_client, mp4)).status_code == 200


async def test_the_cap_applies_to_every_file_part(
    app_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "MAX_FILE_BYTES", 10)
    response = await app_client.post(
        "/v1/videos",
        data={"prompt": "x"},
        files={"input_reference": ("a.png", b"x" * 11, "image/png")},
    )
    assert (_error(response)["param"], _error(response)["code"]) == (
        "input_reference",
        "file_too_large",
    )


async def test_cheap_checks_come_before_the_decode(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos/edits", files={"video": ("clip.mp4", b"not a video", "video/mp4")}
    )
    assert _error(response)["param"] == "prompt"


# edits by id ---------------------------------------------------------------------------------


async def test_an_edit_by_id_still_inherits_its_source(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos/edits", data={"video[id]": SOURCE, "prompt": "add fog"}
    )
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["remixed_from_video_id"] == SOURCE
    assert _store(app_client).get_video(video["id"]).upload_sha256 is None


@pytest.mark.parametrize("path", ["/v1/videos/edits", "/v1/videos/extensions"])
async def test_model_with_a_video_id_is_a_400(app_client: Client, path: str) -> None:
    body = {"video": {"id": SOURCE}, "prompt": "add fog", "seconds": "4", "model": "sora-2"}
    if path.endswith("edits"):
        del body["seconds"]
    error = _error(await app_client.post(path, json=body))
    assert error["param"] == "model"


async def test_a_string_video_field_names_both_accepted_shapes(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos/edits", data={"video": "clip.mp4", "prompt": "add fog"}
    )
    error = _error(response)
    assert (error["param"], error["code"]) == ("video", "invalid_type")
    assert "a file or an object" in str(error["message"])


async def test_an_uploaded_video_can_be_extended_to_the_stitched_total(
    app_client: Client, tmp_path: Path
) -> None:
    mp4 = _rendered_mp4(tmp_path)
    response = await app_client.post(
        "/v1/videos/extensions",
        data={"prompt": "more", "seconds": "8"},
        files={"video": ("clip.mp4", mp4, "video/mp4")},
    )
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["seconds"], video["size"], video["remixed_from_video_id"]) == (
        "12",
        "1280x720",
        None,
    )
    stored = _store(app_client).get_video(video["id"])
    assert (stored.kind, stored.upload_sha256) == ("extension", hashlib.sha256(mp4).hexdigest())


async def test_an_extension_of_an_upload_past_120_seconds_is_a_400_on_seconds(
    app_client: Client,
) -> None:
    long = _encoded("mp4", "libx264", seconds=MAX_UPLOAD_SECONDS, fps=1, size=(16, 16))
    response = await app_client.post(
        "/v1/videos/extensions",
        data={"prompt": "more", "seconds": "4"},
        files={"video": ("clip.mp4", long, "video/mp4")},
    )
    assert (_error(response)["param"], _error(response)["code"]) == ("seconds", "invalid_value")


async def test_an_extension_of_a_file_that_is_not_a_video_is_a_400_naming_video(
    app_client: Client,
) -> None:
    response = await app_client.post(
        "/v1/videos/extensions",
        data={"prompt": "more", "seconds": "4"},
        files={"video": ("clip.mp4", b"Example data", "video/mp4")},
    )
    assert (_error(response)["param"], _error(response)["code"]) == (
        "video",
        "unsupported_file_type",
    )


# the nearest size ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [
        (1920, 1080, "1280x720"),
        (1080, 1920, "720x1280"),
        (64, 36, "1280x720"),
        (1792, 1024, "1792x1024"),
        (1024, 1792, "1024x1792"),
        (100, 100, "1024x1792"),
        (4000, 1000, "1280x720"),
    ],
)
def test_nearest_size_keeps_the_aspect_ratio_first(width: int, height: int, size: str) -> None:
    assert nearest_size(width, height) == size
    assert size in SPEC_SIZES


# the official SDK as the judge ---------------------------------------------------------------


def test_sdk_edits_and_extends_an_uploaded_file_and_can_set_the_model(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(_rendered_mp4(tmp_path))
    with serving(make_config()) as (base_url, _app):
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        with path.open("rb") as clip:
            edit = client.videos.edit(prompt="add rain", video=clip)
        with path.open("rb") as clip:
            pro = client.videos.edit(
                prompt="add snow", video=clip, extra_body={"model": "sora-2-pro"}
            )
        with path.open("rb") as clip:
            extension = client.videos.extend(prompt="and on", video=clip, seconds="8")
        done = client.videos.poll(edit.id)
        with pytest.raises(openai.BadRequestError) as refused:
            client.videos.edit(prompt="add rain", video=("clip.mp4", b"Example data"))
    assert isinstance(edit, openai.types.Video)
    assert (edit.remixed_from_video_id, edit.size, edit.model) == (None, "1280x720", "sora-2")
    assert pro.model == "sora-2-pro"
    assert (extension.seconds, extension.remixed_from_video_id) == ("12", None)
    assert done.status == "completed"
    assert (refused.value.param, refused.value.code) == ("video", "unsupported_file_type")


def test_sdk_sees_the_400_of_an_oversized_upload_cut_off_mid_body(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "MAX_FILE_BYTES", 1000)
    with serving(make_config()) as (base_url, _app):
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        with pytest.raises(openai.BadRequestError) as refused:
            client.videos.edit(prompt="add rain", video=("clip.mp4", b"x" * 4_000_000))
    assert (refused.value.param, refused.value.code) == ("video", "file_too_large")
