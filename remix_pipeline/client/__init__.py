"""Async client for servers that speak the OpenAI Videos API contract."""

from remix_pipeline.client.client import (
    EMBEDDED_BASE_URL,
    EMBEDDED_SERVER,
    VideosClient,
    server_label,
)
from remix_pipeline.client.deviations import Deviation, DeviationLog
from remix_pipeline.client.download import DownloadResult
from remix_pipeline.client.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CapabilityError,
    ConflictError,
    ConnectionFailedError,
    ContractViolationError,
    InvalidArgumentError,
    InvalidVideoIdError,
    ListUnavailableError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    RequestTimeoutStatusError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
    VideosAPIError,
)
from remix_pipeline.client.limiter import RateLimiter, shared_limiter
from remix_pipeline.client.settings import ClientSettings
from remix_pipeline.client.stats import ClientStats

__all__ = [
    "EMBEDDED_BASE_URL",
    "EMBEDDED_SERVER",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "CapabilityError",
    "ClientSettings",
    "ClientStats",
    "ConflictError",
    "ConnectionFailedError",
    "ContractViolationError",
    "Deviation",
    "DeviationLog",
    "DownloadResult",
    "InvalidArgumentError",
    "InvalidVideoIdError",
    "ListUnavailableError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiter",
    "RequestTimeoutError",
    "RequestTimeoutStatusError",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "UnprocessableEntityError",
    "VideosAPIError",
    "VideosClient",
    "server_label",
    "shared_limiter",
]
