"""Identifiers that are safe to put in a URL path.

Checked before any request is built, on both sides of the wire: a hostile ID from a user's
table (`../x`, `a/b`, `%2e%2e`) must never reach a server as a different path.

Gateways re-encode the ids of the server behind them: the LiteLLM proxy answers with
`video_` plus standard base64 of its routing data, 242 to 322 characters with `=` padding.
Such ids are admitted (up to `ID_MAX_CHARS`, padding only at the end); anything that could
change the meaning of a path (`/`, `.`, `%`, `+`, spaces, control characters) is not.
"""

from __future__ import annotations

import re

ID_MAX_CHARS = 512
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*={0,2}")


class InvalidIdError(ValueError):
    """An identifier that may not enter a URL path."""


def id_problem(value: object, *, kind: str = "video id") -> str | None:
    """Why `value` is not a safe identifier, or None when it is."""
    if not isinstance(value, str):
        return f"{kind} must be a string, got {type(value).__name__}"
    if value == "":
        return f"{kind} is empty"
    if len(value) > ID_MAX_CHARS:
        return f"{kind} is {len(value)} characters long (at most {ID_MAX_CHARS})"
    if _ID_PATTERN.fullmatch(value) is None:
        return (
            f"{kind} {value[:40]!r} may only contain letters, digits, '_' and '-' (and "
            "trailing '=' padding), starting with a letter or digit"
        )
    return None


def validate_id(
    value: object, *, kind: str = "video id", error: type[InvalidIdError] = InvalidIdError
) -> str:
    """`value` as an id, or `error` naming its problem (the client raises its own subclass)."""
    problem = id_problem(value, kind=kind)
    if problem is not None:
        raise error(problem)
    assert isinstance(value, str)
    return value
