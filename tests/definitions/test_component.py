"""The RemixExperiment component as a user meets it: through `dg` and through defs.yaml.

The `dg` calls are real subprocesses of the `dg` next to this interpreter, on throw-away dg
projects; each call costs seconds, so each is made once and shared by the tests that read it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster.components.testing import create_defs_folder_sandbox

from remix_pipeline.definitions.component import RemixExperiment
from remix_pipeline.definitions.scaffolder import experiment_name

DG = Path(sys.executable).parent / "dg"
PART_NAMES = ("request_table", "submissions", "videos", "media", "lineage")
SENSOR_SUFFIXES = ("fanout_sensor", "completion_sensor", "automation_sensor")
CHECK_NAMES = {
    "every_variant_has_terminal_record",
    "remixed_from_matches_source",
    "failure_rate_below_threshold",
}

ALPHA = """\
type: remix_pipeline.RemixExperiment
attributes:
  name: alpha
  table: "{{ context.project_root }}/data/alpha.csv"
  poll_interval_seconds: 5
  refresh_cron: "0 * * * *"
requirements:
  env: [OPENAI_API_KEY]
"""

# Two experiments as two YAML documents of one file, beside ALPHA's folder: three in all.
PAIR = """\
type: remix_pipeline.RemixExperiment
attributes:
  name: beta
  table: "{{ context.project_root }}/data/beta.csv"
---
type: remix_pipeline.RemixExperiment
attributes:
  name: gamma
  table: "{{ context.project_root }}/data/gamma.parquet"
  api_key_env: GAMMA_KEY
  refresh_cron: "30 6 * * 1"
"""

BAD = """\
type: remix_pipeline.RemixExperiment
attributes:
  name: "Noir Test!"
  table: "{{ context.project_root }}/data/alpha.csv"
  poll_interval_secs: 5
"""


def write_project(root: Path, defs: dict[str, str]) -> Path:
    """A minimal dg project (never installed) whose defs folder holds the given defs.yaml files."""
    package = root / "remix_trial"
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "remix_trial"
            code_location_name = "remix_trial"

            [tool.dg.cli]
            telemetry = { enabled = false }
            """
        )
    )
    (package / "defs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "definitions.py").write_text(
        textwrap.dedent(
            """\
            from pathlib import Path

            import dagster as dg


            @dg.definitions
            def defs() -> dg.Definitions:
                return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
            """
        )
    )
    for folder, text in defs.items():
        (package / "defs" / folder).mkdir()
        (package / "defs" / folder / "defs.yaml").write_text(text)
    return root


def run_dg(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [str(DG), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def dg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dagster_home")


@pytest.fixture(scope="module")
def check_defs(
    tmp_path_factory: pytest.TempPathFactory, dg_home: Path
) -> subprocess.CompletedProcess[str]:
    root = write_project(tmp_path_factory.mktemp("good"), {"alpha": ALPHA, "pair": PAIR})
    return run_dg("check", "defs", cwd=root, home=dg_home)


@pytest.fixture(scope="module")
def check_bad_yaml(
    tmp_path_factory: pytest.TempPathFactory, dg_home: Path
) -> subprocess.CompletedProcess[str]:
    root = write_project(tmp_path_factory.mktemp("bad"), {"noir": BAD})
    return run_dg("check", "yaml", cwd=root, home=dg_home)


def test_dg_check_defs_accepts_experiments_side_by_side_in_folders_and_documents(
    check_defs: subprocess.CompletedProcess[str],
) -> None:
    assert check_defs.returncode == 0, check_defs.stdout + check_defs.stderr
    assert "All definitions loaded successfully" in check_defs.stdout + check_defs.stderr


def test_dg_check_yaml_rejects_an_unknown_attribute_at_its_line(
    check_bad_yaml: subprocess.CompletedProcess[str],
) -> None:
    output = check_bad_yaml.stdout + check_bad_yaml.stderr
    assert check_bad_yaml.returncode == 1, output
    assert "defs.yaml:5" in output
    assert "'poll_interval_secs' was unexpected" in output


def test_dg_check_yaml_rejects_an_experiment_name_that_cannot_name_assets(
    check_bad_yaml: subprocess.CompletedProcess[str],
) -> None:
    output = check_bad_yaml.stdout + check_bad_yaml.stderr
    assert check_bad_yaml.returncode == 1, output
    assert "defs.yaml:3" in output
    assert "attributes.name 'Noir Test!' does not match" in output


def test_dg_list_components_shows_the_registered_component(tmp_path: Path, dg_home: Path) -> None:
    root = write_project(tmp_path, {})
    listed = run_dg("list", "components", "--json", cwd=root, home=dg_home)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert '"remix_pipeline.RemixExperiment"' in listed.stdout


@pytest.fixture
def sandbox_defs() -> Iterator[dg.Definitions]:
    """ALPHA and PAIR loaded from YAML in-process, as a code location would load them."""
    with create_defs_folder_sandbox() as sandbox:
        for folder, text in {"alpha": ALPHA, "pair": PAIR}.items():
            path = sandbox.scaffold_component(component_cls=RemixExperiment, defs_path=folder)
            (path / "defs.yaml").write_text(text)
        with sandbox.build_all_defs() as defs:
            yield defs


def test_yaml_experiments_build_their_own_assets_sensors_and_checks(
    sandbox_defs: dg.Definitions,
) -> None:
    repository = sandbox_defs.get_repository_def()
    asset_keys = set(repository.asset_graph.get_all_asset_keys())
    sensor_names = {sensor.name for sensor in repository.sensor_defs}
    check_keys = set(repository.asset_graph.asset_check_keys)
    for name in ("alpha", "beta", "gamma"):
        assert {dg.AssetKey([name, part]) for part in PART_NAMES} <= asset_keys
        assert {f"{name}_{suffix}" for suffix in SENSOR_SUFFIXES} <= sensor_names
        assert {
            dg.AssetCheckKey(dg.AssetKey([name, "lineage"]), check) for check in CHECK_NAMES
        } == {key for key in check_keys if key.asset_key == dg.AssetKey([name, "lineage"])}
    assert len(asset_keys) == 15
    assert len(sensor_names) == 9


def test_yaml_refresh_cron_becomes_the_experiments_schedule(
    sandbox_defs: dg.Definitions,
) -> None:
    schedules = {s.name: s.cron_schedule for s in sandbox_defs.get_repository_def().schedule_defs}
    assert schedules == {"alpha_refresh": "0 * * * *", "gamma_refresh": "30 6 * * 1"}


def test_yaml_project_root_template_resolves_the_table_inside_the_project() -> None:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=RemixExperiment, defs_path="alpha")
        (path / "defs.yaml").write_text(ALPHA)
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, _):
            assert isinstance(component, RemixExperiment)
            assert component.table_path == (sandbox.project_root / "data/alpha.csv").resolve()


def test_in_process_attributes_are_validated_like_yaml() -> None:
    with pytest.raises(ValueError, match="name must be lowercase letters"):
        RemixExperiment.from_attributes_dict(attributes={"name": "Noir Test!", "table": "t.csv"})
    with pytest.raises(ValueError, match="poll_interval_secs"):
        RemixExperiment.from_attributes_dict(attributes={"table": "t.csv", "poll_interval_secs": 5})


@pytest.fixture(scope="module")
def scaffolded(
    tmp_path_factory: pytest.TempPathFactory, dg_home: Path
) -> tuple[Path, subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """`dg scaffold defs` of the registered component, then `dg check defs`, as a user would."""
    root = write_project(tmp_path_factory.mktemp("scaffolded"), {})
    scaffold = run_dg(
        "scaffold", "defs", "remix_pipeline.RemixExperiment", "Noir-Test", cwd=root, home=dg_home
    )
    check = run_dg("check", "defs", cwd=root, home=dg_home)
    return root / "remix_trial" / "defs" / "Noir-Test", scaffold, check


def test_dg_scaffold_defs_writes_an_experiment_that_dg_check_defs_accepts(scaffolded) -> None:
    _, scaffold, check = scaffolded
    assert scaffold.returncode == 0, scaffold.stdout + scaffold.stderr
    assert check.returncode == 0, check.stdout + check.stderr
    assert "All definitions loaded successfully" in check.stdout + check.stderr


def test_the_scaffolded_defs_yaml_names_the_registered_type_and_a_table_beside_it(
    scaffolded,
) -> None:
    folder, _, _ = scaffolded
    text = (folder / "defs.yaml").read_text()
    assert "type: remix_pipeline.RemixExperiment\n" in text
    assert "name: noir_test\n" in text
    assert 'table: "{{ context.project_root }}/remix_trial/defs/Noir-Test/requests.csv"' in text
    assert (folder / "requests.csv").read_text() == "source_video_id,prompt,variant\n"


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("noir_test", "noir_test"),
        ("Noir-Test 2", "noir_test_2"),
        ("2024 runs", "runs"),
        ("--", "experiment"),
    ],
)
def test_a_folder_name_becomes_a_valid_experiment_name(folder: str, name: str) -> None:
    assert experiment_name(folder) == name
