"""JSON Schema → GBNF, for generation that matches the schema by construction.

The grammar generates a subset of the schema's instances, never anything outside it. What it cannot
guarantee it refuses: a keyword that is not supported raises ``SchemaError`` naming where it is, so a
request is answered 400 instead of with output that might not validate.

Supported: ``type`` (one or a list), ``enum``, ``const``, ``anyOf``, ``allOf`` of one schema, local
``$ref`` (``#``, ``#/$defs/…``, recursion included); objects: ``properties``, ``required``,
``additionalProperties`` (properties come in the order declared; with declared properties no others
are generated, which every value of ``additionalProperties`` allows); arrays: ``items``,
``minItems``, ``maxItems``; strings: ``minLength``, ``maxLength``, ``format`` (``date``, ``time``,
``date-time`` and ``uuid`` are enforced; other formats are annotations, as JSON Schema has them by
default); integers: ``minimum``/``maximum`` (and the exclusive forms) for ranges of at most 256
values, or a lower bound of 0 or 1; numbers: ``minimum: 0``. Annotations (``title``,
``description``, ``default``, ``examples``, …) are ignored. Not supported: ``oneOf`` (use ``anyOf``),
``pattern``, ``multipleOf``, ``not``, ``if``/``then``/``else``, ``prefixItems``, ``uniqueItems``,
``patternProperties``, other bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from leeway.grammar.rules import Rules, literal, repeat

Path = tuple[str | int, ...]

TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
        "contentEncoding",
        "contentMediaType",
    }
)
_COMBINERS = ("$ref", "anyOf", "allOf", "enum", "const")
_BY_TYPE = {
    "object": ("properties", "required", "additionalProperties"),
    "array": ("items", "minItems", "maxItems"),
    "string": ("minLength", "maxLength", "format"),
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
}
KEYWORDS = frozenset({"type", *_COMBINERS, *(k for ks in _BY_TYPE.values() for k in ks)})
_INSTEAD = {"oneOf": " (use anyOf)", "nullable": ' (use "type": [..., "null"])'}
_FORMATS = {"date": "date-string", "time": "time-string", "date-time": "date-time-string"}
_FORMATS |= {"uuid": "uuid-string"}
_MAX_DEPTH, _MAX_RULES, _MAX_REPEAT, _MAX_RANGE = 48, 4000, 10_000, 256


class SchemaError(ValueError):
    """A schema that is invalid, or that Leeway cannot enforce; ``path`` is where, in the schema."""

    def __init__(self, path: Path, message: str) -> None:
        self.path, self.message = path, message
        super().__init__(f"{where(path) or '(root)'}: {message}")


def where(path: Path) -> str:
    """A path as ``properties.age.type`` / ``anyOf[1]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def compact(value: Any) -> str:
    return orjson.dumps(value).decode()


def show(value: Any) -> str:
    """A value in a message: a string quoted as 'x', anything else as JSON."""
    return f"'{value}'" if isinstance(value, str) else compact(value)


def compile_schema(rules: Rules, schema: Any, prefix: str) -> str:
    """Add the rules for ``schema`` (names starting with ``prefix``) and return the expression for
    its root value. Raises ``SchemaError``."""
    root = _Compiler(rules, schema, prefix).visit(schema, (), prefix)
    if len(rules) > _MAX_RULES:
        raise SchemaError((), f"the schema is too large (over {_MAX_RULES} grammar rules)")
    return root


class _Compiler:
    def __init__(self, rules: Rules, root: Any, prefix: str) -> None:
        self.rules, self.root, self.prefix = rules, root, prefix
        self.refs: dict[str, str] = {}

    def visit(self, schema: Any, path: Path, hint: str) -> str:
        if len(path) > _MAX_DEPTH:
            raise SchemaError(path, f"the schema nests deeper than {_MAX_DEPTH} levels")
        if schema is True:
            return self.rules.primitive("value")
        if schema is False:
            raise SchemaError(path, "the schema false matches nothing")
        if not isinstance(schema, Mapping):
            raise SchemaError(path, f"a schema is an object or a boolean, not {compact(schema)}")
        for key in schema:
            if key not in KEYWORDS and key not in ANNOTATIONS:
                raise SchemaError((*path, key), f"'{key}' is not supported{_INSTEAD.get(key, '')}")
        for key in ("$ref", "anyOf", "allOf"):
            if key in schema:
                others = [k for k in schema if k not in ANNOTATIONS and k != key]
                if others:
                    raise SchemaError(
                        (*path, others[0]), f"'{others[0]}' beside '{key}' is not supported"
                    )
        if "$ref" in schema:
            return self.ref(schema["$ref"], (*path, "$ref"))
        if "anyOf" in schema:
            branches = _schemas(schema["anyOf"], (*path, "anyOf"), least=1)
            alts = [
                self.visit(b, (*path, "anyOf", i), f"{hint}-{i}") for i, b in enumerate(branches)
            ]
            return self.rules.add(hint, " | ".join(alts))
        if "allOf" in schema:
            parts = _schemas(schema["allOf"], (*path, "allOf"), least=1)
            if len(parts) > 1:
                raise SchemaError(
                    (*path, "allOf"), "allOf with more than one schema is not supported"
                )
            return self.visit(parts[0], (*path, "allOf", 0), hint)
        types = self.types(schema, path)
        if "const" in schema or "enum" in schema:
            return self.literals(schema, types, path, hint)
        alts = [
            self.typed(t, schema, path, f"{hint}-{t}" if len(types) > 1 else hint) for t in types
        ]
        return alts[0] if len(alts) == 1 else self.rules.add(hint, " | ".join(alts))

    def types(self, schema: Mapping[str, Any], path: Path) -> list[str]:
        kind = schema.get("type")
        if kind is None:
            present = [t for t, keys in _BY_TYPE.items() if any(k in schema for k in keys)]
            if "enum" in schema or "const" in schema or not present:
                return list(TYPES) if "enum" in schema or "const" in schema else ["any"]
            return present[:1]  # a subset of what the schema allows
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds:
            raise SchemaError((*path, "type"), "an empty list of types matches nothing")
        for i, k in enumerate(kinds):
            at = (*path, "type", i) if isinstance(kind, list) else (*path, "type")
            if not isinstance(k, str) or k not in TYPES:
                raise SchemaError(
                    at, f"{show(k)} is not a JSON Schema type (one of {', '.join(TYPES)})"
                )
        return list(dict.fromkeys(kinds))

    def literals(self, schema: Mapping[str, Any], types: list[str], path: Path, hint: str) -> str:
        if "const" in schema:
            values, at = [schema["const"]], (*path, "const")
        else:
            values, at = schema["enum"], (*path, "enum")
            if not isinstance(values, list) or not values:
                raise SchemaError(at, "enum must be a non-empty list")
        for i, v in enumerate(values):
            if not any(_is(v, t) for t in types):
                spot = at if "const" in schema else (*at, i)
                raise SchemaError(spot, f"{compact(v)} is not of type {' or '.join(types)}")
        return self.rules.add(hint, " | ".join(literal(compact(v)) for v in values))

    def typed(self, kind: str, schema: Mapping[str, Any], path: Path, hint: str) -> str:
        if kind == "any":
            return self.rules.primitive("value")
        if kind == "object":
            return self.object(schema, path, hint)
        if kind == "array":
            return self.array(schema, path, hint)
        if kind == "string":
            return self.string(schema, path, hint)
        if kind == "integer":
            return self.integer(schema, path, hint)
        if kind == "number":
            return self.number(schema, path)
        return self.rules.primitive(kind)

    def ref(self, ref: Any, path: Path) -> str:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(
                path, f"only local references ('#/$defs/…') are supported, not {compact(ref)}"
            )
        if ref in self.refs:
            return self.refs[ref]
        target: Any = self.root
        at: Path = ()
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise SchemaError(path, f"{ref} does not point into this schema")
            target, at = target[part], (*at, part)
        name = self.rules.reserve(f"{self.prefix}-{at[-1] if at else 'root'}")
        self.refs[ref] = name
        self.rules.define(name, self.visit(target, at, name))
        return name

    def object(self, schema: Mapping[str, Any], path: Path, hint: str) -> str:
        props = schema.get("properties", {})
        if not isinstance(props, Mapping):
            raise SchemaError((*path, "properties"), "properties must be an object of schemas")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError((*path, "required"), "required must be a list of property names")
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, bool | Mapping):
            raise SchemaError((*path, "additionalProperties"), "must be a boolean or a schema")
        extra_rule = None
        if isinstance(extra, Mapping):
            extra_rule = self.visit(extra, (*path, "additionalProperties"), f"{hint}-extra")
        ws = self.rules.primitive("ws")
        kvs: list[tuple[str, bool]] = []
        for name, sub in props.items():
            value = self.visit(sub, (*path, "properties", name), f"{hint}-{name}")
            kvs.append((f'{literal(compact(name))} {ws} ":" {ws} {value} {ws}', name in required))
        for name in dict.fromkeys(r for r in required if r not in props):
            if extra is False:
                raise SchemaError(
                    (*path, "required"),
                    f"'{name}' is required, but it is not in properties and "
                    "additionalProperties is false",
                )
            value = extra_rule or self.rules.primitive("value")
            kvs.append((f'{literal(compact(name))} {ws} ":" {ws} {value} {ws}', True))
        if not kvs:
            if extra is False:
                return self.rules.add(hint, f'"{{" {ws} "}}"')
            string, value = (
                self.rules.primitive("string"),
                extra_rule or self.rules.primitive("value"),
            )
            kv = f'{string} {ws} ":" {ws} {value} {ws}'
            return self.rules.add(hint, f'"{{" {ws} ( {kv} ( "," {ws} {kv} )* )? "}}"')
        return self.rules.add(hint, f'"{{" {ws} {self.members(kvs, hint)} "}}"')

    def members(self, kvs: list[tuple[str, bool]], hint: str) -> str:
        """Members in order: required ones always, optional ones or not, commas between."""
        comma = f'"," {self.rules.primitive("ws")}'
        after = {True: "", False: ""}  # what may follow member i, by whether none came before
        for i in range(len(kvs) - 1, -1, -1):
            kv, needed = kvs[i]
            now = {}
            for first in (True, False):
                present = " ".join(p for p in ("" if first else comma, kv, after[False]) if p)
                if needed:
                    now[first] = f"( {present} )"
                elif after[first]:
                    name = f"{hint}-m{i}{'f' if first else ''}"
                    now[first] = self.rules.add(name, f"{present} | {after[first]}")
                else:
                    now[first] = f"( {present} )?"
            after = now
        return after[True]

    def array(self, schema: Mapping[str, Any], path: Path, hint: str) -> str:
        items = self.visit(schema.get("items", True), (*path, "items"), f"{hint}-item")
        least = _count(schema, "minItems", path) or 0
        most = _count(schema, "maxItems", path)
        if most is not None and most < least:
            raise SchemaError((*path, "maxItems"), f"maxItems {most} is below minItems {least}")
        ws = self.rules.primitive("ws")
        if most == 0:
            return self.rules.add(hint, f'"[" {ws} "]"')
        more = repeat(
            f'( "," {ws} {items} {ws} )', max(least - 1, 0), None if most is None else most - 1
        )
        body = f"{items} {ws} {more}"
        return self.rules.add(hint, f'"[" {ws} {body if least else f"( {body} )?"} "]"')

    def string(self, schema: Mapping[str, Any], path: Path, hint: str) -> str:
        fmt = schema.get("format")
        least = _count(schema, "minLength", path) or 0
        most = _count(schema, "maxLength", path)
        if fmt in _FORMATS:
            if "minLength" in schema or "maxLength" in schema:
                raise SchemaError(
                    (*path, "format"), f"format {fmt} with a length bound is not supported"
                )
            return self.rules.primitive(_FORMATS[fmt])
        if least == 0 and most is None:
            return self.rules.primitive("string")
        if most is not None and most < least:
            raise SchemaError((*path, "maxLength"), f"maxLength {most} is below minLength {least}")
        char = self.rules.primitive("char")
        return self.rules.add(hint, f'"\\"" {repeat(char, least, most)} "\\""')

    def integer(self, schema: Mapping[str, Any], path: Path, hint: str) -> str:
        low, high = _bounds(schema, path, integer=True)
        if low is None and high is None:
            return self.rules.primitive("integer")
        if low is not None and high is not None:
            if high < low:
                raise SchemaError(path, f"no integer lies between {low} and {high}")
            if high - low < _MAX_RANGE:
                span = range(int(low), int(high) + 1)
                return self.rules.add(hint, " | ".join(literal(str(n)) for n in span))
        if high is None and low in (0, 1):
            return self.rules.primitive("int-part" if low == 0 else "positive-integer")
        bound = next(k for k in _BY_TYPE["integer"] if k in schema)
        raise SchemaError(
            (*path, bound),
            f"integer bounds are supported for ranges of at most {_MAX_RANGE} values or a lower "
            "bound of 0 or 1",
        )

    def number(self, schema: Mapping[str, Any], path: Path) -> str:
        present = [k for k in _BY_TYPE["number"] if k in schema]
        if not present:
            return self.rules.primitive("number")
        if present == ["minimum"] and schema["minimum"] == 0:
            return self.rules.primitive("nonneg-number")
        raise SchemaError(
            (*path, present[0]), "number bounds other than minimum: 0 are not supported"
        )


def _schemas(value: Any, path: Path, least: int) -> Sequence[Any]:
    if not isinstance(value, list) or len(value) < least:
        raise SchemaError(path, "must be a non-empty list of schemas")
    return value


def _count(schema: Mapping[str, Any], key: str, path: Path) -> int | None:
    if key not in schema:
        return None
    value = schema[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError((*path, key), f"{key} must be a non-negative integer")
    if value > _MAX_REPEAT:
        raise SchemaError((*path, key), f"{key} above {_MAX_REPEAT} is not supported")
    return value


def _bounds(
    schema: Mapping[str, Any], path: Path, integer: bool
) -> tuple[float | None, float | None]:
    low: float | None = None
    high: float | None = None
    for key in _BY_TYPE["integer"]:
        if key not in schema:
            continue
        v = schema[key]
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise SchemaError((*path, key), f"{key} must be a number")
        if key == "minimum":
            b = math.ceil(v) if integer else v
            low = b if low is None else max(low, b)
        elif key == "exclusiveMinimum":
            b = math.floor(v) + 1
            low = b if low is None else max(low, b)
        elif key == "maximum":
            b = math.floor(v)
            high = b if high is None else min(high, b)
        else:
            b = math.ceil(v) - 1
            high = b if high is None else min(high, b)
    return low, high


def _is(value: Any, kind: str) -> bool:
    match kind:
        case "any":
            return True
        case "string":
            return isinstance(value, str)
        case "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            )
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "null":
            return value is None
        case "object":
            return isinstance(value, dict)
        case _:
            return isinstance(value, list)
