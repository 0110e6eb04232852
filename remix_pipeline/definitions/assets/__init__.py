"""The assets of one experiment: table, submissions, videos, media, lineage.

Each asset is built by its own factory from the experiment's session; the attributes they
all share (group, owners) come from `definitions.specs.asset_attributes`.
"""

from __future__ import annotations

import dagster as dg

from remix_pipeline.definitions.assets.lineage import build_lineage_asset
from remix_pipeline.definitions.assets.media import build_media_asset
from remix_pipeline.definitions.assets.request_table import build_request_table_asset
from remix_pipeline.definitions.assets.submissions import build_submissions_asset
from remix_pipeline.definitions.assets.videos import build_videos_spec
from remix_pipeline.definitions.session import ExperimentSession


def build_assets(session: ExperimentSession) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    return [
        build_request_table_asset(session),
        build_submissions_asset(session),
        build_videos_spec(session),
        build_media_asset(session),
        build_lineage_asset(session),
    ]
