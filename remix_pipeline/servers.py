"""Which Videos API server an experiment talks to, decided in one place.

The variable an experiment names (`base_url_env`, OPENAI_BASE_URL by default) holds the base
URL of a remote server; unset or empty, the embedded service is used. Nothing else (not the
client's own fallback to OPENAI_BASE_URL) gets a say, so the settings, the logs, the listing
grace and the requests all name the same server. Each attempt records the server's label,
and polls and downloads of that attempt go back to it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from remix_pipeline.client import EMBEDDED_BASE_URL, EMBEDDED_SERVER, server_label


@dataclass(frozen=True)
class ResolvedServer:
    base_url: str  # EMBEDDED_BASE_URL for the embedded service

    @property
    def embedded(self) -> bool:
        return self.base_url == EMBEDDED_BASE_URL

    @property
    def label(self) -> str:
        """As recorded in the ledger and shown to people: no credentials, or "embedded"."""
        return server_label(self.base_url)


def resolve_server(base_url_env: str) -> ResolvedServer:
    return ResolvedServer(os.environ.get(base_url_env) or EMBEDDED_BASE_URL)


def server_of_label(label: str) -> ResolvedServer:
    """The server an attempt recorded, to send its polls and downloads back to."""
    return ResolvedServer(EMBEDDED_BASE_URL if label == EMBEDDED_SERVER else label)


class ServerChangedError(Exception):
    """The experiment's attempts were sent to another server than the configured one.

    Nothing is paid for until the user chooses: start afresh on the new server, or declare
    that the new URL is the same server under another name.
    """

    def __init__(self, configured: str, others: Counter[str]) -> None:
        self.configured = configured
        self.others = others
        earlier = ", ".join(f"{label} ({count} variants)" for label, count in others.items())
        first = next(iter(others))
        super().__init__(
            f"This experiment's attempts were sent to {earlier}, but the configured server is "
            f"{configured}. Nothing was submitted. Choose one: run with --start-afresh to "
            f"submit every variant again on {configured} (the earlier attempts stay in the "
            f"lineage), or with --same-server-as {first} if {configured} is that same server "
            "under a new name (its attempts are then polled and downloaded there)."
        )


def other_servers(servers: Iterable[str | None], configured: str) -> Counter[str]:
    """How many of the given attempts' servers are not the configured one, by server."""
    return Counter(s for s in servers if s is not None and s != configured)
