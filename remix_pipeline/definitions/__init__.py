"""The Dagster side of remix-pipeline: assets, sensors, checks, schedule and the Component."""

from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.definitions.keys import ExperimentKeys
from remix_pipeline.definitions.session import ExperimentSession

__all__ = ["ExperimentKeys", "ExperimentSession", "build_experiment_definitions"]
