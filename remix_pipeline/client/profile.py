"""What the client has learned about one server's ways, shared by every client of a process.

A sensor tick or a run step opens a client per call; what one of them found out (the server
is a gateway, its list endpoint is unusable, its list ignores `after`) should not be found
out again, with a failed request, by the next.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from remix_pipeline.client.gateways import Gateway


@dataclass
class ServerProfile:
    gateway: Gateway | None = None
    answered: bool = False  # any answer seen, so `gateway` means something
    list_unavailable: bool = False
    list_ignores_cursor: bool = False
    # Headers seen on any answer, for `remix-pipeline check-server` to report.
    poll_after_seen: bool = False
    retry_headers_seen: set[str] = field(default_factory=set)

    @property
    def sends_model_on_derivations(self) -> bool:
        """LiteLLM routes a remix, edit or extension of a raw upstream id only by a body
        `model`; a server that speaks the contract itself refuses the unknown field."""
        return self.gateway is Gateway.LITELLM

    @property
    def serves_raw_ids(self) -> bool:
        """Whether a retrieve or content request for an id the gateway did not issue works."""
        return self.gateway is not Gateway.LITELLM


_PROFILES: dict[str, ServerProfile] = {}
_LOCK = threading.Lock()


def shared_profile(server: str) -> ServerProfile:
    with _LOCK:
        return _PROFILES.setdefault(server, ServerProfile())
