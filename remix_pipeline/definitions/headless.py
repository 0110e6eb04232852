"""`remix-pipeline run`: the experiment's own Dagster definitions, driven without a daemon.

It does what the daemon would: evaluates the same sensors, applies their partition requests,
executes their runs and stores their events, all on the persistent instance, so that
`dagster dev` afterwards shows the same history. Only the scheduling is different.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import dagster as dg

from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.definitions.keys import EXPERIMENT_TAG
from remix_pipeline.definitions.runs import fail_abandoned_runs, process_tags
from remix_pipeline.definitions.sensors.fanout import FanoutCursor
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.ledger import Attempt, AttemptState
from remix_pipeline.request_table import read_request_table
from remix_pipeline.service.config import state_home
from remix_pipeline.submission import UNRESOLVED_CODE
from remix_pipeline.tracking import answers_hopelessly

MEDIA_INTERVAL_SECONDS = 15.0
# With no progress at all (no job moved, nothing submitted, ended or downloaded) for this
# long, `run` stops and names what is stuck; a later run resumes.
DEFAULT_STALL_SECONDS = 1800.0
# How often the in-flight jobs' own progress is read to tell a long job from a stalled one.
STALL_CHECK_SECONDS = 15.0
# Runs log nothing to the console: the runner reports their warnings as one line each, and
# a failed step as one error naming its cause, never Dagster's stack trace.
SILENT_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
DAGSTER_YAML = """\
# Written by remix-pipeline for its project-local Dagster home.
telemetry:
  enabled: false
nux:
  enabled: false
run_monitoring:
  enabled: true
"""
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 20


class ErrorInfo(Protocol):
    """What a step failure's error tells (Dagster's serializable error info)."""

    message: str
    cls_name: str | None

    @property
    def cause(self) -> ErrorInfo | None: ...


# Dagster's notices about its own API (beta and preview parameters, superseded commands);
# `run` relies on them knowingly and its users cannot act on them. Anything else is shown.
DAGSTER_NOTICES = (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning)


@contextmanager
def dagster_notices_ignored() -> Iterator[None]:
    with warnings.catch_warnings():
        for category in DAGSTER_NOTICES:
            warnings.filterwarnings("ignore", category=category)
        yield


def root_cause(error: ErrorInfo | None) -> str:
    """The innermost error of a step failure, as `Type: message` without its module path."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    message = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", message)


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME if set, else a project-local home that the README's `dagster dev` uses."""
    home = Path(os.environ.get("DAGSTER_HOME") or state_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class Progress:
    variants: int = 0
    submitted: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    downloaded: int = 0
    busy: int = 0

    @property
    def ended(self) -> int:
        return self.completed + self.failed


@dataclass
class RunSummary:
    progress: Progress
    lineage_path: str
    dagster_runs: list[str] = field(default_factory=list)
    finished: bool = False
    invalid_rows: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    # Why the run stopped before every variant ended, and the variants it names.
    stopped_because: str | None = None
    stuck: list[str] = field(default_factory=list)
    # Variants whose POST outcome could not be resolved (their job may exist on the server).
    unresolved: list[str] = field(default_factory=list)


def keep_storage_connections(instance: dg.DagsterInstance) -> None:
    """Pool the instance's database connections for as long as it lives.

    dagster-postgres opens a new connection for every statement unless told to pool, which
    only the webserver does: 11 ms an event on loopback, where a pooled one takes 1.8 ms. The
    runner lives as long as a webserver and writes far more events, so it pools too, with no
    statement timeout. SQLite storage ignores the call.
    """
    instance.optimize_for_webserver(
        statement_timeout=0, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=POOL_MAX_OVERFLOW
    )


def describe(attempt: Attempt) -> str:
    """A variant as a person finds it in the table: key, source and label."""
    return f"{attempt.key} ({attempt.source_video_id}, {attempt.variant})"


class HeadlessRunner:
    def __init__(
        self,
        settings: ExperimentSettings,
        instance: dg.DagsterInstance,
        *,
        on_progress: Callable[[Progress], None] = lambda progress: None,
        on_warning: Callable[[str], None] = lambda message: None,
        poll_seconds: float = 0.5,
        session: ExperimentSession | None = None,
    ) -> None:
        self.settings = settings
        self.instance = instance
        keep_storage_connections(instance)
        self.session = session or ExperimentSession(settings)
        with dagster_notices_ignored():
            self.defs = build_experiment_definitions(settings, self.session)
            self.job = self.defs.resolve_implicit_global_asset_job_def()
        self.on_progress = on_progress
        self.on_warning = on_warning
        self.poll_seconds = poll_seconds
        self.runs: list[str] = []
        self.table_keys: set[str] = set()  # the variants of the table `run` works through
        self.cursors: dict[str, str | None] = {}
        self.last_media_run = 0.0

    def execute(
        self, asset_selection: list[dg.AssetKey], tags: dict[str, str] | None = None
    ) -> dg.ExecuteInProcessResult:
        with dagster_notices_ignored():
            result = self.job.execute_in_process(
                instance=self.instance,
                asset_selection=asset_selection,
                tags={**(tags or {}), **process_tags(), EXPERIMENT_TAG: self.settings.name},
                run_config=SILENT_CONSOLE,
                raise_on_error=False,
            )
        self.runs.append(result.run_id)
        for entry in self.instance.all_logs(result.run_id):
            if entry.level == logging.WARNING and entry.dagster_event is None:
                self.on_warning(entry.user_message)
        if not result.success:
            failure = next(
                (e for e in result.all_events if e.is_step_failure and e.step_failure_data), None
            )
            if failure is None or failure.step_failure_data is None:
                raise dg.DagsterError(f"Dagster run {result.run_id} failed; see its logs")
            raise dg.DagsterError(
                f"Dagster run {result.run_id} failed in {failure.step_key}: "
                f"{root_cause(failure.step_failure_data.error)}"
            )
        return result

    def evaluate_sensor(self, name: str) -> None:
        with dagster_notices_ignored():
            sensor = self.defs.get_repository_def().get_sensor_def(name)
            # The caller's instance, not a ref: an instance the context opened from a ref would
            # stay the current defs-state storage after the context is dropped, and the next
            # Definitions load would find it garbage-collected.
            context = dg.build_sensor_context(
                instance=self.instance,
                definitions=self.defs,
                cursor=self.cursors.get(name),
            )
            data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        for request in data.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                self.instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
        for event in data.asset_events or []:
            self.instance.report_runless_asset_event(event)
        for run_request in data.run_requests or []:
            selection = list(run_request.asset_selection or [])
            if selection == [self.session.keys.media] and self._media_can_wait():
                continue
            self.execute(selection, dict(run_request.tags))

    def _media_can_wait(self) -> bool:
        """Downloads wait at most MEDIA_INTERVAL_SECONDS (download URLs live about an hour),
        so a wave of completions shares one run. Once every variant has ended they wait for
        the final run, which fetches them beside the lineage: a run's own cost (about a
        second, on the sample) is not paid twice in a row."""
        if time.monotonic() - self.last_media_run < MEDIA_INTERVAL_SECONDS:
            return True
        if self.table_keys and self.progress(self.table_keys).ended == len(self.table_keys):
            return True
        self.last_media_run = time.monotonic()
        return False

    def progress(self, table_keys: set[str]) -> Progress:
        """Counts from two narrow ledger reads: asked every poll, so no lineage frame here."""
        latest = self.session.ledger().latest_states(table_keys)
        states = Counter(state for state, _ in latest)
        return Progress(
            variants=len(table_keys),
            submitted=len(latest),
            running=states[AttemptState.SUBMITTED],
            completed=states[AttemptState.COMPLETED],
            failed=states[AttemptState.FAILED],
            downloaded=sum(
                1 for state, files in latest if files and state is AttemptState.COMPLETED
            ),
            busy=states[AttemptState.INTENT] + states[AttemptState.UNKNOWN],
        )

    def _hopeless(self) -> list[Attempt]:
        now = time.time()
        # Only a job answered against the contract more than once can be hopeless.
        violating = self.session.ledger().in_flight(min_violations=2)
        return [a for a in violating if answers_hopelessly(a, now)]

    def _movement(self, progress: Progress) -> tuple[object, ...]:
        """What counts as progress: counts, and every in-flight job's status and percent."""
        jobs = sorted((j.key, j.status, j.progress) for j in self.session.ledger().running_jobs())
        return (
            progress.submitted,
            progress.completed,
            progress.failed,
            progress.downloaded,
            progress.busy,
            hash(tuple(jobs)),
        )

    def run(
        self, *, timeout_seconds: float = 3600.0, stall_seconds: float = DEFAULT_STALL_SECONDS
    ) -> RunSummary:
        try:
            return self._run(timeout_seconds, stall_seconds)
        finally:
            self.session.close()  # the run's end: its ledger connections go back

    def _run(self, timeout_seconds: float, stall_seconds: float) -> RunSummary:
        name = self.settings.name
        keys = self.session.keys
        fail_abandoned_runs(self.instance)
        table = read_request_table(self.settings.table_path, strict=self.settings.strict)
        table_keys = self.table_keys = {r.key for r in table.requests}
        summary = RunSummary(
            progress=Progress(variants=len(table_keys)),
            lineage_path=self.session.lineage_path,
            dagster_runs=self.runs,
            invalid_rows=[str(p) for p in table.problems],
        )
        self.execute([keys.request_table])
        # The table run above already recorded this version of the table.
        self.cursors[f"{name}_fanout_sensor"] = FanoutCursor(
            table_hash=table.content_hash
        ).serialize()
        self.evaluate_sensor(f"{name}_fanout_sensor")

        deadline = time.monotonic() + timeout_seconds
        movement: tuple[object, ...] = ()
        moved_at = checked_at = time.monotonic()
        while True:
            self.evaluate_sensor(f"{name}_completion_sensor")
            progress = self.progress(table_keys)
            self.on_progress(progress)
            summary.progress = progress
            if self._stopped_as_hopeless(summary):
                return summary
            every = min(STALL_CHECK_SECONDS, stall_seconds / 3)
            if time.monotonic() - checked_at >= every or not movement:
                checked_at = time.monotonic()
                now_moving = self._movement(progress)
                if now_moving != movement:
                    movement, moved_at = now_moving, checked_at
                elif checked_at - moved_at >= stall_seconds:
                    summary.stopped_because = f"nothing progressed for {stall_seconds:.0f} s"
                    summary.stuck = self._unended(table_keys)
                    return summary
            if progress.busy or progress.submitted < progress.variants:
                # Interrupted intents whose run has since ended, and chained variants whose
                # parent has just ended, are picked up again here.
                self.evaluate_sensor(f"{name}_fanout_sensor")
            # Missing media are fetched after the loop: a run killed while downloading left
            # files that no completion tick will ask for again.
            done = progress.ended == progress.variants
            if done and not self._unreported():
                break
            if done:
                continue
            if time.monotonic() > deadline:
                return summary
            time.sleep(self.poll_seconds)
        return self._finish(summary, table_keys)

    def _stopped_as_hopeless(self, summary: RunSummary) -> bool:
        hopeless = self._hopeless()
        if hopeless:
            summary.stopped_because = (
                f"the server keeps answering status requests against the contract "
                f"({hopeless[0].violation}); the jobs stay in the ledger"
            )
            summary.stuck = [describe(a) for a in hopeless]
        return bool(hopeless)

    def _finish(self, summary: RunSummary, table_keys: set[str]) -> RunSummary:
        """Fetch what media are missing, write the lineage, and name unresolved variants."""
        keys = self.session.keys
        result = self.execute([keys.media, keys.lineage])
        summary.checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        summary.progress = self.progress(table_keys)
        self.on_progress(summary.progress)
        summary.finished = True
        summary.unresolved = [
            describe(a)
            for a in self.session.ledger().latest(table_keys).values()
            if a.error_code == UNRESOLVED_CODE
        ]
        return summary

    def _unended(self, table_keys: set[str]) -> list[str]:
        latest = self.session.ledger().latest(table_keys)
        waiting = sorted(table_keys - latest.keys())
        return [describe(a) for a in latest.values() if not a.is_terminal] + [
            f"{key} (not submitted yet)" for key in waiting
        ]

    def _unreported(self) -> bool:
        partitions = set(self.instance.get_dynamic_partitions(self.session.keys.partitions.name))
        return any(a.key in partitions for a in self.session.ledger().finished_unreported())
