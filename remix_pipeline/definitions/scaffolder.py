"""`dg scaffold defs remix_pipeline.RemixExperiment NAME`: a defs.yaml that loads as written.

Dagster's default scaffolder writes `attributes: {}`, which fails to load (`table` is
required). This one writes the experiment's name and a table beside the defs.yaml, and
that table with only its header, so `dg check defs` passes before any row is added.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg

from remix_pipeline.experiment import NAME_PATTERN

COMPONENT_TYPE = "remix_pipeline.RemixExperiment"
TABLE_FILE_NAME = "requests.csv"
TABLE_HEADER = "source_video_id,prompt,variant\n"
DEFS_YAML = """\
type: {type}
attributes:
  name: {name}
  # One row per remix: source_video_id, prompt and an optional variant label.
  table: "{table}"
"""


def experiment_name(text: str) -> str:
    """`text` (a folder name) as an experiment name: lowercase letters, digits and '_',
    starting with a letter, at most 40 characters."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    name = re.sub(r"^[^a-z]+", "", name)[:40].rstrip("_") or "experiment"
    assert NAME_PATTERN.fullmatch(name), name
    return name


def table_reference(folder: Path, project_root: Path | None) -> str:
    """The table's path as the YAML should say it: from the project root when there is one,
    so the project can be moved."""
    table = folder.resolve() / TABLE_FILE_NAME
    if project_root is None:
        return str(table)
    try:
        return "{{ context.project_root }}/" + table.relative_to(project_root.resolve()).as_posix()
    except ValueError:
        return str(table)


class RemixExperimentScaffolder(dg.Scaffolder):
    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        if request.scaffold_format != "yaml":
            raise ValueError("RemixExperiment is declared in YAML: scaffold it with --format yaml")
        folder = request.target_path.parent if request.append else request.target_path
        folder.mkdir(parents=True, exist_ok=True)
        text = DEFS_YAML.format(
            type=COMPONENT_TYPE,
            name=experiment_name(folder.name),
            table=table_reference(folder, request.project_root),
        )
        if request.append:
            with request.target_path.open("a") as defs:
                defs.write("---\n" + text)
        else:
            (folder / "defs.yaml").write_text(text)
        table = folder / TABLE_FILE_NAME
        if not table.exists():
            table.write_text(TABLE_HEADER)
