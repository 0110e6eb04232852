"""remix-pipeline: a Dagster plugin that fans out Videos API remix jobs and audits their lineage."""

from remix_pipeline.version import __version__

__all__ = ["RemixExperiment", "__version__"]


def __getattr__(name: str) -> object:
    # The component pulls in Dagster; import it only when asked, so that the embedded
    # service and the client stay light to import.
    if name == "RemixExperiment":
        from remix_pipeline.definitions.component import RemixExperiment

        return RemixExperiment
    raise AttributeError(name)


def __dir__() -> list[str]:
    return sorted([*globals(), "RemixExperiment"])
