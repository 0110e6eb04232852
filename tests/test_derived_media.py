"""Media read by their bytes, and images derived from a real MP4 when a server has none.

The MP4s are the embedded service's own renders; the downloads go through the real embedded
service behind a transport that drops `variant`, as the LiteLLM proxy does.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from PIL import Image

from remix_pipeline import derived_media
from remix_pipeline.client import ClientSettings, Deviation, VideosClient
from remix_pipeline.contract import ContentVariant
from remix_pipeline.ledger import Ledger
from remix_pipeline.service import ServiceConfig, embedded_transport
from remix_pipeline.service.media import MediaSpec, render_media
from remix_pipeline.submission import submit_variants
from remix_pipeline.tracking import download_media, poll_in_flight
from tests.support.builders import requests


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[ContentVariant, Path]:
    spec = MediaSpec(
        video_id="video_derive", prompt="dawn", motion_seed=7, width=1280, height=720, seconds=4
    )
    return render_media(spec, tmp_path_factory.mktemp("render"))


def test_each_served_variant_is_recognised_by_its_bytes(rendered) -> None:
    for variant, path in rendered.items():
        assert derived_media.media_type_of(path) == derived_media.EXPECTED_TYPES[variant]
        assert derived_media.holds_expected_media(path, variant)


def test_an_mp4_under_an_image_name_is_not_that_image(rendered) -> None:
    video = rendered[ContentVariant.VIDEO]
    assert not derived_media.holds_expected_media(video, ContentVariant.THUMBNAIL)
    assert not derived_media.holds_expected_media(video, ContentVariant.SPRITESHEET)
    assert derived_media.sniff(b"<html>not media") is None


def test_a_thumbnail_derived_from_the_mp4_is_a_webp_of_the_clips_frame_size(
    rendered, tmp_path: Path
) -> None:
    target = tmp_path / "thumbnail.webp"
    payload = derived_media.derive(
        rendered[ContentVariant.VIDEO], ContentVariant.THUMBNAIL, str(target)
    )
    assert target.read_bytes() == payload
    with Image.open(target) as image:
        assert image.format == "WEBP"
        assert image.size == (160, 90)  # the render's own frame size (1280x720 at 1/8)


def test_a_spritesheet_derived_from_the_mp4_is_a_jpeg_grid_of_sixteen_frames(
    rendered, tmp_path: Path
) -> None:
    target = tmp_path / "spritesheet.jpg"
    derived_media.derive(rendered[ContentVariant.VIDEO], ContentVariant.SPRITESHEET, str(target))
    with Image.open(target) as sheet:
        assert sheet.format == "JPEG"
        assert sheet.size == (160 * 4, 90 * 4)
        first, last = sheet.crop((0, 0, 160, 90)), sheet.crop((480, 270, 640, 360))
        assert first.tobytes() != last.tobytes()  # frames from across the clip


class IgnoresVariant(httpx.AsyncBaseTransport):
    """The embedded service reached through a gateway that drops `variant` from content
    requests, so every variant is answered with the MP4."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            kept = [(k, v) for k, v in request.url.params.multi_items() if k != "variant"]
            request.url = request.url.copy_with(query=urlencode(kept).encode())
        return await self.inner.handle_async_request(request)


async def test_a_server_that_ignores_variant_gets_images_derived_and_marked(tmp_path: Path) -> None:
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)
    transport = IgnoresVariant(embedded_transport(config))
    settings = ClientSettings(base_url="http://gateway.test/v1")
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    async with VideosClient.from_settings(settings, transport=transport) as client:
        await submit_variants(requests(2), ledger=ledger, client=client, table_hash="h", run_id="r")
        while ledger.in_flight():
            await poll_in_flight(ledger, client)
            await asyncio.sleep(0.05)
        report = await download_media(ledger, client, tmp_path / "media")
        assert Deviation.MEDIA_VARIANT_IGNORED in client.deviations.seen

    assert report.problems == []
    for attempt in ledger.latest().values():
        media = ledger.media(attempt.key, attempt.attempt)
        assert not media["video"].derived
        assert media["thumbnail"].derived and media["spritesheet"].derived
        for variant in ContentVariant:
            path = Path(media[variant.value].path)
            assert derived_media.holds_expected_media(path, variant), path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == media[variant.value].sha256
    frame = ledger.lineage_columns().to_pandas()
    assert frame["thumbnail_derived"].all() and not frame["video_derived"].any()


async def test_a_video_that_is_not_an_mp4_is_a_problem_not_a_file(tmp_path: Path) -> None:
    config = ServiceConfig(db_path=tmp_path / "service.db", queued_seconds=0.05, run_seconds=0.1)

    class ServesHtml(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/content"):
                return httpx.Response(200, content=b"<html>login page</html>")
            return await inner.handle_async_request(request)

    inner = embedded_transport(config)
    settings = ClientSettings(base_url="http://portal.test/v1")
    ledger = Ledger.for_path(tmp_path / "ledger.db")
    async with VideosClient.from_settings(settings, transport=ServesHtml()) as client:
        await submit_variants(requests(1), ledger=ledger, client=client, table_hash="h", run_id="r")
        while ledger.in_flight():
            await poll_in_flight(ledger, client)
            await asyncio.sleep(0.05)
        report = await download_media(ledger, client, tmp_path / "media")

    assert report.downloaded == []
    assert any("not video/mp4" in problem for problem in report.problems)
    (attempt,) = ledger.latest().values()
    assert ledger.media(attempt.key, attempt.attempt) == {}
    assert not any(p.is_file() for p in (tmp_path / "media").rglob("*"))
