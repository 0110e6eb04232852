"""Cost estimates by model, size and seconds."""

import pytest

from remix_pipeline.pricing import estimate_cost_usd


@pytest.mark.parametrize(
    ("model", "size", "seconds", "expected"),
    [
        ("sora-2", "720x1280", "4", 0.40),
        ("sora-2", "1280x720", "12", 1.20),
        ("sora-2-pro", "1280x720", "8", 2.40),
        ("sora-2-pro", "1792x1024", "8", 4.00),
        ("sora-2-pro", "1920x1080", "4", 2.80),
        ("sora-2-2025-12-08", "720x1280", "4", 0.40),
        ("sora-2-pro-2025-10-06", "1024x1792", "4", 2.00),
    ],
    ids=["sora2-portrait", "sora2-12s", "pro-720p", "pro-1024p", "pro-1080p", "dated", "pro-dated"],
)
def test_cost_is_seconds_times_the_rate_for_model_and_size(model, size, seconds, expected):
    assert estimate_cost_usd(model, size, seconds) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("model", "size", "seconds"),
    [
        ("wan-2.2", "1280x720", "4"),
        ("sora-2", "1280x720", "x"),
        (None, "1280x720", "4"),
        ("sora-2", "1280x720", "-4"),
        ("sora-2-pro", "640x480", "4"),
    ],
    ids=["unknown-model", "bad-seconds", "no-model", "negative", "unpriced-size"],
)
def test_cost_is_unknown_rather_than_wrong(model, size, seconds):
    assert estimate_cost_usd(model, size, seconds) is None
