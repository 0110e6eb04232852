"""SIGKILL at seeded points of a 200-variant fan-out, then run again: nothing lost, nothing paid
twice, nothing half-written.

One project goes through a chain of killed processes, each resuming from what the one before
left and dying at its own point (`REMIX_PIPELINE_CRASH_AT`), so every stage is interrupted
(intents, POSTs, records, polling, downloads, the lineage write) while the whole chain costs
about one full run plus a process start per kill.
"""

from __future__ import annotations

import signal

from tests.support.jobs import duplicates
from tests.support.reliability import assert_everything_once, video_reports

# (point, n): die the n-th time this process passes the point.
CRASH_CHAIN: list[tuple[str, int]] = [
    ("submission.intents_recorded", 1),  # intents written, no POST sent
    ("submission.before_post", 1),  # one intent stamped as sent, its POST never left
    ("submission.after_post", 20),  # server created the job, response not yet recorded
    ("submission.after_record", 60),  # mid fan-out, other POSTs in flight
    ("submission.before_post", 40),  # after adopting the orphans of the kills above
    ("submission.after_post", 10),
    ("tracking.polled", 40),  # completion-sensor tick killed half-way through its poll
    ("tracking.downloaded", 10),  # file in place, not yet recorded in the ledger
    ("download.mid_stream", 100),  # part file written, never renamed
    ("lineage.temp_created", 1),  # empty Parquet temp file
    ("lineage.before_replace", 1),  # full Parquet temp file, never renamed
]
VARIANTS = 200


def test_sigkill_at_eleven_points_of_a_200_variant_fan_out_pays_once_and_loses_nothing(
    make_project,
):
    project = make_project(VARIANTS)

    for point, n in CRASH_CHAIN:
        killed = project.run(REMIX_PIPELINE_CRASH_AT=f"{point}:{n}")
        assert killed.returncode == -signal.SIGKILL, (point, n, killed.stdout, killed.stderr)
        jobs = project.remix_jobs()
        assert duplicates(jobs) == 0, (point, n)
        assert set(jobs) <= set(project.variants)

    finished = project.run()

    assert finished.returncode == 0, finished.stderr
    frame = assert_everything_once(project)
    assert all(n == 1 for n in video_reports(project).values())
    assert set(video_reports(project)) == {(k, 1) for k in frame["key"]}
    adopted = int(frame["adopted"].sum())
    print(
        f"\nRELIABILITY crashes: kills={len(CRASH_CHAIN)} variants={VARIANTS} "
        f"jobs={len(project.remix_jobs())} duplicates=0 lost=0 adopted_orphans={adopted}"
    )


def test_a_lineage_write_killed_before_its_rename_leaves_the_previous_table_whole(make_project):
    project = make_project(8)
    assert project.run().returncode == 0
    before = project.lineage()

    killed = project.run(REMIX_PIPELINE_CRASH_AT="lineage.before_replace:1")

    assert killed.returncode == -signal.SIGKILL
    assert project.lineage().equals(before)
    assert [p.name.endswith(".tmp") for p in project.temp_files()] == [True]
    assert project.run().returncode == 0
    assert_everything_once(project)
