"""Checks of request fields, with the messages and codes the OpenAI API uses.

Each check names the offending field in `param`, so a client can point at the bad cell of
its table instead of printing a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

from remix_pipeline.contract import PROMPT_MAX_CHARS, Allowed, id_problem
from remix_pipeline.contract.models import CHARACTER_NAME_MAX_CHARS
from remix_pipeline.service.bodies import Body, UploadedFile
from remix_pipeline.service.errors import ApiError, invalid_request

# In the order they are tried: a bool is an int too.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
    (UploadedFile, "a file"),
)


def type_name(value: object) -> str:
    """How the API's error messages name a value's JSON type."""
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _wrong_type(name: str, expected: str, value: object) -> ApiError:
    return invalid_request(
        f"Invalid type for '{name}': expected {expected}, but got {type_name(value)} instead.",
        param=name,
        code="invalid_type",
    )


def reject_unknown(body: Body, allowed: Iterable[str], *, prefix: str = "") -> None:
    known = set(allowed)
    for key in body:
        if key not in known:
            name = f"{prefix}[{key}]" if prefix else key
            raise invalid_request(
                f"Unrecognized request argument supplied: {name}",
                param=name,
                code="unknown_parameter",
            )


def _missing(name: str) -> ApiError:
    return invalid_request(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def prompt_field(body: Body, name: str = "prompt") -> str:
    if name not in body:
        raise _missing(name)
    value = body[name]
    if not isinstance(value, str):
        raise _wrong_type(name, "a string", value)
    if not value.strip():
        raise invalid_request(
            f"Invalid '{name}': expected a non-empty string, but got an empty string instead.",
            param=name,
            code="string_below_min_length",
        )
    if len(value) > PROMPT_MAX_CHARS:
        raise invalid_request(
            f"Invalid '{name}': string too long. Expected a string with maximum length "
            f"{PROMPT_MAX_CHARS}, but got a string with length {len(value)} instead.",
            param=name,
            code="string_above_max_length",
        )
    return value


def _optional_string(body: Body, name: str, default: str | None, expected: str) -> str | None:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, str):
        raise _wrong_type(name, expected, value)
    return value


def _choices(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + ", or " + quoted[-1]


def seconds_field(body: Body, allowed: Allowed, default: str | None) -> str:
    """`seconds` must be a string such as "8": an integer 8 is the classic client mistake."""
    value = _optional_string(body, "seconds", default, f"one of {_choices(allowed.seconds)}")
    if value is None:
        raise _missing("seconds")
    return _checked("seconds", value, allowed.check_seconds(value))


def size_field(body: Body, allowed: Allowed, default: str) -> str:
    value = _optional_string(body, "size", default, "a string")
    assert value is not None
    return _checked("size", value, allowed.check_size(value))


def model_field(body: Body, allowed: Allowed, default: str) -> str:
    value = _optional_string(body, "model", default, "a string")
    assert value is not None
    return _checked("model", value, allowed.check_model(value))


def _checked(name: str, value: str, problem: str | None) -> str:
    if problem is not None:
        raise invalid_request(problem, param=name, code="invalid_value")
    return value


def input_reference_field(body: Body) -> None:
    """Accept an uploaded image, or an object with exactly one of image_url and file_id."""
    if "input_reference" not in body:
        return
    value = body["input_reference"]
    if isinstance(value, UploadedFile):
        if not value.data:
            raise invalid_request(
                "Invalid 'input_reference': the uploaded file is empty.",
                param="input_reference",
                code="invalid_value",
            )
        return
    if not isinstance(value, dict):
        raise _wrong_type("input_reference", "a file or an object", value)
    reject_unknown(value, ("image_url", "file_id"), prefix="input_reference")
    present = [k for k in ("image_url", "file_id") if k in value]
    if len(present) != 1:
        raise invalid_request(
            "Invalid 'input_reference': provide exactly one of 'image_url' or 'file_id'.",
            param="input_reference",
            code="invalid_value",
        )
    key = present[0]
    if not isinstance(value[key], str) or not value[key]:
        raise _wrong_type(f"input_reference[{key}]", "a non-empty string", value[key])


def video_source_field(body: Body, name: str = "video") -> str | UploadedFile:
    """An edit's or extension's source: a referenced video's id (`video[id]`) or a file.

    Only the part's shape is checked here; whether an upload is a usable video is `uploads`'s
    concern, and it costs a decode, so it comes after the cheap checks of the other fields.
    """
    upload = body.get(name)
    if isinstance(upload, UploadedFile):
        return upload
    if name not in body:
        raise _missing(name)
    value = body[name]
    if not isinstance(value, dict):
        raise _wrong_type(name, "a file or an object with an 'id'", value)
    reject_unknown(value, ("id",), prefix=name)
    if "id" not in value:
        raise _missing(f"{name}[id]")
    video_id = value["id"]
    problem = id_problem(video_id)
    if problem is not None:
        raise invalid_request(f"Invalid '{name}[id]': {problem}.", param=f"{name}[id]")
    assert isinstance(video_id, str)
    return video_id


def character_name_field(body: Body) -> str:
    if "name" not in body:
        raise _missing("name")
    value = body["name"]
    if not isinstance(value, str):
        raise _wrong_type("name", "a string", value)
    if not value.strip() or len(value) > CHARACTER_NAME_MAX_CHARS:
        raise invalid_request(
            f"Invalid 'name': expected 1 to {CHARACTER_NAME_MAX_CHARS} characters, "
            f"but got {len(value)}.",
            param="name",
            code="invalid_value",
        )
    return value


def character_video_field(body: Body) -> UploadedFile:
    if "video" not in body:
        raise _missing("video")
    value = body["video"]
    if not isinstance(value, UploadedFile):
        raise _wrong_type("video", "a file", value)
    if not value.data:
        raise invalid_request(
            "Invalid 'video': the uploaded file is empty.", param="video", code="invalid_value"
        )
    return value
