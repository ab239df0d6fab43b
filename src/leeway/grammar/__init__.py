"""Grammars for constrained decoding: a job's output format and tools as one GBNF grammar (the format
llama.cpp's grammar sampler reads), built once per distinct format and tool set.

- a format alone: the reply is one JSON value matching its schema (any object for ``json_object``);
- tools, ``required`` (or one tool forced): the reply is calls of the allowed tools, arguments
  matching each tool's schema;
- tools, ``auto``: text in which no call starts, then optionally calls (with a format: a value
  matching it, or calls);
- tools, ``none``: text in which no call starts (or a value matching the format).

``check_schema`` is what the API calls on every schema a request carries: it raises ``SchemaError``
naming the part of the schema that is invalid or cannot be enforced.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leeway.grammar.calls import calls_rule, text_rule
from leeway.grammar.rules import Rules
from leeway.grammar.schema import SchemaError, compact, compile_schema, where
from leeway.jobs import Job
from leeway.structured import OutputFormat, ToolChoice, Tools

__all__ = [
    "Grammar",
    "SchemaError",
    "build",
    "check_parameters",
    "check_schema",
    "for_job",
    "where",
]

ANY_OBJECT: dict[str, Any] = {"type": "object"}
_CACHE_BYTES = 16 * 1024 * 1024  # per cache, keys and grammars together (a schema may be 256 KiB)


@dataclass(frozen=True, slots=True)
class Grammar:
    text: str  # GBNF, start rule ``root``
    # the grammar's language is prefix-free: once it allows the end of generation, the reply is
    # complete (generation ends there, without asking the model)
    closed: bool


class _Cache:
    """Least recently used first out, bounded by the bytes of its keys and values (by count, a few
    hundred large schemas would hold hundreds of MB)."""

    def __init__(self, most: int = _CACHE_BYTES) -> None:
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._most, self._bytes = most, 0

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __getitem__(self, key: str) -> Any:
        self._items.move_to_end(key)
        return self._items[key][0]

    def put(self, key: str, value: Any, size: int) -> None:
        size += len(key)
        if key in self._items:
            self._bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self._bytes += size
        while self._bytes > self._most and len(self._items) > 1:
            self._bytes -= self._items.popitem(last=False)[1][1]


_grammars = _Cache()
_checked = _Cache()


def for_job(job: Job) -> Grammar | None:
    return build(job.output_format, job.tools)


def build(fmt: OutputFormat | None, tools: Tools | None) -> Grammar | None:
    """The grammar for a format and tools (None: nothing to constrain)."""
    key = compact(
        [
            None if fmt is None else [fmt.schema],
            None
            if tools is None
            else [
                [[t.name, t.kind, t.parameters] for t in tools.tools],
                tools.choice,
                tools.only,
                tools.parallel,
            ],
        ]
    )
    if key in _grammars:
        return _grammars[key]  # type: ignore[no-any-return]
    grammar = _compile(fmt, tools)
    _grammars.put(key, grammar, 0 if grammar is None else len(grammar.text))
    return grammar


def check_schema(schema: Any) -> None:
    """Raise ``SchemaError`` if ``schema`` is invalid or cannot be enforced."""
    key = compact(schema)
    if key not in _checked:
        try:
            compile_schema(Rules(), schema, "f")
        except SchemaError as e:
            _checked.put(key, e, len(e.message))
        else:
            _checked.put(key, None, 0)
    if (error := _checked[key]) is not None:
        raise error


def check_parameters(schema: Any) -> None:
    """A function tool's parameters: an object schema that can be enforced."""
    check_schema(schema)
    if not _object_root(schema):
        raise SchemaError((), 'tool parameters must be a JSON Schema with "type": "object"')


def _compile(fmt: OutputFormat | None, tools: Tools | None) -> Grammar | None:
    rules = Rules()
    schema = None if fmt is None else (fmt.schema if fmt.schema is not None else ANY_OBJECT)
    value = None if schema is None else compile_schema(rules, schema, "f")
    calling = tools is not None and bool(tools.allowed())
    if tools is None or not calling:
        if value is not None:
            return Grammar(rules.text(value), closed=_closed(schema))
        if tools is not None and tools.tools:  # choice none: text, never a call
            return Grammar(rules.text(text_rule(rules)), closed=False)
        return None
    calls = calls_rule(rules, tools)
    if tools.choice is ToolChoice.REQUIRED:
        return Grammar(rules.text(calls), closed=not (tools.parallel and tools.only is None))
    other = value if value is not None else text_rule(rules)
    root = f"{other} | {calls}" if value is not None else f"{other} ( {calls} )?"
    return Grammar(rules.text(root), closed=False)


def _closed(schema: Any) -> bool:
    """Objects and arrays end with their closing bracket (a number could always go on)."""
    return _object_root(schema) or (isinstance(schema, Mapping) and schema.get("type") == "array")


def _object_root(schema: Any) -> bool:
    if isinstance(schema, Mapping) and isinstance(ref := schema.get("$ref"), str):
        schema = _resolve(schema, ref)
    if not isinstance(schema, Mapping):
        return False
    if schema.get("type") == "object":
        return True
    keys = ("properties", "required", "additionalProperties")
    return "type" not in schema and "enum" not in schema and any(k in schema for k in keys)


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    target: Any = root
    for part in ref.removeprefix("#").split("/")[1:]:
        target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
    return target
