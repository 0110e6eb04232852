"""Reading a request body (JSON or multipart) into one nested mapping.

Both encodings end as the same shape so one set of field checks serves them. Multipart
follows what the official SDKs send: a part is a file only when it has a `filename`, and
nested objects are bracket-encoded (`video[id]=...` becomes `{"video": {"id": ...}}`).

A file part is held in memory once read, so its size is capped while it arrives: the part
that crosses `MAX_FILE_BYTES` stops the parse there, and the rest of the body is never read.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from remix_pipeline.service.errors import invalid_request

# A data-URL `image_url` may be up to 20 MiB; ordinary text fields are far smaller.
MAX_FIELD_BYTES = 21 * 1024 * 1024
# 64 MiB per uploaded file: a 120-second 720p H.264 clip at a phone's ~4 Mbit/s is ~60 MB,
# and the longest video the contract knows is 120 s (an extension chain's limit). The cap
# bounds the memory one request can take, since an upload is decoded from memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
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


class FileTooLargeError(MultiPartException):
    """A file part grew past the cap; raised from inside the parser, mid-stream."""

    def __init__(self, field_name: str, limit: int) -> None:
        super().__init__(f"file part '{field_name}' exceeds {limit} bytes")
        self.field_name = field_name
        self.limit = limit


class _CappedMultiPartParser(MultiPartParser):
    """Starlette's multipart parser with a cap on each file part, checked per chunk.

    Starlette caps text fields (`max_part_size`) but spools files of any size; counting in
    `on_part_data` stops a too-large file as it arrives instead of after it was stored.
    """

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        max_part_size: int,
        max_file_size: int,
    ) -> None:
        super().__init__(headers, stream, max_part_size=max_part_size)
        self.max_file_size = max_file_size
        self._file_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_size:
                raise FileTooLargeError(self._current_part.field_name, self.max_file_size)
        super().on_part_data(data, start, end)


async def _parse_form(request: Request) -> FormData:
    if media_type(request) != "multipart/form-data":
        return await request.form(max_part_size=MAX_FIELD_BYTES)
    # The module constant is read per request, so a test can lower the cap.
    async with aclosing(request.stream()) as stream:
        parser = _CappedMultiPartParser(
            request.headers, stream, max_part_size=MAX_FIELD_BYTES, max_file_size=MAX_FILE_BYTES
        )
        return await parser.parse()


def _size_text(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB" if size >= 1024 * 1024 else f"{size} bytes"


async def _read_form(request: Request) -> Body:
    try:
        form = await _parse_form(request)
    except FileTooLargeError as exc:
        name = exc.field_name[:80]
        raise invalid_request(
            f"Invalid '{name}': the uploaded file is larger than {_size_text(exc.limit)}, the most "
            "this server accepts.",
            param=name,
            code="file_too_large",
        ) from None
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
