"""Assemble one experiment's Dagster definitions from its settings."""

from __future__ import annotations

import warnings

import dagster as dg

from remix_pipeline.definitions.assets import build_assets
from remix_pipeline.definitions.checks import build_checks
from remix_pipeline.definitions.schedules import build_refresh_schedule
from remix_pipeline.definitions.sensors import (
    build_automation_sensor,
    build_completion_sensor,
    build_fanout_sensor,
)
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.experiment import ExperimentSettings


def build_experiment_definitions(
    settings: ExperimentSettings, session: ExperimentSession | None = None
) -> dg.Definitions:
    """Everything one experiment needs, with no shared resource keys, so that several
    experiments merge into one code location. A caller that drives the definitions itself
    (`remix-pipeline run`) passes its session, so the process holds one."""
    session = session or ExperimentSession(settings)
    schedule = build_refresh_schedule(session)
    with warnings.catch_warnings():
        # The submissions asset needs BackfillPolicy.single_run() so that one run submits a
        # whole batch; Dagster marks that parameter beta. We rely on it knowingly, so the
        # warning would only be noise in every user's `dg`/`dagster dev` output.
        warnings.filterwarnings(
            "ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning
        )
        assets = build_assets(session)
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(session),
        sensors=[
            build_fanout_sensor(session),
            build_completion_sensor(session),
            build_automation_sensor(session),
        ],
        schedules=[schedule] if schedule else [],
    )
