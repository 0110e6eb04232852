"""Markdown with inline images for the Dagster UI: the variant matrix and a partition's preview,
from the embedded service's own renders, and their size at 1,000 variants."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from remix_pipeline import previews
from remix_pipeline.contract import ContentVariant
from remix_pipeline.ledger import Attempt, AttemptState, MediaRecord
from remix_pipeline.previews import (
    DERIVED_CAPTION,
    MATRIX_MAX_BYTES,
    MATRIX_THUMB_MAX_BYTES,
    PREVIEW_MAX_BYTES,
    attempt_preview_markdown,
    preview_observations,
    variant_matrix_markdown,
)
from remix_pipeline.service.media import MediaSpec, render_media
from tests.support.builders import frame_of, lineage_row

DATA_URI = re.compile(r"data:image/webp;base64,([A-Za-z0-9+/=]+)")
LONG_ID = "video_" + "9c599c4340f217e649b3b1b581693553" * 4


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[ContentVariant, Path]:
    spec = MediaSpec(
        video_id="video_preview", prompt="dawn", motion_seed=3, width=1280, height=720, seconds=2
    )
    return render_media(spec, tmp_path_factory.mktemp("render"))


def images_in(text: str) -> list[bytes]:
    return [base64.b64decode(found) for found in DATA_URI.findall(text)]


def attempt(key: str = "k", **values: object) -> Attempt:
    base = Attempt(
        key=key,
        attempt=1,
        state=AttemptState.COMPLETED,
        source_video_id="video_src",
        prompt="p",
        prompt_sha256="0" * 64,
        variant="storm",
        experiment="t",
        replicate=1,
        table_hash="0" * 64,
        row_number=1,
        run_id=None,
        intent_at=0.0,
        sent_at=None,
        submitted_at=None,
        finished_at=None,
        video_id=LONG_ID,
        video={"id": LONG_ID, "status": "completed"},
        error_code=None,
        error_message=None,
        adopted=False,
        reported=False,
        server="embedded",
        poll_violations=0,
        violation=None,
        violation_since=None,
    )
    return replace(base, **values)


def records(media: dict[ContentVariant, Path], key: str = "k", derived: bool = False):
    return {
        variant.value: MediaRecord(
            key=key,
            attempt=1,
            variant=variant.value,
            path=str(media[variant]),
            sha256="0" * 64,
            size_bytes=1,
            derived=derived and variant is ContentVariant.SPRITESHEET,
        )
        for variant in (ContentVariant.THUMBNAIL, ContentVariant.SPRITESHEET)
    }


def test_a_matrix_cell_shows_a_small_thumbnail_with_the_full_id_as_its_alt_text(media):
    frame = frame_of(
        lineage_row(
            key="k1",
            row_number=1,
            source_video_id="video_a",
            variant="noir",
            video_id=LONG_ID,
            thumbnail_path=str(media[ContentVariant.THUMBNAIL]),
        )
    )

    text = variant_matrix_markdown(frame)

    (image,) = images_in(text)
    with Image.open(io.BytesIO(image)) as thumbnail:
        assert thumbnail.format == "WEBP" and thumbnail.width == 160
    assert len(image) <= MATRIX_THUMB_MAX_BYTES
    assert f"![{LONG_ID}](data:image/webp;base64," in text
    assert f'"{LONG_ID}")' in text
    assert f"`{previews.short_id(LONG_ID)}`" in text


def test_a_cell_without_an_image_shows_the_whole_id():
    frame = frame_of(
        lineage_row(key="k1", row_number=1, source_video_id="a", variant="v", video_id=LONG_ID)
    )
    assert f"`{LONG_ID}`" in variant_matrix_markdown(frame)


def test_a_derived_thumbnail_is_marked_in_the_matrix(media):
    frame = frame_of(
        lineage_row(
            key="k1",
            row_number=1,
            source_video_id="a",
            variant="v",
            video_id="video_1",
            thumbnail_path=str(media[ContentVariant.THUMBNAIL]),
            thumbnail_derived=True,
        )
    )
    assert DERIVED_CAPTION in variant_matrix_markdown(frame)


def test_a_partition_preview_shows_the_thumbnail_and_the_filmstrip(media):
    text = attempt_preview_markdown(attempt(), records(media, derived=True))

    thumbnail, filmstrip = images_in(text)
    with Image.open(io.BytesIO(filmstrip)) as strip:
        assert strip.width == previews.FILMSTRIP_WIDTH
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.width <= previews.PREVIEW_THUMB_WIDTH
    assert f"![filmstrip of {LONG_ID}]" in text
    assert f"filmstrip · _{DERIVED_CAPTION}_" in text
    assert f"thumbnail · _{DERIVED_CAPTION}_" not in text


def test_a_failed_variant_shows_its_error_code_and_message_in_the_preview():
    failed = attempt(
        state=AttemptState.FAILED,
        video={"status": "failed"},
        error_code="moderation_blocked",
        error_message="Refused | by policy",
    )
    text = attempt_preview_markdown(failed)
    assert "**failed**" in text
    assert "`moderation_blocked`: Refused \\| by policy" in text
    assert "data:image" not in text


def test_a_completed_variant_without_media_says_where_they_will_appear():
    assert "next `media` run" in attempt_preview_markdown(attempt())


def test_an_unreadable_image_leaves_the_text(tmp_path):
    (tmp_path / "thumbnail.webp").write_bytes(b"not an image")
    assert previews.data_uri(tmp_path / "thumbnail.webp", 160, 5_000) is None
    assert previews.data_uri(tmp_path / "missing.webp", 160, 5_000) is None


def webp_of(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 90, 160)).save(buffer, "WEBP")
    return buffer.getvalue()


def test_a_webp_within_the_bounds_is_shown_as_the_server_sent_it(tmp_path):
    sent = webp_of((160, 90))
    (tmp_path / "thumbnail.webp").write_bytes(sent)

    uri = previews.data_uri(tmp_path / "thumbnail.webp", 320, 12_000)

    assert uri is not None and images_in(uri) == [sent]


def test_a_webp_wider_than_the_bound_is_scaled_down(tmp_path):
    (tmp_path / "thumbnail.webp").write_bytes(webp_of((1280, 720)))

    uri = previews.data_uri(tmp_path / "thumbnail.webp", 320, 12_000)

    assert uri is not None
    with Image.open(io.BytesIO(images_in(uri)[0])) as shown:
        assert shown.size == (320, 180)


class FakeLedger:
    def __init__(self, media: dict[ContentVariant, Path]) -> None:
        self.files = media

    def get(self, key: str, number: int) -> Attempt:
        return attempt(key)

    def media(self, key: str, number: int) -> dict[str, MediaRecord]:
        return records(self.files, key)


def test_one_observation_per_variant_not_per_file(media):
    import dagster as dg

    downloaded = [*records(media, "a").values(), *records(media, "b").values()]

    found = preview_observations(dg.AssetKey("videos"), FakeLedger(media), downloaded)

    assert [o.partition for o in found] == ["a", "b"]
    assert all(len(images_in(o.metadata["preview"].value)) == 2 for o in found)
    assert found[0].metadata["spritesheet_derived"].value is False


def test_at_1000_variants_the_matrix_and_each_preview_stay_within_their_bounds(media, tmp_path):
    thumbnail = str(media[ContentVariant.THUMBNAIL])
    rows = [
        lineage_row(
            key=f"k{n:04d}",
            row_number=n,
            source_video_id=f"video_src_{n % 40}",
            variant=f"label_{n % 25}",
            video_id=f"{LONG_ID}{n:04d}",
            thumbnail_path=thumbnail,
            submitted_at=1_700_000_000 + n,
        )
        for n in range(1, 1001)
    ]
    frame = frame_of(*rows)

    text = variant_matrix_markdown(frame, report_path="data/output/big/report.html")

    assert len(text.encode()) <= MATRIX_MAX_BYTES
    assert len(images_in(text)) == previews.MATRIX_MAX_CELLS
    assert f"{LONG_ID}1000" in text and f"{LONG_ID}0952" not in text  # the most recent
    assert "952 of 1000 variants left out" in text
    assert "`data/output/big/report.html`" in text
    files = records(media)
    sizes = {
        len(attempt_preview_markdown(attempt(f"k{n}", video_id=f"{LONG_ID}{n}"), files).encode())
        for n in range(1000)
    }
    assert max(sizes) <= PREVIEW_MAX_BYTES
    print(f"matrix {len(text.encode())} B; preview {max(sizes)} B")
