"""remix-pipeline: a Dagster plugin that fans out Videos API remix jobs and audits their lineage."""

from remix_pipeline.version import __version__

__all__ = ["__version__"]
