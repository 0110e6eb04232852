"""The experiment report page and the variant matrix, from lineage frames and a real run."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from remix_pipeline.previews import variant_matrix_markdown
from remix_pipeline.report import (
    LAYOUT_CARDS,
    LAYOUT_MATRIX,
    layout_for,
    render_report,
    variant_matrix,
    write_report,
)
from tests.support.builders import frame_of, lineage_row


def sample_frame(media: Path) -> pd.DataFrame:
    return frame_of(
        lineage_row(
            key="k1",
            row_number=1,
            source_video_id="video_a",
            variant="noir",
            prompt="Noir",
            video_id="video_1",
            thumbnail_path=str(media / "k1" / "thumbnail.webp"),
            video_path=str(media / "k1" / "video.mp4"),
            estimated_cost_usd=0.4,
        ),
        lineage_row(
            key="k2",
            row_number=2,
            source_video_id="video_a",
            variant="anime",
            prompt="Anime",
            video_id="video_2",
            replicate=1,
        ),
        lineage_row(
            key="k3",
            row_number=2,
            source_video_id="video_a",
            variant="anime",
            prompt="Anime",
            video_id="video_3",
            replicate=2,
        ),
        lineage_row(
            key="k4",
            row_number=3,
            source_video_id="video_b",
            variant="noir",
            prompt="Noir",
            state="failed",
            status="failed",
            video_id="video_4",
            error_code="moderation_blocked",
            error_message="Refused <by> policy",
        ),
    )


class Cells(HTMLParser):
    """Collects the report's variant cells and image sources, as a browser's DOM would."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str | None]] = []
        self.images: list[str | None] = []
        self.links: list[str | None] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td" and found.get("class") == "cell":
            self.cells.append(found)
        elif tag == "img":
            self.images.append(found.get("src"))
        elif tag == "a":
            self.links.append(found.get("href"))
        elif tag == "script":
            self.scripts += 1


def parse(page: str) -> Cells:
    cells = Cells()
    cells.feed(page)
    return cells


def test_matrix_puts_replicates_of_one_variant_in_one_cell(tmp_path):
    matrix = variant_matrix(sample_frame(tmp_path))

    assert matrix.sources == ["video_a", "video_b"]
    assert matrix.variants == ["noir", "anime"]
    assert [r["video_id"] for r in matrix.cells[("video_a", "anime")]] == ["video_2", "video_3"]
    assert ("video_b", "anime") not in matrix.cells


def test_matrix_shows_only_the_latest_attempt_and_counts_the_attempts(tmp_path):
    frame = frame_of(
        lineage_row(
            key="k",
            row_number=1,
            source_video_id="s",
            variant="v",
            attempt=1,
            state="failed",
            status="failed",
            video_id="video_old",
        ),
        lineage_row(
            key="k", row_number=1, source_video_id="s", variant="v", attempt=2, video_id="video_new"
        ),
    )

    (cell,) = variant_matrix(frame).cells[("s", "v")]

    assert cell["video_id"] == "video_new"
    assert cell["attempts"] == 2


def test_markdown_matrix_has_sources_as_rows_and_variants_as_columns(tmp_path):
    text = variant_matrix_markdown(sample_frame(tmp_path))
    lines = text.splitlines()

    assert lines[0] == "| source | noir | anime |"
    assert lines[2].startswith("| video_a | **completed** · noir · `video_1` | ")
    assert "**completed** · anime · r1 · `video_2` <br>**completed** · anime · r2" in lines[2]
    assert lines[3] == "| video_b | **failed** · noir · `video_4` · `moderation_blocked` | · |"


def test_report_has_one_cell_per_variant_and_relative_media_links(tmp_path):
    page = render_report(sample_frame(tmp_path / "media"), tmp_path, title="Experiment t")
    found = parse(page)

    assert [(c["data-source"], c["data-variant"]) for c in found.cells] == [
        ("video_a", "noir"),
        ("video_a", "anime"),
        ("video_b", "noir"),
    ]
    assert found.images == ["media/k1/thumbnail.webp"]
    assert "media/k1/video.mp4" in found.links
    assert found.scripts == 0


def test_report_shows_a_failed_cells_error_code_and_message(tmp_path):
    page = render_report(sample_frame(tmp_path), tmp_path, title="t")

    assert "<code>moderation_blocked</code> Refused &lt;by&gt; policy" in page


def test_a_prompt_with_a_script_tag_renders_as_text(tmp_path):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    frame = frame_of(
        lineage_row(key="k", row_number=1, source_video_id="s", variant='v"><b>', prompt=hostile)
    )

    page = render_report(frame, tmp_path, title="<i>t</i>")
    found = parse(page)

    assert found.scripts == 0
    assert found.images == []
    assert html.escape(hostile) in page
    assert found.cells[0]["data-variant"] == 'v"><b>'
    assert "<i>t</i>" not in page


def test_write_report_replaces_the_page_in_place(tmp_path):
    first = write_report(sample_frame(tmp_path), str(tmp_path), title="one")
    second = write_report(sample_frame(tmp_path), str(tmp_path), title="two")

    assert first == second == str(tmp_path / "report.html")
    assert "<title>two</title>" in Path(second).read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def labelled(source: str, label: str, number: int) -> dict[str, object]:
    return lineage_row(
        key=f"{source}.{label}",
        row_number=number,
        source_video_id=source,
        variant=label,
        prompt=label,
        video_id=f"video_{number}",
    )


# The sample table's shape: every source has labels of its own.
SAMPLE_LABELS = {
    "video_src_harbor": ["storm", "golden", "winter"],
    "video_src_forest": ["autumn", "night", "fog"],
    "video_src_city": ["daylight", "retro", "snowfall"],
    "video_src_dunes": ["sandstorm", "oasis"],
}


def frame_with(labels: dict[str, list[str]]) -> pd.DataFrame:
    rows, number = [], 0
    for source, names in labels.items():
        for label in names:
            number += 1
            rows.append(labelled(source, label, number))
    return frame_of(*rows)


def test_the_sample_tables_own_labels_per_source_are_laid_out_as_cards():
    assert layout_for(variant_matrix(frame_with(SAMPLE_LABELS))) == LAYOUT_CARDS


def test_labels_shared_across_sources_are_laid_out_as_a_matrix():
    shared = {source: ["noir", "anime", "sepia"] for source in ("video_a", "video_b", "video_c")}
    assert layout_for(variant_matrix(frame_with(shared))) == LAYOUT_MATRIX


def test_the_matrix_needs_at_least_half_the_labels_shared():
    half = {"video_a": ["noir", "anime", "x"], "video_b": ["noir", "anime", "y"]}  # 2 of 4
    less = {"video_a": ["noir", "x", "y"], "video_b": ["noir", "z"]}  # 1 of 4

    assert layout_for(variant_matrix(frame_with(half))) == LAYOUT_MATRIX
    assert layout_for(variant_matrix(frame_with(less))) == LAYOUT_CARDS


def test_one_source_is_always_cards():
    assert layout_for(variant_matrix(frame_with({"video_a": ["noir"]}))) == LAYOUT_CARDS


def test_the_report_draws_cards_with_only_each_sources_own_variants(tmp_path):
    page = render_report(frame_with(SAMPLE_LABELS), tmp_path, title="t")
    found = parse(page)

    assert "data-layout='cards'" in page
    assert '<td class="empty">' not in page
    assert len(found.cells) == 11
    placed = [(c["data-source"], c["data-variant"]) for c in found.cells]
    assert ("video_src_dunes", "oasis") in placed


def test_the_report_draws_a_matrix_of_shared_labels(tmp_path):
    page = render_report(frame_with({"a": ["noir", "anime"], "b": ["noir"]}), tmp_path, title="t")

    assert "data-layout='matrix'" in page
    assert page.count('<td class="empty">') == 1
