"""`remix-pipeline serve --dialect litellm` against the real LiteLLM proxy: one scenario run
on both, each answer reduced to the deviations a client can see (its "deviation profile"),
and the two profiles must be equal.

The real side is the plain config (`gateway`) and, for the 429, the same with
`num_retries: 0` before an upstream admitting one request a minute (`gateway_rate_limited`),
the configuration the imitation models. The imitation is served the way a user serves it,
in its own process. Values that differ between any two runs (times, uuids, the hex of ids,
the deployment hash, the text of a connection failure) are left out of the profile; their
shape stays in.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.gateway import Gateway
from tests.support.servers import served_process

from ..support.litellm_proxy import decode_video_id, encode_video_id

RAW_SOURCE = "video_src_harbor"
CONTRACT_STATUSES = {"queued", "in_progress", "completed", "failed"}
SUFFIX = re.compile(
    r"\n\nLiteLLM: model group '(?P<group>[^']*)' failed with the error above\. "
    r"No fallback was attempted\.$"
)
# `litellm.<Class>: [<Class>: ]OpenAIException - ` or `litellm.<Class>: None - `.
WRAPPED = re.compile(r"^(?P<prefix>litellm\.\w+: (?:\w+: )?(?:OpenAIException|None) - )")
# Headers whose presence is part of the profile (the value of some, too).
SHOWN_VALUES = ("x-litellm-version", "x-litellm-model-group", "x-litellm-model-name")


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    key: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )


@pytest.fixture(scope="module")
def imitation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    key = f"sk-imitation-{uuid.uuid4().hex}"
    where = tmp_path_factory.mktemp("imitation")
    with served_process(where, "--dialect", "litellm", key=key) as served:
        yield Target("imitation", served.base_url, key)


@pytest.fixture(scope="module")
def imitation_rate_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    key = f"sk-imitation-{uuid.uuid4().hex}"
    where = tmp_path_factory.mktemp("imitation-limited")
    with served_process(where, "--dialect", "litellm", "--rpm-limit", "1", key=key) as served:
        yield Target("imitation", served.base_url, key)


# The profile of one answer


def id_shape(value: object) -> object:
    """What a client can tell about an id without its random parts."""
    if not isinstance(value, str):
        return value
    fields = decode_video_id(value)
    if not fields:
        return value if value.startswith("video_src_") else f"raw, {len(value)} characters"
    return {
        "length": len(value),
        "padding": len(value) - len(value.rstrip("=")),
        "fields": list(fields),
        "provider": fields.get("custom_llm_provider"),
        "model_id": fields.get("model_id"),
        "deployment_id": bool(re.fullmatch(r"[0-9a-f]{64}", fields.get("deployment_id", ""))),
        "video_id": id_shape(fields.get("video_id")),
    }


def message_shape(message: str) -> dict[str, Any]:
    suffix = SUFFIX.search(message)
    body = message[: suffix.start()] if suffix else message
    wrapped = WRAPPED.match(body)
    if wrapped is None:
        # LiteLLM's own message: fixed text, kept whole.
        return {"text": body, "group": suffix and suffix["group"]}
    inner = body[wrapped.end() :]
    try:
        upstream = json.loads(inner)["error"]
        carried: object = {k: upstream[k] for k in ("type", "param", "code")}
    except (ValueError, KeyError, TypeError):
        carried = "text"  # a transport failure's own words, which differ by machine
    return {"prefix": wrapped["prefix"], "upstream": carried, "group": suffix and suffix["group"]}


def video_shape(video: dict[str, Any]) -> dict[str, Any]:
    usage = video.get("usage", "absent")
    if isinstance(usage, dict):
        usage = {k: type(v).__name__ for k, v in usage.items()}
    return {
        "keys": sorted(video),
        "null": sorted(k for k, v in video.items() if v is None),
        "object": video.get("object"),
        "model": video.get("model"),
        "usage": usage,
        "id": id_shape(video.get("id")),
        "remixed_from_video_id": id_shape(video.get("remixed_from_video_id")),
    }


def profile(answer: httpx.Response, **extra: Any) -> dict[str, Any]:
    headers = answer.headers
    shape: dict[str, Any] = {
        "status": answer.status_code,
        "content_type": headers.get("content-type", "").split(";")[0],
        "x-litellm-*": sorted(h for h in headers if h.startswith("x-litellm-")),
        "llm_provider-*": sorted(h for h in headers if h.startswith("llm_provider-")),
        "openai-poll-after-ms": "openai-poll-after-ms" in headers,
        "retry-after": sorted(h for h in headers if h in ("retry-after", "retry-after-ms")),
        **{name: headers.get(name) for name in SHOWN_VALUES},
        **extra,
    }
    if shape["content_type"] != "application/json":
        shape["body"] = "mp4" if answer.content[4:8] == b"ftyp" else answer.content[:16]
        return shape
    body = answer.json()
    if "detail" in body:
        shape["body"] = {"detail": body["detail"], "allow": headers.get("allow")}
    elif set(body) == {"error"}:
        error = body["error"]
        shape["body"] = {
            "error_keys": sorted(error),
            "type": error.get("type"),
            "param": error.get("param"),
            "code": error.get("code"),
            "message": message_shape(error.get("message", "")),
        }
    else:
        shape["body"] = video_shape(body)
    return shape


# The scenario


def scenario(target: Target) -> dict[str, dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    label = uuid.uuid4().hex
    with target.client() as client:
        created = client.post("/videos", json={"model": "sora-2", "prompt": f"create {label}"})
        steps["create (model sora-2)"] = profile(created)
        video_id = created.json()["id"]

        statuses = set()
        for _ in range(200):
            polled = client.get(f"/videos/{quote(video_id, safe='')}")
            statuses.add(polled.json().get("status"))
            if polled.json().get("status") == "completed":
                break
            time.sleep(0.05)
        steps["retrieve until completed"] = profile(
            polled, statuses_within_contract=statuses <= CONTRACT_STATUSES
        )
        steps["retrieve of a raw id"] = profile(client.get(f"/videos/{RAW_SOURCE}"))
        steps["remix of a raw id without model"] = profile(
            client.post(f"/videos/{RAW_SOURCE}/remix", json={"prompt": f"raw {label}"})
        )
        steps["remix of a raw id with model"] = profile(
            client.post(
                f"/videos/{RAW_SOURCE}/remix",
                json={"prompt": f"raw with model {label}", "model": "sora-2"},
            )
        )
        steps["remix of the created (encoded) id"] = profile(
            client.post(f"/videos/{video_id}/remix", json={"prompt": f"encoded {label}"})
        )
        steps["remix probe (no prompt)"] = profile(
            client.post("/videos/video_remix_pipeline_capability_probe/remix", json={})
        )
        thumbnail = client.get(f"/videos/{video_id}/content", params={"variant": "thumbnail"})
        steps["content, variant thumbnail"] = profile(
            thumbnail,
            disposition_names_the_id=thumbnail.headers.get("content-disposition")
            == f"attachment; filename=video_{video_id}.mp4",
        )
        steps["list"] = profile(client.get("/videos", params={"limit": 100, "order": "desc"}))
        steps["delete"] = profile(client.delete(f"/videos/{video_id}"))
        unknown = encode_video_id({**decode_video_id(video_id), "video_id": "video_" + "0" * 32})
        steps["retrieve of an unknown encoded id"] = profile(client.get(f"/videos/{unknown}"))
        steps["create without model"] = profile(
            client.post("/videos", json={"prompt": f"no model {label}"})
        )
    return steps


def rate_limited_scenario(target: Target) -> dict[str, Any]:
    """Creates until one is refused (the upstream admits one request a minute)."""
    with target.client() as client:
        for attempt in range(3):
            body = {"model": "sora-2", "prompt": f"limited {attempt} {uuid.uuid4().hex}"}
            answer = client.post("/videos", json=body)
            if answer.status_code == 429:
                break
    shape = profile(answer)
    # LiteLLM renames the upstream's retry headers; both must carry a usable delay.
    shape["llm_provider-retry-after in (0, 60]"] = (
        0 < int(answer.headers.get("llm_provider-retry-after", "0")) <= 60
    )
    return shape


def test_the_imitation_answers_every_step_as_the_real_proxy_does(
    gateway: Gateway, imitation: Target
):
    real = scenario(Target("real", gateway.base_url, gateway.master_key))
    imitated = scenario(imitation)
    print(json.dumps(real, indent=1, default=str))
    differing = {
        step: {"real": real[step], "imitation": imitated.get(step)}
        for step in real
        if imitated.get(step) != real[step]
    }
    assert not differing, "the imitation contradicts the real proxy:\n" + json.dumps(
        differing, indent=1, default=str
    )


def test_the_imitation_passes_a_429_as_the_real_proxy_does_with_retries_off(
    gateway_rate_limited: Gateway, imitation_rate_limited: Target
):
    real = rate_limited_scenario(
        Target("real", gateway_rate_limited.base_url, gateway_rate_limited.master_key)
    )
    imitated = rate_limited_scenario(imitation_rate_limited)
    print(json.dumps(real, indent=1, default=str))
    assert real["status"] == 429
    assert imitated == real
