"""Media, lineage, report and manifest written to an fsspec URL instead of a local folder.

`memory://` is fsspec's in-process store, the stand-in for an object store (the headless
runner executes its runs in this process, so the test sees what they uploaded); `file://`
is the URL form of a local folder, which must still get atomic renames and working links.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.lineage import read_lineage
from remix_pipeline.manifest import read_manifest

MEDIA = ("video", "thumbnail", "spritesheet")
LINK = re.compile(r'(?:href|src)="([^"]+)"')


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"memory://remix-{uuid.uuid4().hex[:12]}/out"
    yield root
    store = UPath(root)
    if store.exists():
        store.fs.rm(store.path, recursive=True)


def run(project: Path, instance: dg.DagsterInstance, output_dir: str) -> pd.DataFrame:
    settings = ExperimentSettings(
        name="t", table=str(project / "data" / "requests.csv"), output_dir=output_dir
    )
    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    assert summary.finished
    assert summary.lineage_path == f"{output_dir}/lineage.parquet"
    return read_lineage(summary.lineage_path)


def sha256_of(location: str) -> str:
    return hashlib.sha256(UPath(location).read_bytes()).hexdigest()


def test_memory_url_receives_media_whose_sha256_match_the_lineage_rows(
    project, instance, memory_root
):
    frame = run(project, instance, memory_root)

    assert len(frame) == 4
    assert set(frame["state"]) == {"completed"}
    for row in frame.to_dict("records"):
        for variant in MEDIA:
            location = row[f"{variant}_path"]
            assert location.startswith(f"{memory_root}/media/{row['key']}/"), location
            assert sha256_of(location) == row[f"{variant}_sha256"]


def test_memory_url_output_leaves_nothing_in_the_local_default_folder(
    project, instance, memory_root
):
    run(project, instance, memory_root)

    assert not (project / "data" / "output").exists()


def test_memory_url_receives_the_report_and_manifest_beside_the_lineage(
    project, instance, memory_root
):
    frame = run(project, instance, memory_root)

    manifest = read_manifest(f"{memory_root}/manifest.json")
    assert manifest["rows"] == len(frame)
    assert manifest["configuration"]["output_dir"] == memory_root
    page = UPath(f"{memory_root}/report.html").read_text()
    links = set(LINK.findall(page))
    assert len(links) == 2 * len(frame)  # each cell links its thumbnail and its MP4
    for link in links:
        assert not link.startswith(("memory:", "/")), link
        assert UPath(f"{memory_root}/{link}").exists(), link


def test_file_url_output_writes_local_files_whose_sha256_match_the_lineage_rows(
    project, instance, tmp_path
):
    folder = tmp_path / "shared" / "out"

    frame = run(project, instance, folder.as_uri())

    assert (folder / "lineage.parquet").is_file()
    assert (folder / "manifest.json").is_file()
    for row in frame.to_dict("records"):
        for variant in MEDIA:
            path = Path(row[f"{variant}_path"])
            assert path.is_relative_to(folder / "media"), path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row[f"{variant}_sha256"]


def test_file_url_report_links_are_relative_and_resolve_to_the_media(project, instance, tmp_path):
    folder = tmp_path / "shared" / "out"

    frame = run(project, instance, folder.as_uri())

    links = set(LINK.findall((folder / "report.html").read_text()))
    assert len(links) == 2 * len(frame)
    for link in links:
        assert link.startswith("media/"), link
        assert (folder / link).is_file(), link
