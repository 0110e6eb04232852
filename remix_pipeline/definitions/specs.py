"""What every asset, sensor and schedule of one experiment shares: group, owners, status."""

from __future__ import annotations

from typing import Any

import dagster as dg

from remix_pipeline.experiment import ExperimentSettings


def sensor_status(settings: ExperimentSettings) -> dg.DefaultSensorStatus:
    if settings.automation_running:
        return dg.DefaultSensorStatus.RUNNING
    return dg.DefaultSensorStatus.STOPPED


def schedule_status(settings: ExperimentSettings) -> dg.DefaultScheduleStatus:
    if settings.automation_running:
        return dg.DefaultScheduleStatus.RUNNING
    return dg.DefaultScheduleStatus.STOPPED


def asset_attributes(settings: ExperimentSettings) -> dict[str, Any]:
    """What every asset of the experiment carries: its group (the experiment's name) and
    owners. Kinds, deps and descriptions are each asset's own."""
    return {"group_name": settings.name, "owners": settings.owners}
