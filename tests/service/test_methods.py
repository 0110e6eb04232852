"""A 405's `Allow` header names every method served on the path, not only those of the first
route that matched it (several routes share a path: `GET` and `POST /v1/videos`, say)."""

from __future__ import annotations

import httpx
import pytest

from remix_pipeline.service.app import ROUTES

SOURCE = "video_src_harbor"
PROBED = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# `GET` and `DELETE /v1/videos/characters` (and edits, extensions) are routed to retrieve and
# delete with the id "characters", which answer 404 for it rather than 405: so those methods
# are served on that path too, and a client told otherwise would be misled.
ALLOWED = {
    "/v1/videos": {"GET", "HEAD", "POST"},
    f"/v1/videos/{SOURCE}": {"GET", "HEAD", "DELETE"},
    f"/v1/videos/{SOURCE}/content": {"GET", "HEAD"},
    f"/v1/videos/{SOURCE}/remix": {"POST"},
    "/v1/videos/characters": {"POST", "GET", "HEAD", "DELETE"},
    "/v1/videos/characters/char_x": {"GET", "HEAD"},
    "/v1/videos/edits": {"POST", "GET", "HEAD", "DELETE"},
    "/v1/videos/extensions": {"POST", "GET", "HEAD", "DELETE"},
    "/_admin/stats": {"GET", "HEAD"},
}


def _allow(response: httpx.Response) -> set[str]:
    assert response.status_code == 405, response.text
    assert response.json()["error"]["code"] == "method_not_allowed"
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_every_route_is_probed() -> None:
    templates = {route.path for route in ROUTES}
    assert len(templates) == len(ALLOWED)


@pytest.mark.parametrize("method", ["OPTIONS", "PUT"])
@pytest.mark.parametrize("path", list(ALLOWED))
async def test_a_405_names_every_method_served_on_the_path(
    app_client: httpx.AsyncClient, path: str, method: str
) -> None:
    assert _allow(await app_client.request(method, path)) == ALLOWED[path]


@pytest.mark.parametrize("path", list(ALLOWED))
async def test_exactly_the_methods_not_named_in_allow_are_a_405(
    app_client: httpx.AsyncClient, path: str
) -> None:
    allowed = _allow(await app_client.request("PUT", path))
    for method in PROBED:
        response = await app_client.request(method, path)
        assert (response.status_code == 405) == (method not in allowed), (method, response.text)
