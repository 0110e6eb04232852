"""`--dialect litellm`: the service as the real LiteLLM proxy 1.108.7 shows it to a client.

Modelled on the measurements of the real proxy in front of this service
(`reference/litellm-real.md`, pinned by `tests/gateway/test_litellm_facts.py`), for the
configuration a new user writes: one `openai/<group>` deployment per model group (`sora-2`
and `sora-2-pro`, the service's models), no `completion_model`, and
`router_settings.num_retries: 0`, the setting the project recommends (see below).
`tests/gateway/test_imitation_matches_real.py` runs one scenario against both and requires
the same deviation profile, so where the two part, the imitation is wrong.

What it does, in the order the real proxy does it:

- Routes: `/v1/videos...` and the same without `/v1`. A path the proxy does not serve is
  FastAPI's `404 {"detail":"Not Found"}`, a method it does not serve (every DELETE) is
  `405 {"detail":"Method Not Allowed"}` with `Allow`; neither is the error envelope.
- Auth, when the service has a key: none is a bare `500 Internal Server Error` in
  text/plain, a wrong one LiteLLM's `400 no_db_connection` (the proxy has no database).
  The key may also come in `x-litellm-api-key`.
- Required parameters, before any routing: create, remix and edit need `prompt`, an
  extension `prompt` and `seconds` (present, whatever their value), or LiteLLM answers its
  own 400 naming the parameter. So the body-less remix probe is refused for any id.
- Ids: answers carry `video_` + standard base64 (with `=` padding) of
  `litellm:custom_llm_provider:openai;model_id:<group>;video_id:<raw>;deployment_id:<hex>`,
  where the deployment hash is fixed per group (`deployment_id`). Ids in paths and in the
  `video.id` of edit and extension bodies are decoded on the way in;
  `remixed_from_video_id` stays raw, as the real one leaves it.
- Routing: create needs a body `model` naming a group (else LiteLLM's "Invalid model name"
  400). A call on an id routes by the group the id names; a raw id (any id that is no
  such encoding, `video_src_harbor` say) names none, so retrieve and content answer the
  500 of a call the real proxy sends to api.openai.com, and remix, edit and extension do
  too unless the body names a group in `model` (a `model` naming no group is "no healthy
  deployments", 400). `model` is not forwarded: the service would refuse it.
- List: `400 LLM Provider NOT provided`, whatever the query.
- Content: `variant` and the rest of the query are dropped, so every variant is the MP4,
  buffered, `video/mp4`, `Content-Disposition: attachment; filename=video_<id>.mp4`.
- Video answers: LiteLLM's `VideoObject` (the contract's keys but `prompt`, unknown keys
  dropped, null keys present as null, in its order) plus `usage`:
  `{"duration_seconds": <float>}` on create and remix, null on retrieve, edit and extension;
  `model` is the group that routed the call; the status passes through (no `processing`:
  that alias belongs to other providers). An answer that is not JSON, or not a valid
  `VideoObject`, is the proxy's 500 naming the parse or validation error.
- Errors of the service: wrapped as the proxy wraps its provider's errors: the status
  kept, `message` `litellm.<Class>: [<Class>: ]OpenAIException - <upstream JSON>` and, for
  a routed call, `\\n\\nLiteLLM: model group '<group>' failed with the error above. No
  fallback was attempted.`; `type` the class's (`throttling_error` for 429,
  `internal_server_error` for 5xx, else by status); `param` null; `code` the status as a
  string. The service's headers come along renamed `llm_provider-<name>`, its request id as
  `request-id`. A 429 therefore carries `llm_provider-retry-after(-ms)` and no `Retry-After`
  (what `num_retries: 0` gives). An answer cut off after its status line (`--drop-rate`)
  is the proxy's 500 "Response payload is not completed".
- Headers: JSON answers of these routes carry `x-litellm-version: 1.108.7`, a
  `x-litellm-call-id`, `x-litellm-key-spend`; routed successes the deployment
  (`x-litellm-model-id`, `-model-group`, `-model-api-base`, `-attempted-retries`, ...),
  create and remix a `x-litellm-response-cost` (LiteLLM's price list: $0.10/s sora-2,
  $0.30/s sora-2-pro), errors `x-litellm-response-cost: 0`. `openai-poll-after-ms` and the
  service's other headers are dropped from successes. MP4 content, the 404/405 and auth
  failures carry no `x-litellm-*`. Every answer but the bare 500 carries LiteLLM's security
  headers.
- Characters: a create needs the form field `target_model_names` naming a group (it is not
  forwarded), and its id comes back as `character_` + base64 naming the deployment; a
  character id that is no such encoding is unroutable (500).

What it deliberately does not do:

- Call anything outside. The real proxy sends what it cannot route to api.openai.com with
  its own `OPENAI_API_KEY`; the imitation answers the 500 an unreachable OpenAI gives.
- Retry. The default router retries a POST whose answer was lost, or a 5xx, and makes
  paid duplicate jobs (10 creates made 22 jobs in the measurement), and it absorbs a 429
  by sleeping up to 60 s inside the request. Only the real proxy shows that; this is
  `num_retries: 0`, which is what a user should configure (tests/gateway covers the rest).
- `general_settings.completion_model`: its list (one fixed page, short ids without a
  deployment) and raw-id answers are not imitated; `gateway_completion_model` is the real.
- Several deployments per group, fallbacks, teams, budgets, the real per-process deployment
  hash (a restarted proxy with new `litellm_params` has another one; this one never
  changes), and the exact text of the upstream connection failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LITELLM_VERSION = "1.108.7"
PROVIDER = "openai"
GROUPS: tuple[str, ...] = ("sora-2", "sora-2-pro")
VIDEO_PREFIX = "video_"
CHARACTER_PREFIX = "character_"
# LiteLLM's price list (model_prices_and_context_window.json): USD per second of video.
PRICE_PER_SECOND: Mapping[str, float] = {"sora-2": 0.1, "sora-2-pro": 0.3}
# What an unreachable api.openai.com gives on a machine without a route to it.
OPENAI_UNREACHABLE = (
    "Cannot connect to host api.openai.com:443 ssl:default [Name or service not known]"
)
LIST_UNROUTABLE = (
    "litellm.BadRequestError: LLM Provider NOT provided. Pass in the LLM provider you are "
    "trying to call. You passed model=\n Pass model as E.g. For 'Huggingface' inference "
    "endpoints pass in `completion(model='huggingface/starcoder',..)` Learn more: "
    "https://docs.litellm.ai/docs/providers"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"vary", b"Origin"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
)
# The routes' names as LiteLLM writes them in its own errors.
ROUTE_NAMES = {
    "create": "/videos",
    "remix": "/videos/{video_id}/remix",
    "edit": "/videos/edits",
    "extension": "/videos/extensions",
}
REQUIRED = {
    "create": ("prompt",),
    "remix": ("prompt",),
    "edit": ("prompt",),
    "extension": ("prompt", "seconds"),
}
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
# FastAPI's own File/Form parameters of the character route, in its order.
FORM_PARAMETERS = {"character_create": ("video", "name")}
DERIVING = frozenset({"remix", "edit", "extension"})
# Routed successes whose headers itemise a zero cost instead of naming one (as measured).
COST_BREAKDOWN = frozenset({"retrieve", "extension", "character_create", "character_retrieve"})
ZERO_COST_HEADERS = tuple(
    f"x-litellm-response-cost-{part}".encode()
    for part in (
        "original", "discount-amount", "margin-amount", "margin-percent", "input", "output",
        "tool-usage",
    )
)  # fmt: skip
# Request headers the proxy does not pass on (it sends its own key; Range is not served,
# and the body's length changes).
NOT_PASSED_ON = frozenset(
    {b"content-length", b"range", b"if-range", b"x-litellm-api-key", b"authorization"}
)
# Fields the proxy consumes and does not forward to the provider.
NOT_FORWARDED = frozenset({"model", "custom_llm_provider", "target_model_names"})


# Ids ------------------------------------------------------------------------------------


def deployment_id(group: str) -> str:
    """The fixed deployment hash of a group (the real one hashes its `litellm_params`)."""
    seed = f"remix-pipeline --dialect litellm {PROVIDER}/{group}"
    return hashlib.sha256(seed.encode()).hexdigest()


def encode_litellm_id(video_id: str, model: str = GROUPS[0], deployment: str | None = None) -> str:
    """The id LiteLLM answers for the service's `video_id`, created through group `model`."""
    text = (
        f"litellm:custom_llm_provider:{PROVIDER};model_id:{model};video_id:{video_id}"
        f";deployment_id:{deployment or deployment_id(model)}"
    )
    return VIDEO_PREFIX + base64.b64encode(text.encode()).decode()


def litellm_id_fields(value: str, prefix: str = VIDEO_PREFIX) -> dict[str, str]:
    """The fields of an id LiteLLM encoded, read as LiteLLM reads them; {} for any other id.

    Like LiteLLM: lenient base64 (padding restored, stray characters skipped) and at least
    three `;`-separated parts, the first three positional.
    """
    if not value.startswith(prefix):
        return {}
    cleaned = value.replace(prefix, "")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        text = base64.b64decode(cleaned.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return {}
    parts = text.split(";")
    if len(parts) < 3:
        return {}
    inner = "character_id:" if prefix == CHARACTER_PREFIX else "video_id:"
    fields = {
        "custom_llm_provider": parts[0].replace("litellm:custom_llm_provider:", ""),
        "model_id": parts[1].replace("model_id:", ""),
        "id": parts[2].replace(inner, ""),
    }
    for part in parts[3:]:
        name, sep, found = part.partition(":")
        if sep and name not in fields:
            fields[name] = found
    return fields


def decode_litellm_id(value: str) -> str:
    """The service's own id behind an id LiteLLM encoded; any other id unchanged."""
    return litellm_id_fields(value).get("id") or value


def encode_character_id(character_id: str, group: str) -> str:
    text = (
        f"litellm:custom_llm_provider:{PROVIDER};model_id:{deployment_id(group)};"
        f"character_id:{character_id}"
    )
    return CHARACTER_PREFIX + base64.b64encode(text.encode()).decode()


# The answer model -----------------------------------------------------------------------


class VideoObject(BaseModel):
    """LiteLLM's `VideoObject` (litellm/types/videos/main.py): what survives the proxy."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    id: str
    object: Literal["video"]
    status: str
    created_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    error: dict[str, object] | None = None
    progress: int | None = None
    remixed_from_video_id: str | None = None
    seconds: str | None = None
    size: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None


# Routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    kind: str
    video_id: str | None = None


@dataclass(frozen=True)
class NoRoute:
    status: int
    allow: str | None = None


def match_route(method: str, path: str) -> Route | NoRoute:
    """The proxy's video route for `method` on `path` (already under `/v1/videos`), in
    FastAPI's order: the first route whose path and method match wins; a path that matches
    only with another method is a 405 naming the first such route's methods."""
    rest = path.removeprefix("/v1/videos")
    segments = rest.split("/")[1:] if rest else []
    if rest == "":
        if method == "POST":
            return Route("create")
        if method == "GET":
            return Route("list")
        return NoRoute(405, "POST")
    if "" in segments:
        return NoRoute(404)
    if len(segments) == 1:
        (segment,) = segments
        if method == "GET":
            return Route("retrieve", segment)
        if method == "POST" and segment in ("edits", "extensions", "characters"):
            kind = {"edits": "edit", "extensions": "extension"}.get(segment, "character_create")
            return Route(kind)
        return NoRoute(405, "GET")
    if len(segments) == 2:
        first, second = segments
        if second == "content":
            return Route("content", first) if method == "GET" else NoRoute(405, "GET")
        if second == "remix":
            return Route("remix", first) if method == "POST" else NoRoute(405, "POST")
        if first == "characters":
            return Route("character_retrieve", second) if method == "GET" else NoRoute(405, "GET")
    return NoRoute(404)


# The middleware -------------------------------------------------------------------------


class LiteLLMDialect:
    """The service behind an imitation of the LiteLLM proxy (module docstring)."""

    def __init__(
        self, app: ASGIApp, *, api_key: str | None = None, groups: Iterable[str] = GROUPS
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.groups = tuple(groups)
        self.by_deployment = {deployment_id(g): g for g in self.groups}

    def group_of(self, model_id: object) -> str | None:
        """The group a model name or deployment hash routes to, if any."""
        if not isinstance(model_id, str):
            return None
        if model_id in self.groups:
            return model_id
        return self.by_deployment.get(model_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/videos" or path.startswith("/videos/"):
            path = "/v1" + path
        if not (path == "/v1/videos" or path.startswith("/v1/videos/")):
            await self.app(scope, receive, send)
            return
        route = match_route(scope["method"], path)
        if path.endswith("/") and isinstance(route, NoRoute) and route.status == 404:
            stripped = path.rstrip("/")
            if match_route(scope["method"], stripped) != NoRoute(404):
                await _redirect(scope, send, stripped)
                return
        if isinstance(route, NoRoute):
            detail = "Not Found" if route.status == 404 else "Method Not Allowed"
            extra = [(b"allow", route.allow.encode())] if route.allow else []
            await _send_json(send, route.status, {"detail": detail}, extra)
            return
        refused = self._auth_failure(scope)
        if refused == "missing":
            await _send(
                send,
                500,
                [(b"content-type", b"text/plain; charset=utf-8")],
                b"Internal Server Error",
                secure=False,
            )
            return
        if refused == "wrong":
            refusal = _envelope("No connected db.", "no_db_connection", code="400")
            await _send_json(send, 400, refusal)
            return
        await _Call(self, scope, receive, send, route).run()

    def _auth_failure(self, scope: Scope) -> str | None:
        if self.api_key is None:
            return None
        headers = dict(scope["headers"])
        header = headers.get(b"authorization") or headers.get(b"x-litellm-api-key") or b""
        scheme, _, token = header.decode("latin-1").partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            return "missing"
        if not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            return "wrong"
        return None


@dataclass
class _Upstream:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Refusal(Exception):
    """An answer decided before (or instead of) calling the service."""

    def __init__(self, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


_FILE = object()


@dataclass
class _Call:
    """One request through the imitated proxy."""

    dialect: LiteLLMDialect
    scope: Scope
    receive: Receive
    send: Send
    route: Route
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.perf_counter)

    # The flow ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except _Refusal as refusal:
            await _send_json(self.send, refusal.status, refusal.body, refusal.headers)

    async def _run(self) -> None:
        kind = self.route.kind
        if kind == "list":
            raise self._own_error(400, LIST_UNROUTABLE)
        body = await _read_all(self.receive) if self.scope["method"] == "POST" else b""
        fields = await self._fields(body)
        # FastAPI reads File/Form parameters from a form only, never from JSON.
        form = _content_type(self.scope) in FORM_TYPES
        absent = [n for n in FORM_PARAMETERS.get(kind, ()) if not form or n not in fields]
        if absent:
            detail = [
                {"type": "missing", "loc": ["body", name], "msg": "Field required"}
                for name in absent
            ]
            raise _Refusal(422, {"detail": detail}, [])
        for name in REQUIRED.get(kind, ()):
            if name not in fields:
                raise self._own_error(
                    400,
                    f"{ROUTE_NAMES[kind]}: Missing required parameter: '{name}'.",
                    param=name,
                )
        if kind == "create":
            await self._create(body, fields)
        elif kind in ("retrieve", "content"):
            await self._on_id(kind)
        elif kind in DERIVING:
            await self._derive(kind, body, fields)
        elif kind == "character_create":
            await self._character_create(body, fields)
        else:
            await self._character_retrieve()

    async def _create(self, body: bytes, fields: dict[str, Any]) -> None:
        model = fields.get("model")
        group = self.dialect.group_of(model) if model is not _FILE else None
        if group is None:
            message = (
                f"/videos: Invalid model name passed in model={model}. "
                "Call `/v1/models` to view available models for your key."
            )
            raise self._own_error(400, message, provider_specific_fields={"error": message})
        answer = await self._forward("/v1/videos", body, group)
        await self._video_answer(answer, group, model_id=group)

    async def _on_id(self, kind: str) -> None:
        assert self.route.video_id is not None
        decoded = litellm_id_fields(self.route.video_id)
        group = self.dialect.group_of(decoded.get("model_id"))
        if group is None:
            raise self._unrouted()
        raw = decoded["id"]
        if kind == "retrieve":
            answer = await self._forward(f"/v1/videos/{raw}", b"", group)
            await self._video_answer(answer, group, model_id=decoded["model_id"])
            return
        answer = await self._forward(f"/v1/videos/{raw}/content", b"", group)
        if answer.status >= 400:
            raise self._wrapped(answer, group)
        disposition = f"attachment; filename=video_{self.route.video_id}.mp4"
        headers = [
            (b"content-type", b"video/mp4"),
            (b"content-disposition", disposition.encode("latin-1")),
        ]
        await _send(self.send, 200, headers, answer.body)

    async def _derive(self, kind: str, body: bytes, fields: dict[str, Any]) -> None:
        if kind == "remix":
            assert self.route.video_id is not None
            source = self.route.video_id
        else:
            source = _reference_id(fields.get("video"))
        decoded = litellm_id_fields(source)
        group = self.dialect.group_of(decoded.get("model_id"))
        model_id = decoded.get("model_id")
        if group is None:
            model = fields.get("model")
            if model is None or model == "" or model is _FILE:
                raise self._unrouted(kind)
            group = self.dialect.group_of(model)
            if group is None:
                raise self._own_error(
                    400,
                    f"litellm.BadRequestError: You passed in model={model}. There are no "
                    f"healthy deployments for this model{_suffix(str(model))}",
                )
            model_id = group
        raw = decoded.get("id") or source
        forwarded = self._forwarded_body(body, raw if kind != "remix" else None)
        path = f"/v1/videos/{raw}/remix" if kind == "remix" else self.scope_path()
        answer = await self._forward(path, forwarded, group)
        await self._video_answer(answer, group, model_id=model_id or group)

    async def _character_create(self, body: bytes, fields: dict[str, Any]) -> None:
        target = fields.get("target_model_names")
        names = [n.strip() for n in target.split(",")] if isinstance(target, str) else []
        group = self.dialect.group_of(fields.get("model") or next(filter(None, names), None))
        if group is None:
            raise self._unrouted()
        answer = await self._forward(self.scope_path(), self._forwarded_body(body, None), group)
        if answer.status >= 400:
            raise self._wrapped(answer, group)
        await self._success(_character(answer, group), group, cost=None, named=False)

    async def _character_retrieve(self) -> None:
        assert self.route.video_id is not None
        decoded = litellm_id_fields(self.route.video_id, CHARACTER_PREFIX)
        group = self.dialect.group_of(decoded.get("model_id"))
        if group is None:
            raise self._unrouted()
        answer = await self._forward(f"/v1/videos/characters/{decoded['id']}", b"", group)
        if answer.status >= 400:
            raise self._wrapped(answer, group)
        await self._success(_character(answer, group), group, cost=None, named=False)

    # Answers ----------------------------------------------------------------------------

    async def _video_answer(self, answer: _Upstream, group: str, *, model_id: str) -> None:
        kind = self.route.kind
        if answer.status >= 400:
            raise self._wrapped(answer, group)
        # The proxy reads the provider's answer itself: one it cannot parse, or that is no
        # valid VideoObject, is its own 500 naming the error (measured: create's is an
        # APIConnectionError, retrieve's and remix's an InternalServerError).
        cls = "APIConnectionError" if kind == "create" else "InternalServerError"
        try:
            video = VideoObject.model_validate(json.loads(answer.body))
        except (ValueError, ValidationError) as error:
            message = f"litellm.{cls}: {cls}: OpenAIException - {error}"
            raise self._routed_failure(message, group) from None
        upstream_model = video.model
        video.id = encode_litellm_id(video.id, model_id, deployment_id(group))
        video.model = group
        creates = kind in ("create", "remix")
        video.usage = {"duration_seconds": float(video.seconds or 0)} if creates else None
        cost = None
        if creates:
            rate = PRICE_PER_SECOND.get(upstream_model or "", 0.0)
            cost = rate * float(video.seconds or 0)
        await self._success(
            video.model_dump(mode="json"),
            group,
            cost=cost,
            named=kind in ("create", "remix", "retrieve"),
        )

    async def _success(
        self, body: dict[str, Any], group: str, *, cost: float | None, named: bool
    ) -> None:
        headers = [(b"x-litellm-call-id", self.call_id.encode())]
        headers.append((b"x-litellm-model-id", deployment_id(group).encode()))
        if named:
            headers.append((b"x-litellm-model-name", f"{PROVIDER}/{group}".encode()))
        headers.append((b"x-litellm-model-api-base", self._api_base().encode()))
        headers.append((b"x-litellm-version", LITELLM_VERSION.encode()))
        if cost is not None:
            headers += [
                (b"x-litellm-response-cost", str(cost).encode()),
                (b"x-litellm-key-spend", str(cost).encode()),
            ]
        else:
            if self.route.kind in COST_BREAKDOWN:
                headers += [(name, b"0.0") for name in ZERO_COST_HEADERS]
            headers.append((b"x-litellm-key-spend", b"0.0"))
        elapsed = (time.perf_counter() - self.started) * 1000
        headers += [
            (b"x-litellm-response-duration-ms", str(elapsed).encode()),
            (b"x-litellm-callback-duration-ms", b"0.0"),
            (b"x-litellm-model-group", group.encode()),
            (b"x-litellm-attempted-retries", b"0"),
            (b"x-litellm-attempted-fallbacks", b"0"),
        ]
        await _send_json(self.send, 200, body, headers)

    def _error_headers(self, *, routed: bool) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-litellm-call-id", self.call_id.encode()),
            (b"x-litellm-version", LITELLM_VERSION.encode()),
            (b"x-litellm-response-cost", b"0"),
            (b"x-litellm-key-spend", b"0.0"),
        ]
        if routed:
            headers.append((b"x-litellm-timeout", b"600.0"))
        return headers

    def _own_error(
        self, status: int, message: str, *, param: str | None = None, **extra: Any
    ) -> _Refusal:
        """An error LiteLLM raises itself, before or instead of routing."""
        body = _envelope(message, "invalid_request_error", param=param, code=str(status))
        body["error"].update(extra)
        return _Refusal(status, body, self._error_headers(routed=False))

    def _unrouted(self, kind: str | None = None) -> _Refusal:
        """A call with no deployment: the real proxy sends it to api.openai.com."""
        lead = "None" if kind == "remix" else "InternalServerError: OpenAIException"
        message = f"litellm.InternalServerError: {lead} - {OPENAI_UNREACHABLE}"
        body = _envelope(message, "internal_server_error", code="500")
        return _Refusal(500, body, self._error_headers(routed=False))

    def _routed_failure(self, message: str, group: str) -> _Refusal:
        body = _envelope(message + _suffix(group), "internal_server_error", code="500")
        return _Refusal(500, body, self._error_headers(routed=True))

    def _wrapped(self, answer: _Upstream, group: str) -> _Refusal:
        """The service's error as the proxy passes on its provider's error."""
        text = answer.body.decode("utf-8", errors="replace")
        cls, repeated, error_type = _error_class(answer.status, text)
        message = f"litellm.{cls}: {repeated}OpenAIException - {text}{_suffix(group)}"
        body = _envelope(message, error_type, code=str(answer.status))
        upstream = dict(answer.headers)
        # What uvicorn adds to the service's answers on the wire (outside this ASGI app).
        upstream.setdefault(b"date", formatdate(usegmt=True).encode())
        upstream.setdefault(b"server", b"uvicorn")
        headers = [(b"llm_provider-" + k.lower(), v) for k, v in upstream.items()]
        request_id = answer.header(b"x-request-id")
        if request_id is not None:
            headers.append((b"request-id", request_id))
        return _Refusal(answer.status, body, headers + self._error_headers(routed=True))

    # The service ------------------------------------------------------------------------

    def scope_path(self) -> str:
        path: str = self.scope["path"]
        return path if path.startswith("/v1/") else "/v1" + path

    def _api_base(self) -> str:
        host = dict(self.scope["headers"]).get(b"host", b"localhost").decode("latin-1")
        return f"{self.scope.get('scheme', 'http')}://{host}/v1"

    async def _forward(self, path: str, body: bytes, group: str) -> _Upstream:
        """Call the service (the proxy's provider) and take its whole answer."""
        headers = [(k, v) for k, v in self.scope["headers"] if k not in NOT_PASSED_ON]
        if self.dialect.api_key is not None:
            headers.append((b"authorization", f"Bearer {self.dialect.api_key}".encode()))
        if self.scope["method"] == "POST":
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            **self.scope,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
        }
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await self.receive()

        start: Message | None = None
        chunks: list[bytes] = []
        complete = False

        async def collect(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)

        try:
            await self.dialect.app(scope, replay, collect)
        except Exception:
            if start is None or complete:
                raise
            headers_out = dict(start.get("headers", []))
            expected = int(headers_out.get(b"content-length", b"0") or 0)
            raise self._incomplete(expected, sum(map(len, chunks)), group) from None
        assert start is not None, "the service answered without a status line"
        if not complete:
            expected = int(dict(start.get("headers", [])).get(b"content-length", b"0") or 0)
            raise self._incomplete(expected, sum(map(len, chunks)), group)
        return _Upstream(start["status"], list(start.get("headers", [])), b"".join(chunks))

    def _incomplete(self, expected: int, received: int, group: str) -> _Refusal:
        """An answer cut off after its status line: what the proxy's HTTP client reports."""
        message = (
            "litellm.InternalServerError: InternalServerError: OpenAIException - Response "
            "payload is not completed: <ContentLengthError: 400, message='Not enough data to "
            f"satisfy content length header (received {received} of {expected} bytes).'>"
        )
        return self._routed_failure(message, group)

    # Bodies -----------------------------------------------------------------------------

    async def _fields(self, body: bytes) -> dict[str, Any]:
        """The request's parameters as the proxy reads them (JSON or a form)."""
        if not body:
            return {}
        kind = _content_type(self.scope)
        if kind in FORM_TYPES:
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            try:
                form = await Request(self.scope, replay).form()
            except Exception:  # an unreadable form has no parameters
                return {}
            fields = {k: (v if isinstance(v, str) else _FILE) for k, v in form.multi_items()}
            await form.close()
            return fields
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _forwarded_body(self, body: bytes, video_id: str | None) -> bytes:
        """The body without what the proxy consumes, naming the service's own source id."""
        kind = _content_type(self.scope)
        if kind == "multipart/form-data":
            boundary = _boundary(self.scope)
            return _drop_multipart_fields(body, boundary, NOT_FORWARDED) if boundary else body
        try:
            parsed = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError):
            return body
        if not isinstance(parsed, dict):
            return body
        for name in NOT_FORWARDED:
            parsed.pop(name, None)
        if video_id is not None:
            parsed["video"] = {"id": video_id}
        return json.dumps(parsed).encode()


# Helpers --------------------------------------------------------------------------------


def _envelope(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _suffix(group: str) -> str:
    return (
        f"\n\nLiteLLM: model group '{group}' failed with the error above. "
        "No fallback was attempted."
    )


_RATE_LIMIT = re.compile(r"rate[\s_\-]*limit")
# Status -> (class, the class name repeated in the message) for the `openai` provider
# (litellm/litellm_core_utils/exception_mapping_utils.py, `_map_openai_exception`).
_CLASS_BY_STATUS: Mapping[int, tuple[str, str]] = {
    400: ("BadRequestError", ""),
    401: ("AuthenticationError", "AuthenticationError: "),
    404: ("NotFoundError", "NotFoundError: "),
    408: ("Timeout", "Timeout Error: "),
    422: ("BadRequestError", ""),
    429: ("RateLimitError", "RateLimitError: "),
    500: ("InternalServerError", "InternalServerError: "),
    502: ("BadGatewayError", "BadGatewayError: "),
    503: ("ServiceUnavailableError", "ServiceUnavailableError: "),
    504: ("Timeout", "Timeout Error: "),
}
_TYPE_BY_STATUS: Mapping[int, str] = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


def _error_class(status: int, text: str) -> tuple[str, str, str]:
    """LiteLLM's exception class for a provider error: its name, the name as repeated in
    the message, and the `type` the proxy answers with."""
    if (status == 429 and re.search(r"\b429\b", text)) or _RATE_LIMIT.search(text.lower()):
        cls, repeated = "RateLimitError", "RateLimitError: "
    elif "invalid_request_error" in text and "Incorrect API key provided" not in text:
        cls, repeated = "BadRequestError", ""
    else:
        cls, repeated = _CLASS_BY_STATUS.get(status, ("APIError", "APIError: "))
    if cls == "RateLimitError":
        return cls, repeated, "throttling_error"
    if cls == "InternalServerError":
        return cls, repeated, "internal_server_error"
    error_type = _TYPE_BY_STATUS.get(status) or (
        "invalid_request_error" if status < 500 else "internal_server_error"
    )
    return cls, repeated, error_type


def _character(answer: _Upstream, group: str) -> dict[str, Any]:
    """LiteLLM's character object, its id naming the deployment that made it."""
    character = json.loads(answer.body)
    return {
        "id": encode_character_id(character["id"], group),
        "object": "character",
        "created_at": character.get("created_at"),
        "name": character.get("name"),
    }


def _reference_id(video: object) -> str:
    """The id in an edit's or extension's `video` (LiteLLM's `video_reference_to_id`)."""
    if isinstance(video, dict):
        found = video.get("id", "")
        return found if isinstance(found, str) else ""
    if not isinstance(video, str):
        return ""
    try:
        parsed = json.loads(video)
    except ValueError:
        return video
    if isinstance(parsed, dict):
        found = parsed.get("id", "")
        return found if isinstance(found, str) else ""
    return video


def _content_type(scope: Scope) -> str:
    value = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    return value.split(";", 1)[0].strip().lower()


def _boundary(scope: Scope) -> bytes | None:
    value = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    found = re.search(r'boundary="?([^";]+)"?', value)
    return found.group(1).encode("latin-1") if found else None


def _drop_multipart_fields(body: bytes, boundary: bytes, names: Iterable[str]) -> bytes:
    dropped = set(names)
    delimiter = b"--" + boundary
    pieces = body.split(delimiter)
    kept = [pieces[0]]
    for piece in pieces[1:]:
        head = piece.split(b"\r\n\r\n", 1)[0]
        named = re.search(rb'name="([^"]*)"', head)
        if named and not piece.startswith(b"--") and named.group(1).decode() in dropped:
            continue
        kept.append(piece)
    return delimiter.join(kept)


async def _redirect(scope: Scope, send: Send, path: str) -> None:
    """Starlette's redirect of a path with a trailing slash to the route without it."""
    host = dict(scope["headers"]).get(b"host", b"localhost").decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    location = f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")
    await _send(send, 307, [(b"location", location.encode("latin-1"))], b"")


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    await _send(send, status, [(b"content-type", b"application/json"), *(headers or [])], encoded)


async def _send(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    secure: bool = True,
) -> None:
    out = [(b"content-length", str(len(body)).encode()), *headers]
    if secure:
        out += SECURITY_HEADERS
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})
