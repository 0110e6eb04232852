"""Every response, to good and malformed requests alike, validates against the OpenAPI spec.

Hypothesis generates requests to all ten operations (JSON and multipart bodies, wrong types,
unknown fields, hostile ids, bad query values) and sends them to the real server on a
loopback port; each answer must match the operation's 200 schema or the ErrorResponse
envelope, carry an `x-request-id`, and never be a 5xx.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remix_pipeline.contract import ContractMode
from remix_pipeline.service.catalogue import CatalogueEntry, source_jobs

from .conftest import ConfigFactory, SpecValidator, serving

SOURCES = ["video_src_harbor", "video_src_forest", "video_src_city", "video_src_dunes"]


@dataclass
class Call:
    method: str
    template: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json_body: object = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, client: httpx.Client) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.data is not None or self.files is not None:
            kwargs["data"], kwargs["files"] = self.data, self.files
        elif self.json_body is not None:
            kwargs["json"] = self.json_body
        return client.request(self.method, self.path, **kwargs)


class World:
    """Ids the strategies draw from besides the sources: queued jobs and completed ones."""

    pending: ClassVar[list[str]] = []
    completed: ClassVar[list[str]] = []


junk_text = st.text(max_size=12)
ids = st.one_of(
    st.sampled_from(SOURCES),
    st.deferred(lambda: st.sampled_from(World.pending)),
    st.deferred(lambda: st.sampled_from(World.completed)),
    st.text(alphabet=string.ascii_letters + string.digits + "_-.~%", min_size=1, max_size=40),
    st.just("video_" + "0" * 32),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | junk_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(junk_text, inner, max_size=3),
    max_leaves=5,
)
prompts = st.one_of(
    st.text(min_size=1, max_size=60), st.just(""), st.just("x" * 32_001), json_values
)
seconds = st.one_of(st.sampled_from(["4", "8", "12", "16", "20", "5"]), st.integers(0, 30))
sizes = st.one_of(st.sampled_from(["720x1280", "1280x720", "1920x1080", "10x10"]), json_values)
models = st.one_of(st.sampled_from(["sora-2", "sora-2-pro", ""]), json_values)
references = st.one_of(
    st.fixed_dictionaries({"file_id": st.just("file-123")}),
    st.fixed_dictionaries({"image_url": st.just("https://example.test/a.png")}),
    st.dictionaries(st.sampled_from(["file_id", "image_url", "other"]), json_values),
    json_values,
)
good_prompts = st.text(alphabet=string.printable, min_size=1, max_size=60).filter(str.strip)
good_seconds = st.sampled_from(["4", "8", "12"])
sources = st.sampled_from(SOURCES)
video_refs = st.one_of(
    st.fixed_dictionaries({"id": ids}), st.dictionaries(junk_text, json_values), json_values
)


def _optional(**fields: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({}, optional=fields)


def _form(body: dict[str, object]) -> dict[str, str]:
    """Flatten a body the way multipart carries it: strings, objects bracket-encoded."""
    flat: dict[str, str] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                flat[f"{key}[{sub}]"] = inner if isinstance(inner, str) else json.dumps(inner)
        else:
            flat[key] = value if isinstance(value, str) else json.dumps(value)
    return flat


@st.composite
def bodies(
    draw: st.DrawFn, template: str, path: str, fields: st.SearchStrategy[dict[str, object]]
) -> Call:
    body = draw(fields)
    if draw(st.booleans()):
        body = {**body, draw(st.sampled_from(["extra", "quality"])): draw(json_values)}
    encoding = draw(st.sampled_from(["json", "multipart", "broken"]))
    if encoding == "json":
        return Call("POST", template, path, json_body=body)
    if encoding == "multipart":
        parts = {key: (None, value) for key, value in _form(body).items()}
        return Call("POST", template, path, files=parts)
    return Call(
        "POST",
        template,
        path,
        content=draw(st.binary(max_size=30)),
        headers={"content-type": draw(st.sampled_from(["application/json", "text/plain"]))},
    )


@st.composite
def calls(draw: st.DrawFn) -> Call:
    video_id = draw(ids)
    operation = draw(
        st.sampled_from(
            [
                "create",
                "list",
                "retrieve",
                "delete",
                "content",
                "remix",
                "edit",
                "extend",
                "character",
                "get_character",
            ]
        )
    )
    valid = draw(st.booleans())
    if operation == "create" and valid:
        fields = _optional(seconds=good_seconds, size=st.sampled_from(["720x1280", "1280x720"]))
        fields = st.tuples(good_prompts, fields).map(lambda pair: {"prompt": pair[0], **pair[1]})
        return draw(bodies("/videos", "/videos", fields))
    if operation == "create":
        fields = _optional(
            prompt=prompts, model=models, seconds=seconds, size=sizes, input_reference=references
        )
        return draw(bodies("/videos", "/videos", fields))
    if operation == "list":
        params = draw(
            _optional(
                limit=st.one_of(st.integers(-5, 150).map(str), junk_text),
                order=st.sampled_from(["asc", "desc", "up"]),
                after=ids,
            )
        )
        return Call("GET", "/videos", "/videos", params=params)
    if operation == "retrieve":
        return Call("GET", "/videos/{video_id}", f"/videos/{video_id}")
    if operation == "delete":
        return Call("DELETE", "/videos/{video_id}", f"/videos/{video_id}")
    if operation == "content":
        variant = draw(_optional(variant=st.sampled_from(["video", "thumbnail", "gif"])))
        return Call(
            "GET", "/videos/{video_id}/content", f"/videos/{video_id}/content", params=variant
        )
    if operation == "remix" and valid:
        path = f"/videos/{draw(sources)}/remix"
        fields = st.fixed_dictionaries({"prompt": good_prompts})
        return draw(bodies("/videos/{video_id}/remix", path, fields))
    if operation == "remix":
        path = f"/videos/{video_id}/remix"
        return draw(bodies("/videos/{video_id}/remix", path, _optional(prompt=prompts)))
    if operation in ("edit", "extend"):
        template = "/videos/edits" if operation == "edit" else "/videos/extensions"
        fields = _optional(video=video_refs, prompt=prompts, seconds=seconds)
        if valid:
            required = {"video": st.fixed_dictionaries({"id": sources}), "prompt": good_prompts}
            if operation == "extend":
                required["seconds"] = good_seconds
            fields = st.fixed_dictionaries(required)
        return draw(bodies(template, template, fields))
    if operation == "character":
        name = draw(st.one_of(st.text(max_size=90), st.just("Ada")))
        files = draw(
            st.sampled_from(
                [{"video": ("clip.mp4", b"clip", "video/mp4")}, {"video": (None, "clip")}, None]
            )
        )
        return Call(
            "POST", "/videos/characters", "/videos/characters", data={"name": name}, files=files
        )
    character_id = draw(st.one_of(st.just("char_" + "0" * 32), ids))
    return Call("GET", "/videos/characters/{character_id}", f"/videos/characters/{character_id}")


@pytest.fixture
def client(make_config: ConfigFactory) -> Iterator[httpx.Client]:
    # Strict mode: the spec's enums. Lenient mode accepts the guide's 1080p sizes, whose
    # Videos the spec's VideoSize enum would (rightly) reject.
    config = make_config(queued_seconds=3600, run_seconds=3600, mode=ContractMode.STRICT)
    with serving(config) as (base_url, app), httpx.Client(base_url=base_url) as http:
        World.pending = [
            http.post("/videos", json={"prompt": f"pending {n}"}).json()["id"] for n in range(3)
        ]
        store = app.state.service.store
        completed = source_jobs(
            [
                CatalogueEntry(id=f"video_done_{n}", prompt="done", size="720x1280", seconds="4")
                for n in range(40)
            ],
            time.time(),
        )
        store.seed_sources(completed)
        World.completed = [job.id for job in completed]
        yield http


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=calls())
def test_every_generated_request_gets_a_spec_valid_answer(
    client: httpx.Client, spec_validator: SpecValidator, call: Call
) -> None:
    response = call.send(client)
    assert response.status_code < 500, response.text
    problems = spec_validator.check(response, call.method, call.template)
    assert problems == [], (call, response.status_code, response.text[:300])


MALFORMED = [
    ("POST", "/videos", {"content": b"{", "headers": {"content-type": "application/json"}}),
    ("POST", "/videos", {"content": b"[1]", "headers": {"content-type": "application/json"}}),
    ("POST", "/videos", {"content": b"--x", "headers": {"content-type": "multipart/form-data"}}),
    (
        "POST",
        "/videos",
        {
            "content": b"--b\r\nbroken",
            "headers": {"content-type": "multipart/form-data; boundary=b"},
        },
    ),
    ("POST", "/videos", {"content": b"prompt=a", "headers": {"content-type": "text/csv"}}),
    ("GET", "/videos/", {}),
    ("PATCH", "/videos/video_src_city", {}),
    ("GET", "/nothing/here", {}),
    ("POST", "/videos/video_src_city/content", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), MALFORMED)
def test_malformed_requests_get_a_spec_valid_error_envelope(
    served: tuple[str, object],
    spec_validator: SpecValidator,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    response = httpx.request(method, served[0] + path, **kwargs)
    assert 400 <= response.status_code < 500
    assert spec_validator.check(response, method, "/videos") == []


def test_auth_rate_limit_and_injected_errors_are_spec_valid_envelopes(
    make_config: ConfigFactory, spec_validator: SpecValidator
) -> None:
    faults = {"requests_per_minute": 3, "error_rate": 0.5, "seed": 1}
    statuses = set()
    with serving(make_config(api_key="k", faults=faults)) as (base_url, _app):
        for key in ("", "wrong", "k", "k", "k", "k", "k", "k"):
            headers = {"authorization": f"Bearer {key}"} if key else {}
            response = httpx.get(f"{base_url}/videos", headers=headers)
            statuses.add(response.status_code)
            assert spec_validator.check(response, "GET", "/videos") == []
    assert {401, 429} <= statuses and statuses & {500, 502, 503}


def test_the_validator_rejects_a_video_missing_a_key_and_a_bare_error(
    served: tuple[str, object], spec_validator: SpecValidator
) -> None:
    video = httpx.get(f"{served[0]}/videos/video_src_city").json()
    assert spec_validator.errors("VideoResource", video) == []
    del video["error"]
    assert spec_validator.errors("VideoResource", video) != []
    assert spec_validator.errors("ErrorResponse", {"message": "flat", "type": "x"}) != []
