"""What every asset, sensor and schedule of one experiment shares: group, owners, status."""

from __future__ import annotations

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
