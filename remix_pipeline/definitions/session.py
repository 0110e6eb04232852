"""One experiment as a process holds it: its server resolved once, its price table, its
ledger and the way a step reaches the server.

Every Dagster process (webserver, daemon, run worker, `remix-pipeline run`) builds one
session per experiment with its definitions; the assets, checks, sensors and schedule all
read from it, so they name the same server, quote the same prices and share one ledger
engine. All durable state stays in the ledger and the event log.

Lifetimes:
- the server, the price table and the listing grace: resolved on first use, for the
  session's life;
- the ledger: one engine per process and URL, shared by every session that opens that URL,
  disposed when the last of them is closed or collected (and at exit);
- a client and its event loop: one per `run(...)` call, that is one per step or tick.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping
from functools import cached_property
from typing import TypeVar

from remix_pipeline.client import DeviationLog, VideosClient, server_label
from remix_pipeline.definitions.keys import ExperimentKeys
from remix_pipeline.experiment import LEDGER_FILE_NAME, ExperimentSettings
from remix_pipeline.ledger import Attempt, Ledger
from remix_pipeline.planning import PayAgainRules, listing_grace_seconds, to_pay_again
from remix_pipeline.servers import ResolvedServer, server_of_label
from remix_pipeline.service.config import state_home

T = TypeVar("T")

# One ledger per URL in this process, for as long as some session holds it.
_LEDGERS: weakref.WeakValueDictionary[str, Ledger] = weakref.WeakValueDictionary()
# Sharing each server's deviation log across clients keeps its deviations to one warning
# per kind per process.
_DEVIATION_LOGS: dict[str, DeviationLog] = {}


def _open_ledger(url: str) -> Ledger:
    ledger = _LEDGERS.get(url)
    if ledger is None:
        ledger = Ledger(url)
        # Disposes the engine's pool once no session holds the ledger, or at exit.
        weakref.finalize(ledger, ledger._engine.dispose)
        _LEDGERS[url] = ledger
    return ledger


class ExperimentSession:
    """What the Dagster definitions of one experiment share in one process."""

    def __init__(self, settings: ExperimentSettings) -> None:
        self.settings = settings
        self.keys = ExperimentKeys(settings.name)
        self._ledgers: dict[str, Ledger] = {}

    # -- the server and its terms ------------------------------------------------------

    @cached_property
    def server(self) -> ResolvedServer:
        """The configured server, resolved once from the variable named by `base_url_env`."""
        return self.settings.server()

    @cached_property
    def prices(self) -> dict[str, dict[str, float]]:
        """The experiment's price table: every cost shown or enforced is priced with it."""
        return self.settings.price_table()

    @property
    def listing_grace_seconds(self) -> float:
        return listing_grace_seconds(
            exhaustive=self.server.embedded,
            timeout_seconds=self.settings.request_timeout_seconds,
        )

    @cached_property
    def pay_again_rules(self) -> PayAgainRules:
        return PayAgainRules(
            server=self.server.label,
            start_afresh=self.settings.start_afresh,
            reremix_expired_media=self.settings.reremix_expired_media,
        )

    def to_pay_again(
        self, ledger: Ledger, latest: Mapping[str, Attempt], now: float, *, refresh: bool = True
    ) -> set[str]:
        return to_pay_again(ledger, latest, now, self.pay_again_rules, refresh=refresh)

    # -- the ledger ----------------------------------------------------------------------

    @property
    def ledger_url(self) -> str:
        """Read at each use: the variables (and the state home) may differ between tests."""
        url = self.settings.resolved_ledger_url
        if url:
            return url
        path = (state_home() / LEDGER_FILE_NAME).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    def ledger(self) -> Ledger:
        """The experiment's ledger: one engine per process and URL, opened on first use."""
        url = self.ledger_url
        ledger = self._ledgers.get(url)
        if ledger is None:
            ledger = self._ledgers[url] = _open_ledger(url)
            self._settle_servers(ledger)
        return ledger

    def _settle_servers(self, ledger: Ledger) -> None:
        """Attempts of an older ledger, and those sent to an earlier name of the configured
        server (`same_server_as`), are recorded as the configured server's."""
        configured = self.server.label
        ledger.assign_server(configured, recorded=None)
        for alias in {server_label(url) for url in self.settings.same_server_as}:
            if alias != configured:
                ledger.assign_server(configured, recorded=alias)

    def close(self) -> None:
        """Release the ledger connections this session opened (they reopen on next use)."""
        for ledger in self._ledgers.values():
            ledger.close()

    # -- the client ----------------------------------------------------------------------

    def run(self, work: Callable[[VideosClient], Awaitable[T]], *, server: str | None = None) -> T:
        """Run async client work to completion from synchronous Dagster code, with one
        event loop and one client, against the configured server or the one an attempt
        recorded (`server`, a label)."""
        resolved = self.server if server is None else server_of_label(server)
        settings = self.settings.client_settings(server).model_copy(
            update={"base_url": resolved.base_url}
        )

        async def main() -> T:
            async with VideosClient.from_settings(settings) as client:
                client.deviations = _DEVIATION_LOGS.setdefault(client.base_url, client.deviations)
                return await work(client)

        return asyncio.run(main())

    # -- where results go ----------------------------------------------------------------

    @property
    def output_dir(self) -> str:
        """A local folder or an fsspec URL (a cluster's shared store)."""
        return self.settings.resolved_output_dir.rstrip("/")

    @property
    def media_root(self) -> str:
        return f"{self.output_dir}/media"

    @property
    def lineage_path(self) -> str:
        return f"{self.output_dir}/lineage.parquet"
