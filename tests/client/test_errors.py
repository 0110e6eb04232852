"""Typed errors: the right class per status, and messages a person can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from remix_pipeline.client.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContractViolationError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
    status_error_class,
)
from remix_pipeline.contract import Video
from tests.support.fakes import video_json


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIStatusError),
    ],
)
def test_each_status_maps_to_its_error_class(status: int, expected: type) -> None:
    assert status_error_class(status) is expected


def test_status_error_message_names_status_type_code_and_request_id() -> None:
    error = NotFoundError(
        "No video found",
        status_code=404,
        type="invalid_request_error",
        code="nf",
        request_id="req_1",
    )
    assert str(error) == "HTTP 404 invalid_request_error code=nf: No video found (request id req_1)"


def validation_error(**changes: object) -> ValidationError:
    data = {**video_json(), **changes}
    try:
        Video.model_validate(data)
    except ValidationError as error:
        return error
    raise AssertionError("the data was valid")


def test_contract_violation_names_the_field_and_the_allowed_values() -> None:
    error = ContractViolationError.from_validation("Video", validation_error(status="processing"))
    assert "Video.status: 'processing' is not one of" in str(error)
    assert "'queued'" in str(error)


def test_contract_violation_reports_a_missing_field() -> None:
    data = video_json()
    del data["created_at"]
    try:
        Video.model_validate(data)
    except ValidationError as raw:
        error = ContractViolationError.from_validation("Video", raw)
    assert "Video.created_at: missing" in str(error)


def test_contract_violation_text_is_not_a_pydantic_dump() -> None:
    error = ContractViolationError.from_validation("Video", validation_error(progress="lots"))
    assert "errors.pydantic.dev" not in str(error)
    assert "Video.progress: 'lots'" in str(error)
    assert error.problems == (str(error.problems[0]),)


def test_outcome_unknown_carries_what_the_ledger_needs_to_find_the_job() -> None:
    cause = TimeoutError("read timed out")
    error = OutcomeUnknownError(
        operation="remix", source_video_id="video_1", prompt="p", sent_at=12.5, cause=cause
    )
    assert (error.source_video_id, error.prompt, error.sent_at, error.cause) == (
        "video_1",
        "p",
        12.5,
        cause,
    )
    assert "not retried" in str(error)
