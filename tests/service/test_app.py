"""Routes of the embedded Videos API, driven in-process with a settable clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from remix_pipeline.contract import ContentVariant, Video
from remix_pipeline.service import create_app, media
from remix_pipeline.service.app import DEFAULT_LIST_LIMIT
from tests.support.clock import FakeClock

SOURCE = "video_src_harbor"
ALL_KEYS = set(Video.model_fields)

Client = httpx.AsyncClient


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def _create(client: Client, **fields: object) -> dict[str, object]:
    response = await client.post("/v1/videos", json={"prompt": "a cat", **fields})
    assert response.status_code == 200, response.text
    return response.json()


async def _completed(client: Client, clock: FakeClock, **fields: object) -> dict[str, object]:
    video = await _create(client, **fields)
    clock.advance(10)
    return video


# create ----------------------------------------------------------------------------------


async def test_create_returns_a_queued_video_with_all_thirteen_keys(app_client: Client) -> None:
    response = await app_client.post("/v1/videos", json={"prompt": "a cat", "seconds": "8"})
    video = response.json()
    assert set(video) == ALL_KEYS
    assert video["status"] == "queued"
    assert video["seconds"] == "8"
    assert (video["size"], video["model"]) == ("720x1280", "sora-2")
    assert video["id"].startswith("video_") and len(video["id"]) == 6 + 32
    assert response.headers["openai-poll-after-ms"] == "20"


async def test_create_accepts_multipart_with_an_uploaded_reference_image(
    app_client: Client,
) -> None:
    response = await app_client.post(
        "/v1/videos",
        data={"prompt": "a cat", "size": "1280x720"},
        files={"input_reference": ("ref.png", b"\x89PNG...", "image/png")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["size"] == "1280x720"


async def test_multipart_reference_part_without_filename_is_not_a_file(
    app_client: Client,
) -> None:
    response = await app_client.post(
        "/v1/videos", files={"prompt": (None, "a cat"), "input_reference": (None, "http://x")}
    )
    assert response.status_code == 400
    error = _error(response)
    assert (error["param"], error["code"]) == ("input_reference", "invalid_type")


async def test_multipart_bracket_fields_become_a_reference_object(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos", data={"prompt": "a cat", "input_reference[file_id]": "file-123"}
    )
    assert response.status_code == 200, response.text


async def test_seconds_sent_as_an_integer_is_an_invalid_type(app_client: Client) -> None:
    response = await app_client.post("/v1/videos", json={"prompt": "a cat", "seconds": 8})
    error = _error(response)
    assert response.status_code == 400
    assert (error["param"], error["code"]) == ("seconds", "invalid_type")
    assert "got an integer" in str(error["message"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 32_001}, "prompt"),
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "a", "size": "640x480"}, "size"),
        ({"prompt": "a", "size": ""}, "size"),
        ({"prompt": "a", "seconds": "5"}, "seconds"),
        ({"prompt": "a", "colour": "red"}, "colour"),
        (
            {"prompt": "a", "input_reference": {"file_id": "f", "image_url": "http://x"}},
            "input_reference",
        ),
    ],
)
async def test_bad_create_body_is_a_400_naming_the_field(
    app_client: Client, body: dict[str, object], param: str
) -> None:
    response = await app_client.post("/v1/videos", json=body)
    assert response.status_code == 400
    assert _error(response)["param"] == param


async def test_malformed_json_is_a_400_envelope(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos", content=b'{"prompt": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response)["type"] == "invalid_request_error"


async def test_1080p_is_accepted_in_lenient_mode_and_refused_in_strict_mode(
    make_config, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    for mode, status in (("lenient", 200), ("strict", 400)):
        config = make_config(mode=mode, db_path=make_config().db_path.with_name(f"{mode}.db"))
        transport = httpx.ASGITransport(app=create_app(config, clock=clock))
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            body = {"prompt": "a", "size": "1920x1080", "seconds": "20"}
            response = await client.post("/v1/videos", json=body)
        assert response.status_code == status, mode


# list --------------------------------------------------------------------------------------


async def test_list_defaults_to_twenty_newest_first(app_client: Client) -> None:
    created = [(await _create(app_client, prompt=f"p{n}"))["id"] for n in range(25)]
    page = (await app_client.get("/v1/videos")).json()
    assert [v["id"] for v in page["data"]] == created[::-1][:DEFAULT_LIST_LIMIT]
    assert page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (created[-1], created[-20])


async def test_list_pages_with_after_until_has_more_is_false(app_client: Client) -> None:
    created = [(await _create(app_client, prompt=f"p{n}"))["id"] for n in range(5)]
    seen: list[str] = []
    params: dict[str, object] = {"limit": 2, "order": "asc"}
    while True:
        page = (await app_client.get("/v1/videos", params=params)).json()
        seen += [v["id"] for v in page["data"]]
        if not page["has_more"]:
            break
        params["after"] = page["last_id"]
    assert seen[-5:] == created


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"after": "video_unknown"}, "after"),
        ({"after": "../etc"}, "after"),
    ],
)
async def test_bad_list_query_is_a_400_naming_the_parameter(
    app_client: Client, params: dict[str, str], param: str
) -> None:
    response = await app_client.get("/v1/videos", params=params)
    assert response.status_code == 400
    assert _error(response)["param"] == param


# retrieve, unknown routes ------------------------------------------------------------------


async def test_retrieve_unknown_video_is_a_404(app_client: Client) -> None:
    response = await app_client.get("/v1/videos/video_" + "0" * 32)
    assert response.status_code == 404
    assert _error(response)["param"] == "video_id"


async def test_unknown_route_is_a_404_envelope(app_client: Client) -> None:
    response = await app_client.get("/v1/audio/speech")
    assert response.status_code == 404
    assert "Invalid URL" in str(_error(response)["message"])


async def test_wrong_method_is_a_405_envelope(app_client: Client) -> None:
    response = await app_client.put("/v1/videos")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


async def test_seeded_source_is_completed_and_never_expires(app_client: Client) -> None:
    video = (await app_client.get(f"/v1/videos/{SOURCE}")).json()
    assert (video["status"], video["expires_at"]) == ("completed", None)


async def test_every_response_carries_a_request_id(app_client: Client) -> None:
    ok = await app_client.get(f"/v1/videos/{SOURCE}")
    missing = await app_client.get("/v1/nothing")
    assert ok.headers["x-request-id"] != missing.headers["x-request-id"]


# delete ------------------------------------------------------------------------------------


async def test_deleting_an_unfinished_job_is_a_400(app_client: Client) -> None:
    video = await _create(app_client)
    response = await app_client.delete(f"/v1/videos/{video['id']}")
    assert response.status_code == 400
    assert (await app_client.get(f"/v1/videos/{video['id']}")).status_code == 200


async def test_deleting_a_completed_job_removes_it(app_client: Client, clock: FakeClock) -> None:
    video = await _completed(app_client, clock)
    response = await app_client.delete(f"/v1/videos/{video['id']}")
    assert response.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert (await app_client.get(f"/v1/videos/{video['id']}")).status_code == 404


# content -----------------------------------------------------------------------------------


async def test_content_before_completion_is_a_400(app_client: Client) -> None:
    video = await _create(app_client)
    response = await app_client.get(f"/v1/videos/{video['id']}/content")
    assert response.status_code == 400
    assert _error(response)["code"] == "video_not_ready"


async def test_content_of_a_failed_job_is_a_404(make_config, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    config = make_config(faults={"failure_rate": 1.0})
    transport = httpx.ASGITransport(app=create_app(config, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        video = await _completed(client, clock)
        assert (await client.get(f"/v1/videos/{video['id']}")).json()["status"] == "failed"
        assert (await client.get(f"/v1/videos/{video['id']}/content")).status_code == 404


async def test_content_after_expiry_is_a_404(app_client: Client, clock: FakeClock) -> None:
    video = await _completed(app_client, clock)
    clock.advance(3600)
    response = await app_client.get(f"/v1/videos/{video['id']}/content")
    assert response.status_code == 404
    assert "expired" in str(_error(response)["message"])


async def test_unknown_variant_is_a_400(app_client: Client) -> None:
    response = await app_client.get(f"/v1/videos/{SOURCE}/content", params={"variant": "gif"})
    assert (response.status_code, _error(response)["param"]) == (400, "variant")


@pytest.mark.parametrize("variant", list(ContentVariant))
async def test_content_is_the_rendered_media_with_its_content_type(
    app_client: Client, clock: FakeClock, tmp_path: Path, variant: ContentVariant
) -> None:
    video = await _completed(app_client, clock, size="1280x720")
    response = await app_client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": variant.value}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == variant.media_type
    config = app_client.app.state.service.config  # type: ignore[attr-defined]
    job = app_client.app.state.service.store.get_video(video["id"])  # type: ignore[attr-defined]
    spec = media.MediaSpec(
        video_id=job.id,
        prompt=job.prompt,
        motion_seed=job.motion_seed,
        width=1280,
        height=720,
        seconds=4,
        scale=config.media_scale,
        fps=config.media_fps,
    )
    expected = media.render_media(spec, tmp_path / "independent")
    assert response.content == expected[variant].read_bytes()


async def test_concurrent_first_downloads_agree_and_leave_no_claim_behind(
    app_client: Client, clock: FakeClock
) -> None:
    video = await _completed(app_client, clock)
    url = f"/v1/videos/{video['id']}/content"
    responses = await asyncio.gather(*(app_client.get(url) for _ in range(4)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    ahead = app_client.app.state.service.ahead  # type: ignore[attr-defined]
    claimed, mine = ahead.claim(video["id"])
    ahead.release(video["id"], claimed)
    assert mine  # no render of it is left claimed


# remix, edit, extension ----------------------------------------------------------------------


async def test_remix_inherits_model_size_seconds_and_motion_from_its_source(
    app_client: Client,
) -> None:
    response = await app_client.post(f"/v1/videos/{SOURCE}/remix", json={"prompt": "in snow"})
    remix = response.json()
    source = (await app_client.get(f"/v1/videos/{SOURCE}")).json()
    assert remix["remixed_from_video_id"] == SOURCE
    assert (remix["model"], remix["size"], remix["seconds"]) == (
        source["model"],
        source["size"],
        source["seconds"],
    )
    assert remix["prompt"] == "in snow"
    store = app_client.app.state.service.store  # type: ignore[attr-defined]
    assert store.get_video(remix["id"]).motion_seed == store.get_video(SOURCE).motion_seed
    assert response.headers["openai-poll-after-ms"] == "20"


async def test_remix_accepts_multipart(app_client: Client) -> None:
    response = await app_client.post(f"/v1/videos/{SOURCE}/remix", data={"prompt": "at dusk"})
    assert (response.status_code, response.json()["prompt"]) == (200, "at dusk")


async def test_remix_of_an_unfinished_video_is_a_400(app_client: Client) -> None:
    video = await _create(app_client)
    response = await app_client.post(f"/v1/videos/{video['id']}/remix", json={"prompt": "x"})
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_video_status"


async def test_remix_of_an_unknown_video_is_a_404(app_client: Client) -> None:
    response = await app_client.post("/v1/videos/video_nope/remix", json={"prompt": "x"})
    assert response.status_code == 404


async def test_edit_by_json_and_by_bracketed_multipart_reference(app_client: Client) -> None:
    as_json = await app_client.post(
        "/v1/videos/edits", json={"video": {"id": SOURCE}, "prompt": "add fog"}
    )
    as_form = await app_client.post(
        "/v1/videos/edits", data={"video[id]": SOURCE, "prompt": "add fog"}
    )
    for response in (as_json, as_form):
        assert response.status_code == 200, response.text
        assert response.json()["remixed_from_video_id"] == SOURCE


async def test_edit_of_an_upload_that_is_not_a_video_is_a_clear_400(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos/edits",
        data={"prompt": "add fog"},
        files={"video": ("clip.mp4", b"data", "video/mp4")},
    )
    assert (response.status_code, _error(response)["param"]) == (400, "video")
    assert _error(response)["code"] == "unsupported_file_type"


async def test_extension_seconds_is_the_stitched_total(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos/extensions",
        json={"video": {"id": "video_src_city"}, "prompt": "keep going", "seconds": "12"},
    )
    assert response.json()["seconds"] == "20"


async def test_extension_beyond_120_seconds_is_a_400(app_client: Client, clock: FakeClock) -> None:
    video_id = SOURCE
    for _ in range(5):
        body = {"video": {"id": video_id}, "prompt": "more", "seconds": "20"}
        video_id = (await app_client.post("/v1/videos/extensions", json=body)).json()["id"]
        clock.advance(10)
    body = {"video": {"id": video_id}, "prompt": "more", "seconds": "20"}
    response = await app_client.post("/v1/videos/extensions", json=body)
    assert (response.status_code, _error(response)["param"]) == (400, "seconds")


async def test_extension_without_seconds_is_a_400(app_client: Client) -> None:
    body = {"video": {"id": SOURCE}, "prompt": "more"}
    response = await app_client.post("/v1/videos/extensions", json=body)
    assert (response.status_code, _error(response)["param"]) == (400, "seconds")


# characters --------------------------------------------------------------------------------


async def test_character_is_created_from_an_upload_and_fetched_by_id(app_client: Client) -> None:
    created = await app_client.post(
        "/v1/videos/characters",
        data={"name": "Captain"},
        files={"video": ("me.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")},
    )
    character = created.json()
    assert character["id"].startswith("char_") and character["name"] == "Captain"
    fetched = await app_client.get(f"/v1/videos/characters/{character['id']}")
    assert fetched.json() == character


async def test_character_from_json_is_a_400(app_client: Client) -> None:
    response = await app_client.post("/v1/videos/characters", json={"name": "x", "video": "y"})
    assert (response.status_code, _error(response)["code"]) == (400, "unsupported_content_type")


async def test_character_video_part_without_filename_is_a_400(app_client: Client) -> None:
    response = await app_client.post(
        "/v1/videos/characters", files={"name": (None, "x"), "video": (None, "bytes")}
    )
    assert (response.status_code, _error(response)["param"]) == (400, "video")


async def test_unknown_character_is_a_404(app_client: Client) -> None:
    assert (await app_client.get("/v1/videos/characters/char_nope")).status_code == 404


# stats -------------------------------------------------------------------------------------


async def test_stats_count_requests_per_operation_and_status(app_client: Client) -> None:
    video = await _create(app_client)
    for _ in range(3):
        await app_client.get(f"/v1/videos/{video['id']}")
    await app_client.get("/v1/videos/video_nope")
    stats = (await app_client.get("/_admin/stats")).json()
    assert stats["operations"]["retrieve"] == 4
    assert stats["by_operation"]["retrieve"] == {"200": 3, "404": 1}
    assert stats["by_operation"]["create"] == {"200": 1}
    assert app_client.app.state.stats.operations["create"] == 1  # type: ignore[attr-defined]
