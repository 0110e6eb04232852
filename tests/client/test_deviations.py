"""Reading compatible servers' Video records as contract objects, as the client does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from remix_pipeline.client import Deviation
from remix_pipeline.client.deviations import DeviationLog, needs_no_normalising
from remix_pipeline.contract import Video
from tests.support.fakes import Recorder, fake_client, video_json

# One departure from the contract each, and the kind of deviation it is.
DEPARTURES: list[tuple[dict[str, Any], Deviation]] = [
    ({"usage": {"seconds": 4}}, Deviation.EXTRA_FIELDS),
    ({"status": "processing"}, Deviation.STATUS_ALIAS),
    ({"progress": None}, Deviation.MISSING_FIELDS),
    ({"size": "1024*1024"}, Deviation.FREE_FORM_SIZE),
    ({"seconds": 4.0}, Deviation.FREE_FORM_SECONDS),
]


def serving(*records: dict[str, Any]) -> Recorder:
    """A server that answers each retrieval with the next record, the last one forever."""
    script = list(records)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=script.pop(0) if len(script) > 1 else script[0])

    return Recorder(handler)


async def test_a_record_in_contract_shape_is_read_with_no_deviation_noted() -> None:
    sent = video_json(status="in_progress")
    async with fake_client(serving(sent)) as client:
        video = await client.retrieve("video_1")

    assert video.model_dump(mode="json") == sent
    assert client.deviations.seen == {}


@pytest.mark.parametrize(("changes", "kind"), DEPARTURES)
async def test_a_record_off_the_contract_is_normalised_and_its_deviation_noted(
    changes: dict[str, Any], kind: Deviation
) -> None:
    async with fake_client(serving({**video_json(status="in_progress"), **changes})) as client:
        video = await client.retrieve("video_1")

    assert list(client.deviations.seen) == [kind]
    assert video.status.value == "in_progress"
    assert not video.model_extra


def test_a_server_counts_as_reshaping_once_a_record_needed_it_not_for_a_gateway() -> None:
    log = DeviationLog("http://server.test")
    log.note(Deviation.GATEWAY, "litellm")
    assert not log.reshapes

    log.note(Deviation.EXTRA_FIELDS, "usage")
    assert log.reshapes


@pytest.mark.parametrize(
    "changes",
    [{"usage": {}}, {"size": "1024*1024"}, {"error": {"code": "", "message": "no"}}],
)
def test_a_record_that_reads_but_differs_from_its_normalised_form_needs_normalising(
    changes: dict[str, Any],
) -> None:
    assert not needs_no_normalising(Video.model_validate({**video_json(), **changes}))
