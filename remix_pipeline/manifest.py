"""The reproducibility manifest of an experiment run: what went in and who answered.

Everything needed to say "this lineage came from that table, this code and that server" sits
beside the lineage table in `manifest.json`. The configuration is the experiment's settings,
which name environment variables but never hold their values, and the server is shown by
`ExperimentSettings.server_label()`, which strips credentials from the URL.
"""

from __future__ import annotations

import json
import time
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.tempfiles import write_atomically
from remix_pipeline.version import __version__

MANIFEST_FILE_NAME = "manifest.json"
MANIFEST_VERSION = 1


def build_manifest(
    settings: ExperimentSettings,
    frame: pd.DataFrame,
    *,
    table_hash: str,
    run_id: str | None,
    created_at: float | None = None,
) -> dict[str, Any]:
    """The manifest of a lineage frame; `table_hash` is the request table's sha256."""
    models = sorted({str(m) for m in frame.get("model", pd.Series(dtype=object)).dropna()})
    table_hashes = sorted(
        {str(h) for h in frame.get("table_hash", pd.Series(dtype=object)).dropna()}
    )
    return {
        "manifest_version": MANIFEST_VERSION,
        "experiment": settings.name,
        "created_at": time.time() if created_at is None else created_at,
        "dagster_run_id": run_id,
        "table": {"path": str(settings.table_path), "sha256": table_hash},
        "table_hashes_in_lineage": table_hashes,
        "project_version": __version__,
        "dagster_version": dg.__version__,
        "server": settings.server_label(),
        "models": models,
        "rows": len(frame),
        "configuration": settings.model_dump(mode="json"),
    }


def write_manifest_atomically(manifest: dict[str, Any], destination: str) -> str:
    """Write JSON so that readers see the old manifest or the new one, never a partial one."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    return write_atomically(destination, text.encode("utf-8"))


def read_manifest(source: str) -> dict[str, Any]:
    with UPath(source).open("r", encoding="utf-8") as handle:
        return json.load(handle)
