"""A client on the embedded service in LiteLLM's dialect, for the dialect tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from remix_pipeline.client import VideosClient
from tests.support.embedded import client_for
from tests.support.servers import MakeConfig


@pytest.fixture
async def litellm_client(make_config: MakeConfig) -> AsyncIterator[VideosClient]:
    async with client_for(make_config("litellm")) as client:
        yield client
