"""Typed failures of the Videos API client.

Callers branch on the type, never on message text. Messages are written for a person and never
carry the API key, a request's headers or a pydantic traceback.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from remix_pipeline.contract import InvalidIdError


class VideosAPIError(Exception):
    """Base of every error the client raises on purpose."""


class InvalidVideoIdError(InvalidIdError, VideosAPIError):
    """An id that may not enter a URL path; nothing was sent."""


class InvalidArgumentError(ValueError, VideosAPIError):
    """A call argument the client refuses before sending anything."""


class APIStatusError(VideosAPIError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"HTTP {self.status_code}"]
        if self.type:
            parts.append(self.type)
        if self.code:
            parts.append(f"code={self.code}")
        if self.param:
            parts.append(f"param={self.param}")
        text = f"{' '.join(parts)}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class RequestTimeoutStatusError(APIStatusError):
    """408: the server gave up waiting for the request."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429, after the client's retries and time budget."""


class ServerError(APIStatusError):
    """5xx."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutStatusError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)


class TransportError(VideosAPIError):
    """A safe request that could not get an answer within its attempts and time budget."""


class RequestTimeoutError(TransportError):
    """The last attempt timed out."""


class ConnectionFailedError(TransportError):
    """The last attempt could not connect or lost its connection."""


class ResponseTooLargeError(VideosAPIError):
    """A response body over the configured cap; it was not read into memory."""


class CapabilityError(VideosAPIError):
    """The server lacks an operation the pipeline needs; found out before any paid call."""


class ListUnavailableError(CapabilityError):
    """The server cannot list its videos (no route, or a gateway that cannot route a list).

    Jobs are then followed one by one, and a job whose creation answer was lost cannot be
    found: the unknown-outcome policy decides, once the listing grace has passed.
    """


class ContractViolationError(VideosAPIError):
    """The server's response deviates from the Videos API contract."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message)

    @classmethod
    def from_validation(cls, model_name: str, error: ValidationError) -> ContractViolationError:
        problems = tuple(_describe_problem(model_name, item) for item in error.errors())
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return cls(f"server response breaks the contract: {shown}{more}", problems=problems)


def _describe_problem(model_name: str, item: Any) -> str:
    where = ".".join([model_name, *(str(part) for part in item.get("loc", ()))])
    kind = item.get("type", "")
    ctx = item.get("ctx") or {}
    given = _short(item.get("input"))
    if kind == "missing":
        return f"{where}: missing"
    if kind in ("enum", "literal_error") and "expected" in ctx:
        return f"{where}: {given} is not one of {ctx['expected']}"
    return f"{where}: {given}: {item.get('msg', 'invalid')}"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OutcomeUnknownError(VideosAPIError):
    """A POST that may have created a paid job; it was not repeated.

    Whoever owns exactly-once (the ledger) must look for the job with `GET /videos`, matching
    source_video_id and prompt among jobs created after sent_at, before submitting again.
    `job_id` is set when the answer broke the contract but still named the job it created:
    that job is then known, and is recorded rather than looked for.
    """

    def __init__(
        self,
        *,
        operation: str,
        source_video_id: str | None,
        prompt: str,
        sent_at: float,
        cause: BaseException,
        job_id: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.operation = operation
        self.source_video_id = source_video_id
        self.prompt = prompt
        self.sent_at = sent_at
        self.cause = cause
        source = f" of {source_video_id}" if source_video_id else ""
        super().__init__(
            f"{operation}{source} may or may not have created a job "
            f"({type(cause).__name__}: {_cause_text(cause)}); it was not retried"
        )


def _cause_text(cause: BaseException) -> str:
    text = str(cause) or "no detail"
    return text if len(text) <= 200 else text[:197] + "..."
