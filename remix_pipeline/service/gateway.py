"""The ASGI layer in front of the routes: request ids, counters, auth and injected faults.

Order per request: count it, check the bearer key, then (for `/v1` only) the rate limit, the
added latency, the injected 5xx and a spike (the request is read whole, then held), then the
route. A successful answer may be garbled (its JSON broken once the body is whole), and a
successful job-creating one may be dropped: its status line goes out, then `ResponseDropped`
is raised so the server closes the connection mid-response, exactly what a client sees when
a network path dies after the job was created.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remix_pipeline.service.errors import SERVER_ERROR, ApiError
from remix_pipeline.service.faults import FaultInjector, Garbling, garbled
from remix_pipeline.service.stats import ServiceStats

logger = logging.getLogger(__name__)

JOB_CREATING = frozenset({"create", "remix", "edit", "extension"})
STATUS_ANSWERS = frozenset({"retrieve", "list"})
GARBLEABLE = JOB_CREATING | STATUS_ANSWERS
UNKNOWN_OPERATION = "unknown"


class ResponseDropped(Exception):
    """Raised after a status line was sent, to cut the response off (an injected fault)."""


class Gateway:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        api_key: str | None,
        faults: FaultInjector,
        stats: ServiceStats,
        clock: Callable[[], float],
    ) -> None:
        self.app = app
        self.routes = routes
        self._api_key = api_key.encode("utf-8") if api_key else None
        self.faults = faults
        self.stats = stats
        self.clock = clock

    def operation(self, scope: Scope) -> str:
        partial = UNKNOWN_OPERATION
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return getattr(route, "name", UNKNOWN_OPERATION)
            if match is Match.PARTIAL and partial == UNKNOWN_OPERATION:
                partial = getattr(route, "name", UNKNOWN_OPERATION)
        return partial

    def auth_error(self, scope: Scope) -> ApiError | None:
        if self._api_key is None:
            return None
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        scheme, _, token = header.partition(b" ")
        if not header or scheme.lower() != b"bearer" or not token.strip():
            return ApiError(
                401,
                "You didn't provide an API key. Send it in an Authorization header using "
                "Bearer auth (Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        if not hmac.compare_digest(token.strip(), self._api_key):
            return ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation = self.operation(scope)
        request_id = "req_" + secrets.token_hex(16)
        self.stats.request(operation)
        started = False

        async def send_counted(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("x-request-id", request_id)
                self.stats.response(operation, message["status"])
            await send(message)

        rejection = self.auth_error(scope) or await self._fault(scope)
        if rejection is not None:
            await rejection.response()(scope, receive, send_counted)
            return
        if _is_api(scope):
            spike = self.faults.spike_seconds()
            if spike > 0:
                receive = await _read_whole(receive)
                await asyncio.sleep(spike)

        dropped = False

        async def send_maybe_dropped(message: Message) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start":
                if (
                    operation in JOB_CREATING
                    and message["status"] == 200
                    and self.faults.drop_response()
                ):
                    dropped = True
            elif dropped:
                return
            await send_counted(message)

        garbling: Garbling | None = None
        held_start: Message | None = None
        held_body: list[bytes] = []

        async def send_maybe_garbled(message: Message) -> None:
            """Hold a garbled answer until its body is whole, then send it broken."""
            nonlocal garbling, held_start
            if message["type"] == "http.response.start":
                if operation in GARBLEABLE and message["status"] == 200:
                    garbling = self.faults.garbling()
                if operation in STATUS_ANSWERS and message["status"] == 200 and garbling is None:
                    garbling = Garbling.ANOTHER_VIDEO if self.faults.misdirects() else None
                if garbling is not None:
                    held_start = message
                    return
            elif garbling is not None and message["type"] == "http.response.body":
                held_body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                assert held_start is not None
                body = garbled(b"".join(held_body), garbling)
                MutableHeaders(scope=held_start)["content-length"] = str(len(body))
                await send_maybe_dropped(held_start)
                message = {"type": "http.response.body", "body": body}
            await send_maybe_dropped(message)

        try:
            await self.app(scope, receive, send_maybe_garbled)
        except Exception:
            if started:
                raise
            logger.exception("unhandled error in %s", operation)
            response = ApiError(
                500, "The server had an error while processing your request.", type=SERVER_ERROR
            ).response()
            await response(scope, receive, send_counted)
            return
        if dropped:
            self.stats.drop(operation)
            raise ResponseDropped(f"{operation} response dropped by fault injection")

    async def _fault(self, scope: Scope) -> ApiError | None:
        if not _is_api(scope):
            return None
        limited = self.faults.admit(self.clock())
        if limited is not None:
            return self.faults.rate_limit_error(limited)
        if self.faults.latency_seconds > 0:
            await asyncio.sleep(self.faults.latency_seconds)
        return self.faults.server_error()


def _is_api(scope: Scope) -> bool:
    path: str = scope["path"]
    return path == "/v1" or path.startswith("/v1/")


async def _read_whole(receive: Receive) -> Receive:
    """Take the request body off the connection now and replay it later: a held request was
    received, so the client leaving during the hold does not stop it from being handled."""
    received: list[Message] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return received.pop(0) if received else await receive()

    return replay
