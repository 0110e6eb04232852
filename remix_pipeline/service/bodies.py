"""Reading a request body (JSON or multipart) into one nested mapping.

Both encodings end as the same shape so one set of field checks serves them. Multipart
follows what the official SDKs send: a part is a file only when it has a `filename`, and
nested objects are bracket-encoded (`video[id]=...` becomes `{"video": {"id": ...}}`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from remix_pipeline.service.errors import invalid_request

# A data-URL `image_url` may be up to 20 MiB; ordinary text fields are far smaller.
MAX_FIELD_BYTES = 21 * 1024 * 1024
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_FIELD_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])*)")


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str | None
    data: bytes


Body = dict[str, object]


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, *, multipart_only: bool = False) -> Body:
    kind = media_type(request)
    if kind in _FORM_TYPES:
        return await _read_form(request)
    if multipart_only:
        raise invalid_request(
            f"This endpoint expects multipart/form-data, but the request was sent as "
            f"'{kind or 'no content type'}'.",
            code="unsupported_content_type",
        )
    if kind not in ("", "application/json") and not kind.endswith("+json"):
        raise invalid_request(
            f"Unsupported content type '{kind}': send application/json or multipart/form-data.",
            code="unsupported_content_type",
        )
    return await _read_json(request)


async def _read_json(request: Request) -> Body:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_request(
            "We could not parse the JSON body of your request. The body must be a valid "
            "JSON object.",
            code="invalid_json",
        ) from None
    if not isinstance(parsed, dict):
        raise invalid_request(
            "The JSON body of your request must be an object, "
            f"but got {type(parsed).__name__} instead.",
            code="invalid_json",
        )
    return parsed


async def _read_form(request: Request) -> Body:
    try:
        form = await request.form(max_part_size=MAX_FIELD_BYTES)
    except (MultiPartException, HTTPException, ValueError) as exc:
        detail = getattr(exc, "message", None) or getattr(exc, "detail", None) or str(exc)
        raise invalid_request(f"Could not parse the multipart body: {detail}") from None
    body: Body = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                item: object = UploadedFile(
                    filename=value.filename or "",
                    content_type=value.content_type,
                    data=await value.read(),
                )
            else:
                item = value
            _place(body, name, item)
    finally:
        await form.close()
    return body


def _place(body: Body, name: str, value: object) -> None:
    match = _FIELD_NAME.fullmatch(name)
    if match is None:
        raise invalid_request(f"Invalid form field name '{name[:80]}'.", code="invalid_field_name")
    path = [match.group(1), *re.findall(r"\[([^\[\]]+)\]", match.group(2))]
    target = body
    for depth, key in enumerate(path[:-1]):
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            prefix = _bracketed(path[: depth + 1])
            raise invalid_request(
                f"Form field '{prefix}' was sent both as a value and as an object.", param=prefix
            )
        target = child
    last = path[-1]
    if last in target:
        raise invalid_request(
            f"Form field '{_bracketed(path)}' was sent more than once.", param=_bracketed(path)
        )
    target[last] = value


def _bracketed(path: list[str]) -> str:
    return path[0] + "".join(f"[{p}]" for p in path[1:])
