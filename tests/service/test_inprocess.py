"""The in-process transport fails like a socket would, and the default config finds its home."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from remix_pipeline.service import default_service_config, embedded_transport
from tests.support.servers import MakeConfig


async def test_dropped_response_reaches_the_client_as_a_remote_protocol_error(
    make_config: MakeConfig,
) -> None:
    transport = embedded_transport(make_config(faults={"drop_rate": 1.0}))
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v1/videos/video_src_dunes/remix", json={"prompt": "lost"})
        listed = (await client.get("/v1/videos", params={"limit": 1})).json()
    assert listed["data"][0]["remixed_from_video_id"] == "video_src_dunes"


async def test_embedded_transport_serves_the_contract(make_config: MakeConfig) -> None:
    transport = embedded_transport(make_config())
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        response = await client.get("/v1/videos/video_src_forest")
    assert response.json()["status"] == "completed"


def test_default_config_keeps_state_under_remix_pipeline_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMIX_PIPELINE_HOME", str(tmp_path / "home"))
    assert default_service_config().db_path == tmp_path / "home" / "service.db"


def test_default_config_without_home_uses_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REMIX_PIPELINE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_service_config().db_path == tmp_path / ".remix-pipeline" / "service.db"
