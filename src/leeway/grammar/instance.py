"""The smallest value matching a schema, for engines that do not generate (the fake engine): required
properties only, the first ``enum``/``anyOf``/type choice, the fewest array items, the shortest
strings, the lowest numbers allowed. Schemas are the ones ``check_schema`` accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_FORMATS = {
    "date": "2000-01-01",
    "time": "00:00:00Z",
    "date-time": "2000-01-01T00:00:00Z",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def minimal(schema: Any, root: Any = None, depth: int = 0) -> Any:
    root = schema if root is None else root
    if depth > 64 or not isinstance(schema, Mapping):
        return None if schema is not True else {}
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#").split("/")[1:]:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return minimal(target, root, depth + 1)
    if "anyOf" in schema:
        return minimal(schema["anyOf"][0], root, depth + 1)
    if "allOf" in schema:
        return minimal(schema["allOf"][0], root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind is None:
        kind = next(
            (k for k, keys in _INFER.items() if any(key in schema for key in keys)), "object"
        )
    return _typed(kind, schema, root, depth)


_INFER = {
    "object": ("properties", "required", "additionalProperties"),
    "array": ("items", "minItems", "maxItems"),
    "string": ("minLength", "maxLength", "format"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
}


def _typed(kind: str, schema: Mapping[str, Any], root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        return {
            name: minimal(props.get(name, extra), root, depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [minimal(schema.get("items", True), root, depth + 1)] * schema.get("minItems", 0)
    if kind == "string":
        return _FORMATS.get(schema.get("format", ""), "a" * schema.get("minLength", 0))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        if low is None:
            return 0
        value = math.ceil(low) if "minimum" in schema else math.floor(low) + 1
        return value
    if kind == "boolean":
        return False
    return None
