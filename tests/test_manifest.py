"""The reproducibility manifest, alone and as written by the lineage asset of a real run."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.manifest import build_manifest, read_manifest, write_manifest_atomically
from remix_pipeline.request_table import read_request_table
from remix_pipeline.version import __version__


def test_manifest_names_the_server_without_credentials_and_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://user:hunter2@videos.example.test/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    settings = ExperimentSettings(name="t", table=str(tmp_path / "t.csv"))

    manifest = build_manifest(settings, pd.DataFrame(), table_hash="abc", run_id=None)
    text = json.dumps(manifest)

    assert manifest["server"] == "https://videos.example.test/v1"
    assert "hunter2" not in text
    assert "sk-secret-value" not in text
    assert manifest["configuration"]["api_key_env"] == "OPENAI_API_KEY"


def test_manifest_records_table_hash_version_models_and_configuration(tmp_path):
    settings = ExperimentSettings(name="t", table=str(tmp_path / "t.csv"), max_cost_usd=5)
    frame = pd.DataFrame({"model": ["sora-2", None, "sora-2-pro", "sora-2"], "table_hash": "h"})

    manifest = build_manifest(settings, frame, table_hash="h", run_id="r1", created_at=1.0)

    assert manifest["table"]["sha256"] == "h"
    assert manifest["project_version"] == __version__
    assert manifest["models"] == ["sora-2", "sora-2-pro"]
    assert manifest["dagster_run_id"] == "r1"
    assert manifest["configuration"] == json.loads(settings.model_dump_json())


def test_manifest_is_written_atomically_and_reads_back(tmp_path):
    path = write_manifest_atomically({"a": 1}, str(tmp_path / "out" / "manifest.json"))
    write_manifest_atomically({"a": 2}, path)

    assert read_manifest(path) == {"a": 2}
    assert [p.name for p in Path(path).parent.iterdir()] == ["manifest.json"]


def lineage_metadata(instance: dg.DagsterInstance) -> dict[str, object]:
    event = instance.get_latest_materialization_event(dg.AssetKey(["t", "lineage"]))
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization.metadata


def test_lineage_run_writes_manifest_and_report_beside_the_table(project, settings, instance):
    summary = HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)
    output = Path(summary.lineage_path).parent

    manifest = json.loads((output / "manifest.json").read_text())

    assert manifest["table"]["sha256"] == read_request_table(settings.table_path).content_hash
    assert manifest["models"] == ["sora-2"]
    assert manifest["server"] == "embedded"
    assert (output / "report.html").is_file()
    metadata = lineage_metadata(instance)
    assert metadata["manifest"].value == manifest
    assert metadata["report"].value == str(output / "report.html")
    assert metadata["manifest_path"].value == str(output / "manifest.json")


def test_lineage_metadata_maps_request_columns_and_counts_statuses(project, settings, instance):
    HeadlessRunner(settings, instance, poll_seconds=0.1).run(timeout_seconds=120)

    metadata = lineage_metadata(instance)
    lineage = metadata["dagster/column_lineage"].value
    deps = {
        column: [(d.asset_key, d.column_name) for d in found]
        for column, found in lineage.deps_by_column.items()
    }
    table = dg.AssetKey(["t", "request_table"])

    assert deps["replicate"] == [(table, "replicates")]
    assert deps["source_video_id"] == [(table, "source_video_id")]
    assert deps["prompt"] == [(table, "prompt")]
    assert metadata["rows_by_status"].value == {"completed": 4}
    matrix = metadata["variant_matrix"].value
    assert matrix.splitlines()[0] == "| source | noir | anime |"
    # Each of the four replicates: its thumbnail (its full id as the image title) and status.
    assert matrix.count("**completed**") == 4
    assert matrix.count("](data:image/webp;base64,") == 4
