"""A reconstructable job of the experiment, for Dagster's multiprocess executor.

Each step runs in a fresh Python process that imports this file and calls `remix_job`, so
the experiment is described by environment variables the test sets, not by objects in the
test's memory. No relative imports: the executor loads this file by path.
"""

from __future__ import annotations

import os

import dagster as dg

from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.experiment import ExperimentSettings

TABLE_ENV = "REMIX_PIPELINE_TEST_TABLE"
LEDGER_ENV = "REMIX_PIPELINE_TEST_LEDGER_URL"
POOL = "remix_submissions"
NAME = "t"


def experiment_settings() -> ExperimentSettings:
    return ExperimentSettings(
        name=NAME, table=os.environ[TABLE_ENV], ledger_url_env=LEDGER_ENV, pool=POOL
    )


def remix_job() -> dg.JobDefinition:
    """The submission step as a named job; its default executor runs each step in its own
    process. (The implicit asset job's reserved name cannot be reconstructed.)"""
    settings = experiment_settings()
    submissions = dg.define_asset_job(
        "submit_variants", selection=[dg.AssetKey([settings.name, "submissions"])]
    )
    definitions = dg.Definitions.merge(
        build_experiment_definitions(settings), dg.Definitions(jobs=[submissions])
    )
    return definitions.resolve_job_def("submit_variants")
