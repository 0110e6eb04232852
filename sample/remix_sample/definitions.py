"""The code location: every experiment declared under defs/."""

import sys
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _importable_in_place() -> None:
    """The sample project is loaded in place, never installed, and the root workspace.yaml
    loads this file with the repository root as working directory (so that `dagster dev` and
    `remix-pipeline run` share one `.remix-pipeline/` state): the defs-folder loader still
    has to import `remix_sample`."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.append(str(PROJECT_ROOT))


@dg.definitions
def defs() -> dg.Definitions:
    _importable_in_place()
    return dg.load_from_defs_folder(path_within_project=PROJECT_ROOT)
