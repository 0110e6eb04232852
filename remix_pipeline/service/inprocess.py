"""The embedded service reached in-process, failing the way a socket would.

A dropped response makes the app raise after its status line; over a socket the client sees
the connection close. Here the same exception is turned into `httpx.RemoteProtocolError`, so
client retry and orphan-recovery code is exercised identically in both modes.
"""

from __future__ import annotations

import httpx

from remix_pipeline.service.app import create_app
from remix_pipeline.service.config import ServiceConfig


class EmbeddedTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a complete response.", request=request
            ) from exc


def embedded_transport(config: ServiceConfig) -> httpx.AsyncBaseTransport:
    return EmbeddedTransport(app=create_app(config))
