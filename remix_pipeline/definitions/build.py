"""Assemble one experiment's Dagster definitions from its settings."""

from __future__ import annotations

import dagster as dg

from remix_pipeline.definitions.assets import build_assets
from remix_pipeline.definitions.checks import build_checks
from remix_pipeline.definitions.runtime import ExperimentRuntime
from remix_pipeline.definitions.schedules import build_refresh_schedule
from remix_pipeline.definitions.sensors import (
    build_automation_sensor,
    build_completion_sensor,
    build_fanout_sensor,
)
from remix_pipeline.experiment import ExperimentSettings


def build_experiment_definitions(settings: ExperimentSettings) -> dg.Definitions:
    """Everything one experiment needs, with no shared resource keys, so that several
    experiments merge into one code location."""
    runtime = ExperimentRuntime(settings)
    schedule = build_refresh_schedule(runtime)
    return dg.Definitions(
        assets=build_assets(runtime),
        asset_checks=build_checks(runtime),
        sensors=[
            build_fanout_sensor(runtime),
            build_completion_sensor(runtime),
            build_automation_sensor(runtime),
        ],
        schedules=[schedule] if schedule else [],
    )
