"""The names one experiment gives its Dagster objects: asset keys, partitions and run tags."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import dagster as dg

# Run tags that let a later process tell whether a run that owns an intent is still alive.
HOST_TAG = "remix_pipeline/host"
PID_TAG = "remix_pipeline/pid"
EXPERIMENT_TAG = "remix_pipeline/experiment"
STEP_TAG = "remix_pipeline/step"
RETRY_FAILED_TAG = "remix_pipeline/retry_failed"


@dataclass(frozen=True)
class ExperimentKeys:
    """Asset keys and names of one experiment; the name keeps two experiments apart."""

    name: str

    def key(self, part: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, part])

    @property
    def request_table(self) -> dg.AssetKey:
        return self.key("request_table")

    @property
    def submissions(self) -> dg.AssetKey:
        return self.key("submissions")

    @property
    def videos(self) -> dg.AssetKey:
        return self.key("videos")

    @property
    def media(self) -> dg.AssetKey:
        return self.key("media")

    @property
    def lineage(self) -> dg.AssetKey:
        return self.key("lineage")

    @cached_property
    def partitions(self) -> dg.DynamicPartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=f"{self.name}_variants")
