"""The experiment report of a real run, opened in real headless Chromium."""

from __future__ import annotations

from pathlib import Path

from remix_pipeline.definitions.headless import HeadlessRunner
from tests.support.browser import Browser
from tests.support.projects import SAMPLE_ROWS, write_table

FAILING_ROW = "video_src_nowhere,ghost,Remix a video that does not exist,t,1"


def run_report(settings, instance) -> Path:
    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    assert summary.finished
    return Path(summary.lineage_path).parent / "report.html"


def test_report_renders_with_one_cell_per_variant(settings, instance, browser: Browser):
    browser.open(run_report(settings, instance).as_uri())

    cells = browser.evaluate(
        "Array.from(document.querySelectorAll('td.cell'))"
        ".map(c => [c.dataset.source, c.dataset.variant])"
    )

    assert browser.evaluate("document.title") == "Experiment t"
    assert sorted(map(tuple, cells)) == [
        ("video_src_forest", "noir"),
        ("video_src_harbor", "anime"),
        ("video_src_harbor", "noir"),
    ]


def test_every_thumbnail_in_the_report_loads(settings, instance, browser: Browser):
    browser.open(run_report(settings, instance).as_uri())

    widths = browser.evaluate(
        "Array.from(document.querySelectorAll('img.thumb')).map(i => i.naturalWidth)"
    )

    assert len(widths) == 4  # harbor/anime holds two replicates
    assert all(width > 0 for width in widths)


def test_report_still_loads_its_images_after_the_folder_moves(
    settings, instance, browser, tmp_path
):
    output = run_report(settings, instance).parent
    moved = output.rename(tmp_path / "moved-report")

    browser.open((moved / "report.html").as_uri())

    widths = browser.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert widths and all(width > 0 for width in widths)


def test_a_failed_variant_shows_its_error_in_the_page(project, settings, instance, browser):
    write_table(settings.table_path, [*SAMPLE_ROWS, FAILING_ROW])
    browser.open(run_report(settings, instance).as_uri())

    text = browser.evaluate(
        "document.querySelector('td.cell[data-variant=\"ghost\"] .error').textContent"
    )

    assert text == "not_found No video found with id 'video_src_nowhere'."


def test_a_hostile_prompt_is_shown_as_text_and_runs_nothing(project, settings, instance, browser):
    hostile = (
        "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">"
    )
    write_table(
        settings.table_path,
        [f'video_src_harbor,evil,"{hostile.replace(chr(34), chr(34) * 2)}",t,1'],
    )
    browser.open(run_report(settings, instance).as_uri())

    prompt = browser.evaluate("document.querySelector('td.cell .prompt').textContent")

    assert prompt == hostile
    assert browser.evaluate("document.title") == "Experiment t"
    assert browser.evaluate("document.scripts.length") == 0
