"""Hypothesis strategies for what a client may send: bodies generated from the wire models' JSON
schemas (mostly valid, then bent: a field of the wrong type, a missing or unknown one, nesting past
every limit), arbitrary JSON, raw bytes, query strings and path ids. (hypothesis-jsonschema would do
the schema part, but its last release does not run with current Hypothesis.)"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

MODELS = ("fake-model", "fake-asap-flex")
# Property names that are worth steering toward values the server knows, so that bodies get past
# the first check and into the rest of the pipeline more often than chance would take them.
STEERED: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(MODELS) | st.text(max_size=8),
    "completion_window": st.sampled_from(["asap", "priority", "standard", "flex", "24h", "1h"]),
    "endpoint": st.sampled_from(["/v1/responses", "/v1/chat/completions", "/v1/x"]),
}

# Text with what trips parsers: digits that are not ASCII, NUL, the odd surrogate (JSON escapes it).
_chars = st.characters(codec=None, exclude_categories=()) | st.sampled_from("²٣\x00\ud800é<|")
text = st.text(_chars, max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4)
)


@st.composite
def nested(draw: st.DrawFn) -> Any:
    """A value nested past one of the limits: the app's (64), the serializer's (255), the parser's
    (1024)."""
    depth = draw(st.sampled_from([63, 65, 200, 254, 256, 300, 1023, 1100]))
    value: Any = draw(scalars)
    for _ in range(depth):
        value = {"a": value} if draw(st.booleans()) else [value]
    return value


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a pydantic model's JSON schema (``$defs`` and ``$ref``, ``anyOf``, enums, typed
    values, objects with their required and some optional properties, short arrays)."""
    defs = schema.get("$defs", {})
    refs: dict[str, st.SearchStrategy[Any]] = {}

    def of(node: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
        if name in STEERED:
            return STEERED[name] | of({k: v for k, v in node.items()})
        if "$ref" in node:
            key = node["$ref"].rsplit("/", 1)[-1]
            if key not in refs:
                refs[key] = st.deferred(lambda: of(defs[key]))
            return refs[key]
        if "anyOf" in node or "oneOf" in node:
            return st.one_of([of(n) for n in node.get("anyOf", node.get("oneOf"))])
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        kind = node.get("type")
        if kind == "string":
            return st.text(_chars, max_size=min(node.get("maxLength", 16), 16)) | (
                st.just("x" * (node["maxLength"] + 1))
                if node.get("maxLength", 1 << 20) <= 4096
                else st.nothing()
            )
        if kind == "integer":
            return st.integers(min_value=-2, max_value=64) | st.integers()
        if kind == "number":
            return st.floats(allow_nan=False) | st.integers()
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            items = of(node.get("items", {}))
            return st.lists(items, max_size=3) | (
                st.lists(items, min_size=node["maxItems"] + 1, max_size=node["maxItems"] + 1)
                if node.get("maxItems", 99) <= 64
                else st.nothing()
            )
        if kind == "object" and "properties" in node:
            return _object(node, of)
        return json_values | nested()  # free-form JSON (a schema, a tool's input, …)

    return of(schema)


def _object(node: dict[str, Any], of: Any) -> st.SearchStrategy[dict[str, Any]]:
    props, required = node["properties"], set(node.get("required", ()))
    return st.fixed_dictionaries(
        {k: of(v, k) for k, v in props.items() if k in required},
        optional={k: of(v, k) for k, v in props.items() if k not in required},
    )


@st.composite
def bent(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """Mostly a value from ``valid``; sometimes with a field dropped, replaced by any JSON (or by
    something nested too deep), or an unknown field added."""
    value = draw(valid)
    if not isinstance(value, dict) or draw(st.integers(0, 3)) > 0:
        return value
    keys = sorted(value)
    how = draw(st.sampled_from(["drop", "replace", "deep", "add"]))
    if how == "add" or not keys:
        return {**value, draw(text): draw(json_values)}
    key = draw(st.sampled_from(keys))
    if how == "drop":
        return {k: v for k, v in value.items() if k != key}
    return {**value, key: draw(nested() if how == "deep" else json_values)}


def encoded(value: Any) -> bytes:
    """JSON as a client library writes it (lone surrogates escaped, like ``\\ud800``)."""
    return json.dumps(value, allow_nan=True).encode()


raw_bodies = st.binary(max_size=64) | st.sampled_from(
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"model": "fake-model", "input": "\xff\xfe"}',
        b'{"a": 1e999999}',
        b'{"a": 123456789012345678901234567890}',
        b'{"a": NaN}',
        b'{"model": "fake-model", "input": "\\ud800"}',
    ]
)
query_values = text | st.sampled_from(
    ["²", "٣", "1", "0", "-1", "101", "10001", "1e3", " 1", "99999999999999999999"]
)
