"""Whether the run that owns an intent is alive, and the tags that let another process tell."""

from __future__ import annotations

import os
import socket

import dagster as dg

from remix_pipeline.definitions.keys import HOST_TAG, PID_TAG
from remix_pipeline.tempfiles import pid_alive


def process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def run_is_gone(instance: dg.DagsterInstance, run_id: str | None) -> bool:
    """True when the run that owns an intent can no longer be sending its request."""
    if not run_id:
        return True
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return True
    if run.tags.get(HOST_TAG) == socket.gethostname() and PID_TAG in run.tags:
        return not pid_alive(int(run.tags[PID_TAG]))
    return False


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark runs of this machine whose process died (SIGKILL, power loss) as failed.

    The daemon's run monitoring does this for runs it launched; `remix-pipeline run` executes
    in its own process, so it cleans up after its own dead runs before starting.
    """
    failed: list[str] = []
    records = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={HOST_TAG: socket.gethostname()},
        )
    )
    for run in records:
        pid = run.tags.get(PID_TAG)
        if pid and int(pid) != os.getpid() and not pid_alive(int(pid)):
            instance.report_run_failed(run, "The process running it is gone.")
            failed.append(run.run_id)
    return failed
