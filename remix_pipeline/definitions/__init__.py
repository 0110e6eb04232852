"""The Dagster side of remix-pipeline: assets, sensors, checks, schedule and the Component."""

from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.definitions.runtime import ExperimentKeys, ExperimentRuntime

__all__ = ["ExperimentKeys", "ExperimentRuntime", "build_experiment_definitions"]
