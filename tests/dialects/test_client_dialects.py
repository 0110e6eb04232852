"""The client reads every dialect's deviations as contract objects, warning once per kind."""

from __future__ import annotations

import logging

import pytest

from remix_pipeline.client import Deviation
from remix_pipeline.client.gateways import Gateway, is_gateway_encoded, same_video
from remix_pipeline.contract import VideoStatus
from tests.support.embedded import client_for, until
from tests.support.servers import MakeConfig

SOURCE = "video_src_harbor"


async def test_litellm_is_recognised_and_a_raw_source_is_remixed_through_it(
    make_config: MakeConfig, caplog: pytest.LogCaptureFixture
):
    """The gateway is learned from a request that starts no job; the remix of a raw source
    then names the model LiteLLM routes by, and its answer is read through the encoding."""
    caplog.set_level(logging.WARNING, logger="remix_pipeline.client")
    async with client_for(make_config("litellm", run_seconds=0.5)) as client:
        profile = await client.learn_server()
        made = await client.remix(SOURCE, "Make it noir")
        running = await until(client, made.id, "in_progress")
        done = await until(client, made.id, "completed")
    assert profile.gateway is Gateway.LITELLM
    assert is_gateway_encoded(made.id)
    assert running.status is VideoStatus.IN_PROGRESS
    assert done.remixed_from_video_id == SOURCE
    assert same_video(done.id, made.id)
    # The real proxy passes the status through: nothing to alias.
    assert Deviation.STATUS_ALIAS not in client.deviations.seen
    gateway_warnings = [r for r in caplog.records if "a gateway in front" in r.getMessage()]
    assert len(gateway_warnings) == 1


async def test_litellm_video_objects_without_prompt_and_with_usage_read_as_contract_objects(
    litellm_client,
):
    await litellm_client.learn_server()
    made = await litellm_client.remix(SOURCE, "Make it noir")
    video = await litellm_client.retrieve(made.id)
    assert video.prompt is None
    assert video.error is None
    assert video.model_extra == {}
    assert {Deviation.MISSING_FIELDS, Deviation.EXTRA_FIELDS} <= set(litellm_client.deviations.seen)


async def test_litellm_re_encoded_ids_round_trip_through_retrieve_and_download(
    litellm_client, tmp_path
):
    await litellm_client.learn_server()
    made = await litellm_client.remix(SOURCE, "Make it noir")
    await until(litellm_client, made.id, "completed")
    result = await litellm_client.download(made.id, "video", tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes()[4:8] == b"ftyp"
    assert result is not None


async def test_litellm_list_is_learned_unusable_and_jobs_are_followed_one_by_one(
    make_config: MakeConfig,
):
    async with client_for(make_config("litellm")) as client:
        await client.learn_server()
        made = [await client.remix(SOURCE, f"Variant {i}") for i in range(3)]
        found = await client.bulk_status([v.id for v in made])
    assert set(found) == {v.id for v in made}
    assert client.profile.list_unavailable
    assert Deviation.NO_LIST in client.deviations.seen


async def test_sglang_list_without_cursors_still_finds_jobs_in_bulk(make_config: MakeConfig):
    async with client_for(make_config("sglang")) as client:
        made = [await client.remix(SOURCE, f"Variant {i}") for i in range(3)]
        found = await client.bulk_status([v.id for v in made])
    assert set(found) == {v.id for v in made}
    assert Deviation.LIST_WITHOUT_CURSORS in client.deviations.seen


async def test_sglang_jobs_go_from_queued_to_completed(make_config: MakeConfig):
    async with client_for(make_config("sglang")) as client:
        made = await client.remix(SOURCE, "Make it noir")
        done = await until(client, made.id, "completed")
    assert made.status is VideoStatus.QUEUED
    assert done.progress == 100


async def test_vllm_free_form_size_and_numeric_seconds_are_kept_as_text(make_config: MakeConfig):
    async with client_for(make_config("vllm")) as client:
        video = await client.retrieve(SOURCE)
    assert "x" in video.size and video.size not in ("720x1280", "1280x720")
    assert video.seconds.isdigit()
    assert {Deviation.FREE_FORM_SIZE, Deviation.FREE_FORM_SECONDS} <= set(client.deviations.seen)


@pytest.mark.parametrize(
    ("dialect", "supported"),
    [("openai", True), ("litellm", True), ("sglang", True), ("no-list", True), ("vllm", False)],
)
async def test_remix_probe_tells_which_servers_can_remix_without_creating_a_job(
    make_config: MakeConfig, dialect: str, supported: bool
):
    # The jobs are counted without the dialect (LiteLLM and no-list cannot list them).
    async with client_for(make_config("openai")) as direct:
        before = [v.id async for v in direct.list()]
        async with client_for(make_config(dialect)) as client:
            assert await client.supports_remix() is supported
        after = [v.id async for v in direct.list()]
    assert before == after


async def test_no_list_server_falls_back_to_polling_each_job(make_config: MakeConfig):
    async with client_for(make_config("no-list")) as client:
        made = [await client.remix(SOURCE, f"Variant {i}") for i in range(3)]
        found = await client.bulk_status([v.id for v in made])
    assert set(found) == {v.id for v in made}
    assert client.stats.requests["retrieve"] == 3
    assert Deviation.NO_LIST in client.deviations.seen
