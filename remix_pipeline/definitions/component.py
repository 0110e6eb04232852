"""The reusable Dagster Component: one YAML block declares one experiment."""

from __future__ import annotations

from typing import Annotated

import dagster as dg

from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.definitions.scaffolder import RemixExperimentScaffolder
from remix_pipeline.experiment import NAME_PATTERN, ExperimentSettings


@dg.scaffold_with(RemixExperimentScaffolder)
class RemixExperiment(dg.Component, ExperimentSettings, dg.Resolvable):
    """Fan out a table of prompt variants as Videos API remix jobs and audit their lineage.

    Each row of the request table (source_video_id, prompt, optional variant, experiment,
    replicates) becomes a dynamic partition; sensors submit new variants in one run, follow
    the jobs to their end, download the media and keep a Parquet lineage table fresh. The
    server is the embedded Videos API unless the variable named by `base_url_env` is set;
    the API key is read from the variable named by `api_key_env` at run time, never from YAML.

    Example:
        .. code-block:: yaml

            type: remix_pipeline.RemixExperiment
            attributes:
              name: noir_test
              table: "{{ context.project_root }}/data/noir.csv"
              requests_per_minute: 120
              poll_interval_seconds: 15
              refresh_cron: "0 * * * *"
              on_unknown_outcome: fail
              request_timeout_seconds: 60
            requirements:
              env: [OPENAI_API_KEY, OPENAI_BASE_URL]
    """

    # Redeclared so that the YAML schema carries the rule: `dg check yaml` then rejects a bad
    # name at its line, before anything is built (the settings validator still explains it).
    name: Annotated[
        str,
        dg.Resolver.default(
            description="Names the experiment's assets, partitions, sensors and schedule: "
            "lowercase letters, digits and '_', starting with a letter (at most 40).",
            examples=["sample", "noir_test"],
            json_schema_extra={"pattern": f"^{NAME_PATTERN.pattern}$"},
        ),
    ] = "sample"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        settings = ExperimentSettings.model_validate(
            self.model_dump(include=set(ExperimentSettings.model_fields))
        )
        return build_experiment_definitions(settings)
