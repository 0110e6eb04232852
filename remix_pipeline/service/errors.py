"""OpenAI error envelopes: every error the service sends, for any cause, has this one shape.

The official SDK unwraps `body["error"]` and maps the status to its exception classes, so the
shape and the status are what make `BadRequestError`, `NotFoundError` and friends work.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    """An error answer; raised anywhere in a handler and rendered as an envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(404, message, param=param, code="not_found")


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in the OpenAI shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
        return ApiError(404, message, code="unknown_url").response()
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
        headers = {**(exc.headers or {}), **_allow(request)}
        return ApiError(405, message, code="method_not_allowed", headers=headers).response()
    return ApiError(exc.status_code, str(exc.detail), headers=exc.headers).response()


def _allow(request: Request) -> dict[str, str]:
    """`Allow` with every method served on the request's path. Starlette's own names only the
    methods of the first route whose path matched, but `GET` and `POST /v1/videos` are two
    routes, and so are `GET` and `DELETE /v1/videos/{video_id}`."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return {"Allow": ", ".join(sorted(methods))} if methods else {}
