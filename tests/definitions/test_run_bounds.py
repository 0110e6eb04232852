"""`remix-pipeline run` never waits for ever, and never pays a server it was not pointed at.

Each case runs the real command against a served service (`remix-pipeline serve` in its own
process) configured to misbehave in one way; counts are taken in the service's own SQLite.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.jobs import remix_jobs_in
from tests.support.projects import write_service_settings
from tests.support.servers import REMIX_PIPELINE, served_process

TABLE = (
    "source_video_id,variant,prompt\n"
    "video_src_harbor,rain,Make it rain over the harbor\n"
    "video_src_forest,fog,Fill the forest with fog\n"
)


def run(project: Path, base_url: str | None, *options: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REMIX_", "DAGSTER"))
    }
    env.update(REMIX_PIPELINE_HOME=str(project / ".remix-pipeline"), COLUMNS="200")
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    # The embedded service of this project runs fast jobs too.
    write_service_settings(project / ".remix-pipeline")
    return subprocess.run(
        [str(REMIX_PIPELINE), "run", "--table", "requests.csv", *options],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def remix_jobs(db: Path) -> list[str]:
    return [prompt for _source, prompt in remix_jobs_in(db)]


def project_in(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "requests.csv").write_text(TABLE)
    return project


def test_a_server_whose_status_answers_describe_other_videos_ends_the_run_naming_them(
    tmp_path: Path,
):
    project = project_in(tmp_path)
    with served_process(tmp_path, "--misdirect-rate", "1") as served:
        result = run(project, served.base_url)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "against the contract" in output and "describe another video" in output
    assert "stuck: video_src_harbor." in output and "stuck: video_src_forest." in output
    assert "Traceback" not in output


def test_a_run_where_nothing_progresses_stops_at_the_stall_bound_naming_what_is_stuck(
    tmp_path: Path,
):
    project = project_in(tmp_path)
    # Jobs that stay queued for a day: nothing ever moves.
    with served_process(tmp_path, "--queued-seconds", "86400") as served:
        result = run(project, served.base_url, "--stall-timeout", "3")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "nothing progressed for 3 s" in output
    assert output.count("  stuck: ") == 2


def test_a_run_pointed_at_another_server_stops_before_paying_and_names_both(tmp_path: Path):
    project = project_in(tmp_path)
    first = run(project, None)
    assert first.returncode == 0, first.stdout + first.stderr
    with served_process(tmp_path) as served:
        second = run(project, served.base_url)
        paid = remix_jobs(served.db_path)
    output = second.stdout + second.stderr
    assert second.returncode == 1, output
    assert "embedded (2 variants)" in output and served.base_url in output
    assert "--start-afresh" in output and "--same-server-as" in output
    assert paid == []


def test_start_afresh_submits_every_variant_again_on_the_new_server(tmp_path: Path):
    project = project_in(tmp_path)
    assert run(project, None).returncode == 0
    with served_process(tmp_path) as served:
        again = run(project, served.base_url, "--start-afresh")
        paid = remix_jobs(served.db_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(paid) == ["Fill the forest with fog", "Make it rain over the harbor"]
    lineage = subprocess.run(
        [str(REMIX_PIPELINE), "lineage", "--table", "requests.csv", "--format", "csv"],
        cwd=project,
        env={**os.environ, "REMIX_PIPELINE_HOME": str(project / ".remix-pipeline")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert lineage.count("embedded") == 2 and lineage.count(served.base_url) == 2


def test_same_server_as_keeps_a_renamed_hosts_attempts_and_pays_nothing(tmp_path: Path):
    project = project_in(tmp_path)
    with served_process(tmp_path) as served:
        assert run(project, served.base_url).returncode == 0
        renamed = served.base_url.replace("127.0.0.1", "localhost")
        again = run(project, renamed, "--same-server-as", served.base_url)
        paid = remix_jobs(served.db_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(paid) == 2  # the first run's jobs only
