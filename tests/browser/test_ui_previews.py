"""The results seen in the Dagster UI itself, in real headless Chromium: after the sample run,
the lineage asset's variant matrix and a video partition's preview show their inline images.

The repository's workspace.yaml, sample/ project and sample request table are copied into a
temporary folder; `remix-pipeline run` materializes the sample there, then
`dagster-webserver -w workspace.yaml` serves the same state home while the pages are opened.
A markdown entry opens in a dialog from its "[Show Markdown]" link, as a person would.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest

from tests.support.browser import Browser
from tests.support.dagster_ui import (
    REPO,
    DagsterDev,
    run_sample_checkout,
    serving_ui,
)

BIN = Path(sys.executable).parent

SHOW_MARKDOWN = """(() => {
  const row = Array.from(document.querySelectorAll('tr')).find(
    r => r.firstElementChild && r.firstElementChild.textContent.trim() === LABEL);
  const link = row && Array.from(row.querySelectorAll('a')).find(
    a => a.textContent.trim() === '[Show Markdown]');
  if (!link) return false;
  link.click();
  return true;
})()"""
DIALOG_IMAGES = """Array.from(document.querySelectorAll('[role=dialog] img'))
  .filter(i => i.src.startsWith('data:image/webp;base64,'))
  .map(i => ({alt: i.alt, width: i.naturalWidth, done: i.complete}))"""


@dataclass
class SampleUI:
    ui: DagsterDev
    lineage: pd.DataFrame


@pytest.fixture(scope="module")
def sample_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleUI]:
    root = tmp_path_factory.mktemp("checkout")
    env, _ = run_sample_checkout(root, (REPO / "data" / "requests.csv").read_text())
    lineage = pd.read_parquet(root / "data/output/sample/lineage.parquet")
    with serving_ui([str(BIN / "dagster-webserver"), "-w", "workspace.yaml"], root, env) as ui:
        yield SampleUI(ui=ui, lineage=lineage)


def dialog_images(browser: Browser, url: str, label: str) -> list[dict[str, object]]:
    """Open `url`, open the markdown entry `label` and wait for its images to load."""
    browser.open(url)
    deadline = time.monotonic() + 60
    while not browser.evaluate(SHOW_MARKDOWN.replace("LABEL", json.dumps(label))):
        assert time.monotonic() < deadline, f"no markdown entry {label!r} on {url}"
        time.sleep(0.25)
    while True:
        images = browser.evaluate(DIALOG_IMAGES)
        if images and all(i["done"] for i in images):
            return images
        assert time.monotonic() < deadline, f"the images of {label!r} did not load: {images}"
        time.sleep(0.25)


def test_the_lineage_asset_shows_every_variants_thumbnail(sample_ui: SampleUI, browser: Browser):
    images = dialog_images(browser, f"{sample_ui.ui.url}/assets/sample/lineage", "variant_matrix")

    assert sorted(i["alt"] for i in images) == sorted(sample_ui.lineage["video_id"])
    assert all(i["width"] > 0 for i in images)


def test_a_video_partition_shows_its_thumbnail_and_filmstrip(sample_ui: SampleUI, browser):
    row = sample_ui.lineage.iloc[0]
    url = f"{sample_ui.ui.url}/assets/sample/videos?view=partitions&partition={quote(row.key)}"

    images = dialog_images(browser, url, "preview")

    assert [i["alt"] for i in images] == [
        f"thumbnail of {row.video_id}",
        f"filmstrip of {row.video_id}",
    ]
    assert all(i["width"] > 0 for i in images)
