"""The OpenAPI document of the Videos API the service implements, as a validator: tests hold
each answer to the spec's own schemas rather than to a copy of them."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[1] / "service" / "spec" / "openai-videos.openapi.yaml"
SPEC_URI = "urn:openai-videos-spec"


class SpecValidator:
    """Checks a response against the OpenAPI document's schemas (Draft 2020-12, `$ref`s)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def errors(self, schema_name: str, instance: object) -> list[str]:
        validator = self._validators.get(schema_name)
        if validator is None:
            schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
            validator = Draft202012Validator(schema, registry=self.registry)
            self._validators[schema_name] = validator
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def response_schema(self, method: str, path_template: str) -> str:
        operation = self.spec["paths"][path_template][method.lower()]
        content = operation["responses"]["200"]["content"]
        ref = content["application/json"]["schema"].get("$ref", "")
        return ref.rsplit("/", 1)[-1]

    def check(self, response: httpx.Response, method: str, path_template: str) -> list[str]:
        """Problems with `response` as an answer to `method path_template` (empty if none)."""
        problems: list[str] = []
        if not response.headers.get("x-request-id"):
            problems.append("missing x-request-id header")
        if response.status_code != 200:
            problems += self.errors("ErrorResponse", _json(response))
            if response.status_code == 429:
                problems += _retry_header_problems(response)
            return problems
        if path_template.endswith("/content"):
            allowed = {"video/mp4", "image/webp", "image/jpeg"}
            kind = response.headers.get("content-type", "").split(";")[0]
            if kind not in allowed:
                problems.append(f"content type {kind!r} is not one of {sorted(allowed)}")
            return problems
        return problems + self.errors(self.response_schema(method, path_template), _json(response))


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return f"<not JSON: {response.text[:80]!r}>"


def _retry_header_problems(response: httpx.Response) -> list[str]:
    header = response.headers.get("retry-after", "")
    problems = []
    if not header.isdigit() or int(header) < 1:
        problems.append(f"retry-after {header!r} is not an integer >= 1")
    if not response.headers.get("retry-after-ms", "").isdigit():
        problems.append("retry-after-ms missing or not an integer")
    return problems


@cache
def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
