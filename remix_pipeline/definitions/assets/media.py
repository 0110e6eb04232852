"""Video, thumbnail and spritesheet of every completed variant, downloaded."""

import queue
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.definitions.specs import asset_attributes
from remix_pipeline.ledger import Attempt, AttemptState, Ledger, MediaRecord
from remix_pipeline.previews import log_previews
from remix_pipeline.tracking import DownloadReport, download_media, servers_to_download

# How long the step's thread waits for the next batch of downloads before it looks again
# whether they have all ended.
PREVIEW_WAIT_SECONDS = 0.1


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
            report = download_showing_previews(context, session, ledger, completed, server)
            for problem in report.problems:
                context.log.warning(problem)
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


def download_showing_previews(
    context: dg.AssetExecutionContext,
    session: ExperimentSession,
    ledger: Ledger,
    completed: list[Attempt],
    server: str,
) -> DownloadReport:
    """Downloads on a worker thread's event loop, while this thread, the step's own, shows
    each committed batch on its `videos` partitions.

    Encoding and storing a preview costs about as much client time as downloading its three
    files; done after the downloads, the previews of 1,000 videos kept the server idle for
    25 s. Dagster's context stays on the step's thread.
    """
    recorded: queue.SimpleQueue[list[MediaRecord]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="remix-media") as pool:
        downloads = pool.submit(
            session.run,
            lambda client: download_media(
                ledger, client, session.media_root, completed, on_recorded=recorded.put
            ),
            server=server,
        )
        while not downloads.done() or not recorded.empty():
            try:
                batch = recorded.get(timeout=PREVIEW_WAIT_SECONDS)
            except queue.Empty:
                continue
            log_previews(context, session.keys.videos, ledger, batch)
        return downloads.result()
