"""What a person sees on the lineage asset in the Dagster UI after `remix-pipeline run`,
read over the webserver's GraphQL API (the API the UI itself calls).

The repository's workspace.yaml and sample/ project are copied into a temporary folder
beside a two-row request table; `remix-pipeline run` materializes the sample experiment
there, then `dagster-webserver -w workspace.yaml` serves the same state home.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from remix_pipeline.lineage import LINEAGE_COLUMNS, TIME_COLUMNS
from tests.support.dagster_ui import run_sample_checkout, serving_ui

BIN = Path(sys.executable).parent
TABLE = """\
source_video_id,variant,prompt
video_src_harbor,storm,Turn the dawn harbor into a thunderstorm
video_src_forest,fog,Fill the forest with low morning fog
"""
LINEAGE_QUERY = """
query Lineage($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset {
      assetMaterializations(limit: 1) {
        runId
        metadataEntries {
          __typename
          label
          ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
          ... on TableColumnLineageMetadataEntry {
            lineage { columnName columnDeps { assetKey { path } columnName } }
          }
          ... on MarkdownMetadataEntry { mdStr }
          ... on JsonMetadataEntry { jsonString }
          ... on PathMetadataEntry { path }
          ... on IntMetadataEntry { intValue }
        }
      }
    }
  }
}
"""


@dataclass
class Shown:
    root: Path
    run_id: str
    entries: dict[str, dict[str, Any]]
    run_output: str

    @property
    def lineage(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "data/output/sample/lineage.parquet")

    def json(self, label: str) -> Any:
        return json.loads(self.entries[label]["jsonString"])


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shown]:
    root = tmp_path_factory.mktemp("checkout")
    env, ran = run_sample_checkout(root, TABLE)
    with serving_ui([str(BIN / "dagster-webserver"), "-w", "workspace.yaml"], root, env) as ui:
        asset = ui.graphql(LINEAGE_QUERY, {"key": {"path": ["sample", "lineage"]}})
    found = asset["assetOrError"]
    assert found["__typename"] == "Asset", found
    (latest,) = found["assetMaterializations"]
    entries = {entry["label"]: entry for entry in latest["metadataEntries"]}
    yield Shown(root=root, run_id=latest["runId"], entries=entries, run_output=ran.stdout)


def test_run_summary_in_a_log_names_every_video_and_the_lineage_table_whole(shown: Shown) -> None:
    lines = shown.run_output.splitlines()
    assert "…" not in shown.run_output
    for row in shown.lineage.itertuples():
        (line,) = [line for line in lines if row.video_id in line.split()]
        assert line.split()[:2] == [row.source_video_id, row.variant]
    (where,) = [line for line in lines if line.startswith("lineage table: ")]
    assert where.endswith("data/output/sample/lineage.parquet")


def test_lineage_shows_its_column_schema_with_every_lineage_column(shown: Shown) -> None:
    entry = shown.entries["dagster/column_schema"]
    assert entry["__typename"] == "TableSchemaMetadataEntry"
    columns = [c["name"] for c in entry["schema"]["columns"]]
    assert columns == list(LINEAGE_COLUMNS)
    types = {c["name"]: c["type"] for c in entry["schema"]["columns"]}
    assert {c: types[c] for c in TIME_COLUMNS} == dict.fromkeys(TIME_COLUMNS, "datetime64[ns, UTC]")


def test_lineage_shows_column_lineage_back_to_the_request_table(shown: Shown) -> None:
    entry = shown.entries["dagster/column_lineage"]
    assert entry["__typename"] == "TableColumnLineageMetadataEntry"
    deps = {
        row["columnName"]: {
            ("/".join(d["assetKey"]["path"]), d["columnName"]) for d in row["columnDeps"]
        }
        for row in entry["lineage"]
    }
    for column in ("source_video_id", "variant", "prompt"):
        assert ("sample/request_table", column) in deps[column], deps


def test_lineage_shows_each_variant_as_a_card_with_its_thumbnail_and_video(shown: Shown) -> None:
    entry = shown.entries["variant_matrix"]
    assert entry["__typename"] == "MarkdownMetadataEntry"
    text = entry["mdStr"]
    # Each source has its own label here, so the layout is cards: one block per source.
    for row in shown.lineage.itertuples():
        block = text.split(f"**{row.source_video_id}**", 1)[1].split("\n\n**", 1)[0]
        assert f"| {row.variant} |" in block
        assert f"![{row.video_id}](data:image/webp;base64," in block
        assert f"**completed** · {row.variant} · `{row.video_id[:10]}" in block


def test_lineage_shows_rows_by_status_and_the_row_count(shown: Shown) -> None:
    assert shown.entries["rows_by_status"]["__typename"] == "JsonMetadataEntry"
    assert shown.json("rows_by_status") == {"completed": 2}
    assert shown.entries["dagster/row_count"]["intValue"] == 2


def test_lineage_links_the_report_written_beside_the_table(shown: Shown) -> None:
    entry = shown.entries["report"]
    assert entry["__typename"] == "PathMetadataEntry"
    report = Path(entry["path"])
    assert report == shown.root / "data/output/sample/report.html"
    page = report.read_text()
    assert all(video_id in page for video_id in shown.lineage["video_id"])


def test_lineage_shows_the_run_manifest(shown: Shown) -> None:
    manifest = shown.json("manifest")
    table_sha256 = hashlib.sha256((shown.root / "data/requests.csv").read_bytes()).hexdigest()
    assert manifest["table"]["sha256"] == table_sha256
    assert manifest["dagster_run_id"] == shown.run_id
    assert manifest["rows"] == 2
    assert manifest["server"] == "embedded"
    assert Path(shown.entries["manifest_path"]["path"]).is_file()
