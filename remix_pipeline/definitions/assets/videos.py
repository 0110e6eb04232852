"""The finished remix jobs: materialized by the completion sensor, never by a run."""

from __future__ import annotations

import dagster as dg

from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import asset_attributes


def build_videos_spec(session: ExperimentSession) -> dg.AssetSpec:
    keys = session.keys
    return dg.AssetSpec(
        key=keys.videos,
        deps=[keys.submissions],
        partitions_def=keys.partitions,
        kinds={"video"},
        description=(
            "The finished remix jobs, reported by the completion sensor with each Video record."
        ),
        **asset_attributes(session.settings),
    )
