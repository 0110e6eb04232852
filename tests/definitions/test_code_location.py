"""`dagster dev -w workspace.yaml` serves the sample experiment, checked over its GraphQL API.

The repository's workspace.yaml and sample/ project are copied, unchanged, into a temporary
folder beside a one-row request table, so the daemon's runs write their state and media
there and never into the working tree. One `dagster dev` (webserver, daemon, code server)
serves every test of this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.dagster_ui import DAGSTER, DagsterDev, sample_checkout, serving_ui

OUR_CODE = ("remix_pipeline", "remix_sample")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("checkout")
    table = "source_video_id,variant,prompt\nvideo_src_harbor,storm,Turn the harbor stormy\n"
    env = {**sample_checkout(root, table), "PYTHONUNBUFFERED": "1"}
    with serving_ui([str(DAGSTER), "dev", "-w", "workspace.yaml"], root, env) as server:
        yield server


def test_workspace_loads_the_sample_location_without_error(dagster_dev: DagsterDev) -> None:
    entry = dagster_dev.location_entry()
    assert entry["loadStatus"] == "LOADED"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"


def test_location_serves_the_sample_experiments_assets(dagster_dev: DagsterDev) -> None:
    keys = {"/".join(node["assetKey"]["path"]) for node in dagster_dev.repository()["assetNodes"]}
    parts = ("request_table", "submissions", "videos", "media", "lineage")
    assert keys == {f"{name}/{part}" for name in ("sample", "operations") for part in parts}


def test_lineage_asset_carries_the_three_checks(dagster_dev: DagsterDev) -> None:
    checks = {
        "/".join(node["assetKey"]["path"]): {
            c["name"] for c in node["assetChecksOrError"]["checks"]
        }
        for node in dagster_dev.repository()["assetNodes"]
    }
    for name in ("sample", "operations"):
        assert checks.pop(f"{name}/lineage") == {
            "every_variant_has_terminal_record",
            "remixed_from_matches_source",
            "failure_rate_below_threshold",
        }
    assert not any(checks.values())


def test_sensors_and_schedule_are_running_by_default(dagster_dev: DagsterDev) -> None:
    repository = dagster_dev.repository()
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    schedules = {
        s["name"]: (s["cronSchedule"], s["scheduleState"]["status"])
        for s in repository["schedules"]
    }
    assert sensors == {
        "sample_fanout_sensor": "RUNNING",
        "sample_completion_sensor": "RUNNING",
        "sample_automation_sensor": "RUNNING",
        # The operations sample ships stopped: it submits nothing until started.
        "operations_fanout_sensor": "STOPPED",
        "operations_completion_sensor": "STOPPED",
        "operations_automation_sensor": "STOPPED",
    }
    assert schedules == {"sample_refresh": ("0 6 * * *", "RUNNING")}


def test_daemon_evaluates_the_sensors_without_failing(dagster_dev: DagsterDev) -> None:
    ticks = dagster_dev.sensor_ticks({"sample_fanout_sensor", "sample_completion_sensor"})
    for name in ("sample_fanout_sensor", "sample_completion_sensor"):
        assert ticks[name], name
        failures = [t["error"] for t in ticks[name] if t["status"] == "FAILURE"]
        assert not failures, (name, failures)


def test_output_has_no_error_and_no_warning_from_our_code(dagster_dev: DagsterDev) -> None:
    dagster_dev.sensor_ticks({"sample_fanout_sensor", "sample_completion_sensor"})
    lines = dagster_dev.output().splitlines()
    assert any("Serving dagster-webserver" in line for line in lines)
    errors = [line for line in lines if " - ERROR - " in line or "Traceback" in line]
    assert not errors, "\n".join(errors)
    ours = [
        line
        for line in lines
        if re.search(r"Warning\b|WARNING", line) and any(name in line for name in OUR_CODE)
    ]
    assert not ours, "\n".join(ours)
