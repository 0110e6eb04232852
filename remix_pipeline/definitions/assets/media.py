"""Video, thumbnail and spritesheet of every completed variant, downloaded."""

import dagster as dg

from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import asset_attributes
from remix_pipeline.ledger import AttemptState
from remix_pipeline.previews import log_previews
from remix_pipeline.tracking import download_media, servers_to_download


def build_media_asset(session: ExperimentSession) -> dg.AssetsDefinition:
    @dg.asset(
        key=session.keys.media,
        deps=[session.keys.videos],
        kinds={"mp4"},
        description="Video, thumbnail and spritesheet of every completed variant, downloaded.",
        **asset_attributes(session.settings),
    )
    def media(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        ledger = session.ledger()
        completed = [a for a in ledger.latest().values() if a.state is AttemptState.COMPLETED]
        downloaded, problems = 0, 0
        # Each video is fetched from the server that made it.
        for server in sorted(servers_to_download(completed)):
            report = session.run(
                lambda client: download_media(ledger, client, session.media_root, completed),
                server=server,
            )
            for problem in report.problems:
                context.log.warning(problem)
            log_previews(context, session.keys.videos, ledger, report.downloaded)
            downloaded += len(report.downloaded)
            problems += len(report.problems)
        return dg.MaterializeResult(
            metadata={
                "downloaded_files": downloaded,
                "problems": problems,
                "media_root": dg.MetadataValue.path(str(session.media_root)),
            }
        )

    return media
