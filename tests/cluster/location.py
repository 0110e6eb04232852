"""The local cluster's code location: one experiment whose runs execute with Dagster's Celery
executor, loaded by `dagster api grpc -f` in the code server and by path in every run and
Celery worker.

Everything comes from environment variables the harness (tests/cluster/cluster.py) sets, so
each process builds the same definitions. No relative imports: Dagster loads this file by
path.
"""

from __future__ import annotations

import os

import dagster as dg
import yaml
from dagster_celery import celery_executor

from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.experiment import ExperimentSettings, UnknownOutcomePolicy

NAME = "cluster"
POOL = "remix_submissions"
AUTOMATION_INTERVAL_SECONDS = 5


def _settings() -> ExperimentSettings:
    rpm = os.environ.get("REMIX_CLUSTER_RPM")
    return ExperimentSettings(
        name=NAME,
        table=os.environ["REMIX_CLUSTER_TABLE"],
        output_dir=os.environ["REMIX_CLUSTER_OUTPUT"],
        pool=POOL,
        poll_interval_seconds=1,
        requests_per_minute=int(rpm) if rpm else None,
        # An intent whose POST may or may not have gone out (a SIGKILLed step) is looked for
        # on the server for twice this long before it is sent again.
        request_timeout_seconds=float(os.environ.get("REMIX_CLUSTER_REQUEST_TIMEOUT", "3")),
        # The service lists its jobs, so an intent that no listing matches after that grace
        # was never received: sending it again pays once. (`fail`, the default, would end
        # each variant of a SIGKILLed step that had not sent its POST as failed.)
        on_unknown_outcome=UnknownOutcomePolicy.RESUBMIT,
        refresh_cron=os.environ.get("REMIX_CLUSTER_CRON", "* * * * *"),
    )


def _executor() -> dg.ExecutorDefinition:
    with open(os.environ["REMIX_CLUSTER_CELERY_YAML"], encoding="utf-8") as handle:
        config = yaml.safe_load(handle)["execution"]["config"]
    return celery_executor.configured(config)


def _definitions() -> dg.Definitions:
    """The experiment's definitions with the Celery executor, and the lineage's automation
    sensor evaluated every few seconds rather than Dagster's default 30 (a cluster that
    finishes in two minutes would otherwise wait on it)."""
    built = build_experiment_definitions(_settings())
    sensors = []
    for sensor in built.sensors or []:
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):
            sensor = dg.AutomationConditionSensorDefinition(
                name=sensor.name,
                target=sensor.asset_selection,
                default_status=sensor.default_status,
                minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
            )
        sensors.append(sensor)
    return dg.Definitions(
        assets=built.assets,
        asset_checks=built.asset_checks,
        sensors=sensors,
        schedules=built.schedules,
        executor=_executor(),
    )


defs = _definitions()
