"""The retry rules: which failures may be repeated, and how long to wait."""

from __future__ import annotations

import email.utils
import random

import httpx
import pytest

from remix_pipeline.client.retry import (
    RetryPolicy,
    server_delay,
    status_is_retryable,
    transport_error_is_retryable,
)


def test_retry_after_ms_wins_over_retry_after_seconds() -> None:
    assert server_delay({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


def test_retry_after_in_seconds_allows_fractions() -> None:
    assert server_delay({"retry-after": "1.5"}) == 1.5


def test_retry_after_as_http_date_is_seconds_from_now() -> None:
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert server_delay({"retry-after": date}, now=lambda: 1_000_000.0) == 30.0


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    date = email.utils.formatdate(999_000, usegmt=True)
    assert server_delay({"retry-after": date}, now=lambda: 1_000_000.0) == 0.0


@pytest.mark.parametrize(
    "headers",
    [{}, {"retry-after": "soon"}, {"retry-after": "-3"}, {"retry-after-ms": "nan"}],
)
def test_missing_or_unusable_retry_headers_name_no_delay(headers: dict[str, str]) -> None:
    assert server_delay(headers) is None


def test_garbage_retry_after_ms_falls_back_to_retry_after() -> None:
    assert server_delay({"retry-after-ms": "x", "retry-after": "2"}) == 2.0


@pytest.mark.parametrize("status", [408, 409, 429])
def test_refused_statuses_are_retryable_even_for_posts(status: int) -> None:
    assert status_is_retryable(status, safe_to_repeat=False)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable_only_for_safe_requests(status: int) -> None:
    assert status_is_retryable(status, safe_to_repeat=True)
    assert not status_is_retryable(status, safe_to_repeat=False)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_are_never_retryable(status: int) -> None:
    assert not status_is_retryable(status, safe_to_repeat=True)


@pytest.mark.parametrize(
    "error_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout]
)
def test_errors_before_sending_are_retryable_for_posts(
    error_type: type[httpx.RequestError],
) -> None:
    assert transport_error_is_retryable(error_type("x"), safe_to_repeat=False)


@pytest.mark.parametrize(
    "error_type", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError]
)
def test_errors_after_sending_are_not_retryable_for_posts(
    error_type: type[httpx.RequestError],
) -> None:
    assert not transport_error_is_retryable(error_type("x"), safe_to_repeat=False)
    assert transport_error_is_retryable(error_type("x"), safe_to_repeat=True)


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(
        max_attempts=10,
        max_retry_seconds=100,
        base_seconds=0.5,
        max_backoff_seconds=8.0,
        rng=random.Random(7),
    )
    for retries_done, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 8.0)]:
        draws = [policy.backoff(retries_done) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert min(draws) < ceiling * 0.2 and max(draws) > ceiling * 0.8


def test_budget_stops_after_max_attempts() -> None:
    budget = RetryPolicy(max_attempts=3, max_retry_seconds=100).start()
    assert budget.next_delay(0.01) is not None
    assert budget.next_delay(0.01) is not None
    assert budget.next_delay(0.01) is None


def test_budget_refuses_a_server_wait_past_the_time_budget() -> None:
    now = [0.0]
    policy = RetryPolicy(max_attempts=10, max_retry_seconds=10, clock=lambda: now[0])
    budget = policy.start()
    now[0] = 4.0
    assert 5.0 <= budget.next_delay(5.0) <= 6.0  # type: ignore[operator]
    now[0] = 9.0
    assert budget.next_delay(2.0) is None


def test_server_named_delay_is_never_shortened_but_spread_a_little() -> None:
    policy = RetryPolicy(max_attempts=1000, max_retry_seconds=1e9, rng=random.Random(3))
    budget = policy.start()
    delays = [budget.next_delay(2.0) for _ in range(200)]
    assert all(2.0 <= d <= 2.5 for d in delays)  # type: ignore[operator]
    assert len(set(delays)) > 100


def test_a_server_delay_of_milliseconds_is_spread_over_a_quarter_second() -> None:
    policy = RetryPolicy(max_attempts=1000, max_retry_seconds=1e9, rng=random.Random(5))
    budget = policy.start()
    delays = [budget.next_delay(0.006) for _ in range(200)]
    assert all(0.006 <= d <= 0.256 for d in delays)  # type: ignore[operator]
    assert max(delays) - min(delays) > 0.2  # type: ignore[operator,type-var]
