"""create, edit and extend through VideosClient against the real embedded service, in-process:
by id (JSON) and by upload (multipart), and a lost answer to each is an OutcomeUnknownError."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from remix_pipeline.client import InvalidArgumentError, OutcomeUnknownError
from remix_pipeline.service import FaultConfig
from tests.support.embedded import Embedded

SOURCE = "video_src_harbor"

MakeEmbedded = Callable[..., Embedded]


def kinds(service: Embedded) -> list[str]:
    with sqlite3.connect(service.config.db_path) as db:
        return [
            row[0]
            for row in db.execute(
                "SELECT kind FROM videos WHERE kind != 'catalogue' ORDER BY created_at, rowid"
            )
        ]


async def footage(service: Embedded, target: Path) -> Path:
    """A real MP4 to upload: the seeded source's own video."""
    async with service.client() as client:
        await client.download(SOURCE, "video", target)
    return target


async def test_create_with_parameters_and_an_image_reference(
    embedded: MakeEmbedded, tmp_path: Path
) -> None:
    service = embedded()
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n not really decoded")
    async with service.client() as client:
        plain = await client.create("a lighthouse", model="sora-2", seconds="8", size="1280x720")
        from_file = await client.create("from a file", input_reference=image)
        from_url = await client.create("from a url", input_reference="https://example.com/a.jpg")
    assert (plain.seconds, plain.size, plain.remixed_from_video_id) == ("8", "1280x720", None)
    assert from_file.prompt == "from a file" and from_url.prompt == "from a url"
    assert kinds(service) == ["create", "create", "create"]


async def test_edit_and_extend_a_stored_video_by_id(embedded: MakeEmbedded) -> None:
    service = embedded(queued_seconds=0, run_seconds=0)
    async with service.client() as client:
        edited = await client.edit(SOURCE, "in sepia")
        extended = await client.extend(SOURCE, "the tide comes in", "8")
        source = await client.retrieve(SOURCE)
    assert edited.remixed_from_video_id == SOURCE
    assert extended.remixed_from_video_id == SOURCE
    assert int(extended.seconds) == int(source.seconds) + 8
    assert kinds(service) == ["edit", "extension"]


async def test_edit_and_extend_uploaded_footage(embedded: MakeEmbedded, tmp_path: Path) -> None:
    service = embedded(queued_seconds=0, run_seconds=0)
    clip = await footage(service, tmp_path / "clip.mp4")
    async with service.client() as client:
        edited = await client.edit(clip, "make it rain", model="sora-2")
        extended = await client.extend(clip, "keep going", "4")
    assert (edited.remixed_from_video_id, extended.remixed_from_video_id) == (None, None)
    assert int(extended.seconds) == int(edited.seconds) + 4
    assert kinds(service) == ["edit", "extension"]


async def test_model_with_a_stored_video_is_refused_before_anything_is_sent(
    embedded: MakeEmbedded,
) -> None:
    service = embedded()
    async with service.client() as client:
        with pytest.raises(InvalidArgumentError, match="only with an uploaded video"):
            await client.edit(SOURCE, "x", model="sora-2-pro")
    assert kinds(service) == []


@pytest.mark.parametrize("operation", ["create", "edit", "extend"])
async def test_a_lost_answer_to_a_paid_post_is_an_unknown_outcome(
    embedded: MakeEmbedded, operation: str
) -> None:
    service = embedded(faults=FaultConfig(drop_rate=1.0, seed=1))
    async with service.client() as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            if operation == "create":
                await client.create("lost")
            elif operation == "edit":
                await client.edit(SOURCE, "lost")
            else:
                await client.extend(SOURCE, "lost", "4")
    expected_source = None if operation == "create" else SOURCE
    assert (caught.value.source_video_id, caught.value.prompt) == (expected_source, "lost")
    assert len(kinds(service)) == 1  # created once, never repeated
