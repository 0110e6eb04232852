"""An edit and an extension (issue 12) through the real LiteLLM proxy, plain config: of a
video the proxy made (its encoded id) and of a raw upstream source (routed by the body
`model` the client adds for it), each made once at the upstream."""

from __future__ import annotations

import asyncio
import secrets

from remix_pipeline.client import ClientSettings, VideosClient
from remix_pipeline.client.gateways import upstream_id
from remix_pipeline.contract import Video
from tests.support.gateway import Gateway


async def finished(client: VideosClient, video: Video) -> Video:
    for _ in range(300):
        if video.is_terminal:
            return video
        await asyncio.sleep(0.1)
        video = await client.retrieve(video.id)
    raise AssertionError(f"{video.id} did not finish")


async def test_an_edit_and_an_extension_complete_through_the_plain_config(
    gateway: Gateway, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", gateway.master_key)
    tag = secrets.token_hex(4)
    settings = ClientSettings(base_url=gateway.base_url, max_attempts=2)
    async with VideosClient.from_settings(settings) as client:
        await client.learn_server()
        made = await finished(
            client, await client.create(f"A lighthouse [{tag}]", model="sora-2", seconds="4")
        )
        edited = await finished(client, await client.edit(made.id, f"Sepia [{tag}]"))
        extended = await finished(
            client, await client.extend(made.id, f"The storm arrives [{tag}]", "4")
        )
        raw_edit = await finished(
            client, await client.edit("video_src_harbor", f"Night harbor [{tag}]")
        )

    for video in (made, edited, extended, raw_edit):
        assert video.status.value == "completed", video
    assert upstream_id(edited.remixed_from_video_id or "") == upstream_id(made.id)
    assert extended.seconds == "8"  # the stitched total: 4 + 4
    assert raw_edit.remixed_from_video_id == "video_src_harbor"
    kinds = sorted(row["kind"] for row in gateway.upstream_videos("prompt LIKE ?", f"%[{tag}]%"))
    assert kinds == ["create", "edit", "edit", "extension"]  # one upstream job each
