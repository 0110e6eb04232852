"""What the assets and sensors of one experiment share at run time.

Nothing here lives longer than one call: every Dagster process (webserver, daemon, run
worker) rebuilds it from the settings, and all state is in the ledger and the event log.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import dagster as dg

from remix_pipeline.client import DeviationLog, VideosClient, server_label
from remix_pipeline.experiment import LEDGER_FILE_NAME, ExperimentSettings
from remix_pipeline.ledger import Attempt, Ledger
from remix_pipeline.planning import PayAgainRules, listing_grace_seconds, to_pay_again
from remix_pipeline.service.config import state_home
from remix_pipeline.tempfiles import pid_alive

T = TypeVar("T")

# A sensor tick or a run step opens a client per call; sharing each server's deviation log
# across them keeps the server's deviations to one warning per kind per process.
_DEVIATION_LOGS: dict[str, DeviationLog] = {}
# Ledgers (by URL and configured server) whose attempts' servers this process has settled.
_SERVERS_SETTLED: set[tuple[str, str, tuple[str, ...]]] = set()

# Run tags that let a later process tell whether a run that owns an intent is still alive.
HOST_TAG = "remix_pipeline/host"
PID_TAG = "remix_pipeline/pid"
EXPERIMENT_TAG = "remix_pipeline/experiment"
STEP_TAG = "remix_pipeline/step"
RETRY_FAILED_TAG = "remix_pipeline/retry_failed"


@dataclass(frozen=True)
class ExperimentKeys:
    """Asset keys and names of one experiment; the name keeps two experiments apart."""

    name: str

    def key(self, part: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, part])

    @property
    def request_table(self) -> dg.AssetKey:
        return self.key("request_table")

    @property
    def submissions(self) -> dg.AssetKey:
        return self.key("submissions")

    @property
    def videos(self) -> dg.AssetKey:
        return self.key("videos")

    @property
    def media(self) -> dg.AssetKey:
        return self.key("media")

    @property
    def lineage(self) -> dg.AssetKey:
        return self.key("lineage")

    @cached_property
    def partitions(self) -> dg.DynamicPartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=f"{self.name}_variants")


class ExperimentRuntime:
    def __init__(self, settings: ExperimentSettings) -> None:
        self.settings = settings
        self.keys = ExperimentKeys(settings.name)

    def ledger(self) -> Ledger:
        url = self.settings.resolved_ledger_url
        # The default SQLite file may be opened (by a sensor) before anything else ran.
        ledger = Ledger(url) if url else Ledger.for_path(state_home() / LEDGER_FILE_NAME)
        self._settle_servers(ledger)
        return ledger

    def _settle_servers(self, ledger: Ledger) -> None:
        """Attempts of an older ledger, and those sent to an earlier name of the configured
        server (`same_server_as`), are recorded as the configured server's, once a process."""
        configured = self.settings.server_label()
        aliases = tuple(server_label(url) for url in self.settings.same_server_as)
        memo = (repr(ledger), configured, aliases)
        if memo in _SERVERS_SETTLED:
            return
        ledger.assign_server(configured, recorded=None)
        for alias in aliases:
            if alias != configured:
                ledger.assign_server(configured, recorded=alias)
        _SERVERS_SETTLED.add(memo)

    @property
    def listing_grace_seconds(self) -> float:
        return listing_grace_seconds(
            exhaustive=self.settings.uses_embedded_service(),
            timeout_seconds=self.settings.request_timeout_seconds,
        )

    @property
    def pay_again_rules(self) -> PayAgainRules:
        return PayAgainRules(
            server=self.settings.server_label(),
            start_afresh=self.settings.start_afresh,
            reremix_expired_media=self.settings.reremix_expired_media,
        )

    def to_pay_again(
        self, ledger: Ledger, latest: Mapping[str, Attempt], now: float, *, refresh: bool = True
    ) -> set[str]:
        return to_pay_again(ledger, latest, now, self.pay_again_rules, refresh=refresh)

    def with_client(
        self, work: Callable[[VideosClient], Awaitable[T]], *, server: str | None = None
    ) -> T:
        """Run async client work to completion from synchronous Dagster code, against the
        configured server or the one an attempt recorded (`server`, a label)."""

        async def main() -> T:
            settings = self.settings.client_settings(server)
            async with VideosClient.from_settings(settings) as client:
                client.deviations = _DEVIATION_LOGS.setdefault(client.base_url, client.deviations)
                return await work(client)

        return asyncio.run(main())

    @property
    def media_root(self) -> str:
        """A local folder or an fsspec URL (a cluster's shared store)."""
        return f"{self.settings.resolved_output_dir.rstrip('/')}/media"

    @property
    def lineage_path(self) -> str:
        return f"{self.settings.resolved_output_dir.rstrip('/')}/lineage.parquet"


def sensor_status(settings: ExperimentSettings) -> dg.DefaultSensorStatus:
    if settings.automation_running:
        return dg.DefaultSensorStatus.RUNNING
    return dg.DefaultSensorStatus.STOPPED


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
