"""Keeps the lineage table fresh as videos and media arrive."""

from __future__ import annotations

import dagster as dg

from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import sensor_status


def build_automation_sensor(session: ExperimentSession) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        name=f"{session.settings.name}_automation_sensor",
        target=[session.keys.lineage],
        default_status=sensor_status(session.settings),
    )
