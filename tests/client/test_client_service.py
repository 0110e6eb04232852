"""VideosClient end to end against the real embedded service, in-process, with its faults."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from remix_pipeline.client import (
    AuthenticationError,
    BadRequestError,
    InvalidVideoIdError,
    NotFoundError,
    OutcomeUnknownError,
    VideosAPIError,
    VideosClient,
)
from remix_pipeline.contract import ContentVariant, Video, VideoStatus
from remix_pipeline.service import FaultConfig
from tests.support.builders import HOSTILE_IDS
from tests.support.embedded import Embedded
from tests.support.fakes import MARKER_KEY

SOURCE = "video_src_harbor"

MakeEmbedded = Callable[..., Embedded]


async def test_remix_then_retrieve_shows_the_job_and_its_source(embedded: MakeEmbedded) -> None:
    service = embedded()
    async with service.client() as client:
        job = await client.remix(SOURCE, "the harbor at night")
        again = await client.retrieve(job.id)
    assert (again.id, again.remixed_from_video_id, again.prompt) == (
        job.id,
        SOURCE,
        "the harbor at night",
    )
    assert again.status is VideoStatus.QUEUED


async def test_every_variant_downloads_complete_with_the_served_sha256(
    embedded: MakeEmbedded, tmp_path: Path
) -> None:
    service = embedded(queued_seconds=0, run_seconds=0)
    async with (
        service.client() as client,
        httpx.AsyncClient(transport=service.transport, base_url="http://embedded/v1") as raw,
    ):
        job = await client.remix(SOURCE, "the harbor in fog")
        for variant in ContentVariant:
            target = tmp_path / "media" / variant.file_name
            result = await client.download(job.id, variant, target)
            served = (await raw.get(f"/videos/{job.id}/content?variant={variant.value}")).content
            assert result.sha256 == hashlib.sha256(served).hexdigest()
            assert hashlib.sha256(target.read_bytes()).hexdigest() == result.sha256
            assert (result.size_bytes, result.media_type) == (len(served), variant.media_type)
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == sorted(
        v.file_name for v in ContentVariant
    )


async def test_download_of_an_unfinished_video_is_a_typed_error_and_writes_nothing(
    embedded: MakeEmbedded, tmp_path: Path
) -> None:
    service = embedded()
    async with service.client() as client:
        job = await client.remix(SOURCE, "still queued")
        with pytest.raises(BadRequestError, match="not ready"):
            await client.download(job.id, "video", tmp_path / "out" / "video.mp4")
    assert not (tmp_path / "out").exists()


async def test_unknown_video_is_not_found(embedded: MakeEmbedded) -> None:
    async with embedded().client() as client:
        with pytest.raises(NotFoundError) as caught:
            await client.retrieve("video_does_not_exist")
    assert caught.value.request_id is not None


async def test_hostile_ids_never_reach_the_service(embedded: MakeEmbedded) -> None:
    service = embedded()
    async with service.client() as client:
        for hostile in HOSTILE_IDS:
            for call in (
                client.retrieve(hostile),
                client.remix(hostile, "p"),
                client.delete(hostile),
                client.download(hostile, "video", Path("/never")),
            ):
                with pytest.raises(InvalidVideoIdError):
                    await call
    operations = (await service.stats())["operations"]
    assert set(operations) == {"stats"}


async def test_list_iterates_every_job_across_pages(embedded: MakeEmbedded) -> None:
    service = embedded()
    async with service.client(list_page_size=7) as client:
        made = await asyncio.gather(*(client.remix(SOURCE, f"variant {n}") for n in range(30)))
        listed = [video async for video in client.list(limit=7)]
    assert {v.id for v in made} <= {v.id for v in listed}
    assert len(listed) == len({v.id for v in listed})
    assert client.stats.requests["list"] >= 5


async def test_faults_end_every_call_in_success_or_a_typed_error_without_duplicate_jobs(
    embedded: MakeEmbedded,
) -> None:
    faults = FaultConfig(seed=11, error_rate=0.2, drop_rate=0.25, latency_ms=2)
    service = embedded(faults=faults)
    calls = 60
    async with service.client(max_attempts=10) as client:
        outcomes = await asyncio.gather(
            *(client.remix(SOURCE, f"storm variant {n}") for n in range(calls)),
            return_exceptions=True,
        )
        made = [o for o in outcomes if isinstance(o, Video)]
        rereads = await asyncio.gather(*(client.retrieve(v.id) for v in made))
    unknown = [o for o in outcomes if isinstance(o, OutcomeUnknownError)]
    assert all(isinstance(o, Video | VideosAPIError) for o in outcomes)
    assert made and unknown
    assert [v.id for v in rereads] == [v.id for v in made]

    stats = await service.stats()
    jobs = [v for v in await service.all_videos() if v.remixed_from_video_id == SOURCE]
    # Each call reached the service exactly once: nothing that could create a job was repeated.
    assert stats["operations"]["remix"] == calls == client.stats.requests["remix"]
    # Jobs exist for exactly the answered calls plus the calls whose answer was dropped.
    assert len(jobs) == len(made) + stats["dropped"].get("remix", 0)
    assert {v.id for v in made} <= {v.id for v in jobs}
    assert len({v.prompt for v in jobs}) == len(jobs)
    assert {u.prompt for u in unknown} >= {v.prompt for v in jobs} - {v.prompt for v in made}


async def test_a_429_storm_is_ridden_out_and_creates_each_job_once(
    embedded: MakeEmbedded,
) -> None:
    service = embedded(faults=FaultConfig(requests_per_minute=10, rate_window_seconds=0.5))
    async with service.client(max_attempts=30, max_retry_seconds=60) as client:
        made = await asyncio.gather(*(client.remix(SOURCE, f"busy {n}") for n in range(40)))
    jobs = [v for v in await service.all_videos() if v.remixed_from_video_id == SOURCE]
    assert client.stats.rate_limited > 0
    assert sorted(v.id for v in jobs) == sorted(v.id for v in made)


async def test_paced_burst_of_five_times_the_limit_never_surfaces_a_429(
    embedded: MakeEmbedded,
) -> None:
    limit, window = 20, 0.6
    service = embedded(faults=FaultConfig(requests_per_minute=limit, rate_window_seconds=window))
    async with service.client(requests_per_minute=limit, rate_window_seconds=window) as client:
        outcomes = await asyncio.gather(
            *(client.remix(SOURCE, f"burst {n}") for n in range(5 * limit)),
            return_exceptions=True,
        )
    assert all(isinstance(o, Video) for o in outcomes)
    statuses = (await service.stats())["by_operation"]["remix"]
    assert statuses == {"200": 5 * limit}


async def test_key_reaches_the_service_and_nothing_else(
    embedded: MakeEmbedded, marker_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = embedded(api_key=marker_key)
    async with service.client() as client:
        job = await client.remix(SOURCE, "with a key")
        texts = [repr(client), repr(job)]
        try:
            await client.retrieve("video_missing")
        except NotFoundError as error:
            texts.append(str(error))
    assert all(marker_key not in text for text in [*texts, caplog.text])


async def test_wrong_key_is_an_authentication_error_that_hides_the_key(
    embedded: MakeEmbedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-" + MARKER_KEY)
    service = embedded(api_key="sk-the-right-one")
    async with service.client() as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.retrieve(SOURCE)
    assert MARKER_KEY not in str(caught.value)
    assert client.stats.requests["retrieve"] == 1


async def test_default_client_uses_the_embedded_service_config_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remix_pipeline.client import ClientSettings
    from remix_pipeline.service import ServiceConfig

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = ServiceConfig(db_path=tmp_path / "own.db", api_key="sk-embedded-only")
    async with VideosClient.from_settings(ClientSettings(), embedded=config) as client:
        source = await client.retrieve(SOURCE)
    assert client.base_url == "http://embedded/v1"
    assert source.status is VideoStatus.COMPLETED
    assert (tmp_path / "own.db").exists()


async def test_with_nothing_configured_the_client_uses_the_projects_embedded_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remix_pipeline.client import ClientSettings

    monkeypatch.setenv("REMIX_PIPELINE_HOME", str(tmp_path / "home"))
    async with VideosClient.from_settings(ClientSettings()) as client:
        job = await client.remix(SOURCE, "default everything")
    assert client.base_url == "http://embedded/v1"
    assert job.remixed_from_video_id == SOURCE
    assert any((tmp_path / "home").iterdir())
