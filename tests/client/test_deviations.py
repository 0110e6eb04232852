"""Reading compatible servers' Video records as contract objects."""

from __future__ import annotations

from typing import Any

import pytest

from remix_pipeline.client.deviations import Deviation, DeviationLog, normalise_video
from remix_pipeline.contract import dump_video
from tests.test_ledger import video


def record(**changes: Any) -> dict[str, Any]:
    return {**dump_video(video("video_x", status="in_progress", progress=40)), **changes}


def test_a_record_in_contract_shape_is_handed_on_as_it_came_with_nothing_noted() -> None:
    log = DeviationLog("http://server.test")
    sent = record()

    assert normalise_video(sent, log) is sent
    assert log.seen == {}


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"usage": {"seconds": 4}}, Deviation.EXTRA_FIELDS),
        ({"status": "processing"}, Deviation.STATUS_ALIAS),
        ({"progress": None}, Deviation.MISSING_FIELDS),
        ({"size": "1024*1024"}, Deviation.FREE_FORM_SIZE),
        ({"seconds": 4.0}, Deviation.FREE_FORM_SECONDS),
    ],
)
def test_a_record_off_the_contract_in_one_way_is_normalised_and_noted(
    changes: dict[str, Any], kind: Deviation
) -> None:
    log = DeviationLog("http://server.test")

    normalised = normalise_video(record(**changes), log)

    assert list(log.seen) == [kind]
    assert set(normalised) == set(record())
    assert normalised["status"] == "in_progress"


def test_a_record_without_a_prompt_gets_a_null_one_and_is_noted() -> None:
    log = DeviationLog("http://server.test")
    sent = record()
    del sent["prompt"]

    normalised = normalise_video(sent, log)

    assert normalised["prompt"] is None
    assert list(log.seen) == [Deviation.MISSING_FIELDS]


def test_an_unhashable_status_is_left_for_validation_to_refuse() -> None:
    normalised = normalise_video(record(status=["in_progress"]), DeviationLog("x"))

    assert normalised["status"] == ["in_progress"]
