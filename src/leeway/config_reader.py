"""The declarative reader: plain values (a TOML file's tables, environment strings, flags) in, one
frozen dataclass out, driven by the dataclasses' own fields. Adding a setting or a table is adding a
field; nothing here changes.

Types come from the annotations: str, int, float, bool, Path, enums, Literals, tuples, Mappings,
nested dataclasses, ``X | None``, IP networks. Simple ranges are declared next to the field with
annotated_types (``Annotated[float, Gt(0)]``, or the names below such as ``Positive``), and
``Allowed("…")`` words what a field takes where its type alone would say it badly.

pydantic does the walking: its ``TypeAdapter`` validates stdlib dataclasses and returns them as they
are. The values are validated as JSON in strict mode, so the types TOML shares with JSON (strings,
numbers, booleans, lists, tables) must match exactly ("fast" is no number, 1 is not true, 2.5 is no
whole number, an unknown key is an error), while strings become paths, enums and IP networks. A TOML
date or time is read as its text. An environment value is a string and is converted by its field's
type first (``convert``: 1/true/yes/on are true, 0/false/no/off false).

Every mistake is one ConfigError of one line, naming the full key (``limits.requests_per_second``,
``window_targets.urgent``, ``off_peak_hours[0]``, ``models[1].prices.flex.input``) and what is
allowed; its ``param`` is that key.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import annotated_types as at
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from leeway.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Allowed:
    """``Annotated[T, Allowed("…")]``: what the field takes, in words, for error messages."""

    words: str


Positive = Annotated[float, at.Gt(0)]
NonNegative = Annotated[float, at.Ge(0)]
Count = Annotated[int, at.Ge(1)]
Natural = Annotated[int, at.Ge(0)]
Name = Annotated[str, at.MinLen(1)]

Loc = tuple[str | int, ...]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
_SCALARS = (str, int, float, bool, Path)
_WORDS: Mapping[object, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    Path: "a path (a string)",
    ipaddress.IPv4Network: 'an IPv4 range such as "10.1.0.0/16"',
    ipaddress.IPv6Network: 'an IPv6 range such as "::1/128"',
}
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_LENGTH_ERRORS = {"too_short", "too_long", "string_too_short", "string_too_long"}


def read(root: type[T], raw: Mapping[str, Any]) -> T:
    """``raw`` (a file's tables, with environment and flag values merged in) as a ``root``."""
    text = json.dumps([raw], default=str)  # default: flags' Paths, TOML dates
    try:
        value: T = _adapter(root).validate_json(text, strict=True)[0]
    except ValidationError as e:
        first = e.errors()[0]
        raise _error(root, first, first["loc"][1:]) from None
    return value


def convert(root: type[Any], name: str, text: str) -> Any:
    """A string (an environment variable's) for ``root``'s field ``name``, converted by its type."""
    try:
        return TypeAdapter(_hints(root)[name]).validate_strings(text, strict=False)
    except ValidationError as e:
        first = e.errors()[0]
        raise _error(root, first, (name, *first["loc"])) from None


def scalars(root: type[Any]) -> list[str]:
    """``root``'s fields that hold one plain value: those an environment variable may set."""
    return [name for name, hint in _hints(root).items() if _unwrap(hint)[0] in _SCALARS]


def _adapter(root: type[Any]) -> TypeAdapter[Any]:
    if root not in _ADAPTERS:
        # pydantic takes a config around a dataclass, not for it: the root sits in a 1-tuple
        one: Any = tuple.__class_getitem__((root,))
        _ADAPTERS[root] = TypeAdapter(one, config=_STRICT)
    return _ADAPTERS[root]


def _hints(cls: type[Any]) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


def _error(root: type[Any], err: ErrorDetails, loc: Loc) -> ConfigError:
    """pydantic's error ``err`` at ``loc`` (from ``root``), in one line."""
    kind, value = err["type"], err["input"]
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a short tuple: the tuple is wrong
        loc, kind = loc[:-1], "tuple_type"
    path, tp, rest = _walk(root, loc)
    key = _key(path)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        key, table = _key((*path, *rest)), _key(path)
        known = sorted(f.name for f in fields(_unwrap(tp)[0]))
        message = f"Unknown {table + ' ' if table else ''}setting {key!r}; known: {known}."
    elif kind == "missing":
        message = f"Setting {key!r} is required: {_allowed(tp)}."
    elif rest == ("[key]",):
        parent = _key(path[:-1])
        message = f"Setting {key!r} is unknown: the keys of {parent!r} must be {_allowed(tp)}."
    elif kind in _RANGE_ERRORS or (kind in _LENGTH_ERRORS and _bounds(tp)):
        message = f"Setting {key!r} must be {_bounds(tp)}, got {_shown(value)}."
    elif kind == "value_error" or rest:  # a constructor said no (an IP range), or a union did
        message = f"Setting {key!r}: {_shown(value)} is not {_allowed(tp)}."
    elif kind == "finite_number":
        message = f"Setting {key!r} must be finite ({_allowed(tp)}), got {_shown(value)}."
    else:
        message = f"Setting {key!r} must be {_allowed(tp)}, got {_shown(value)}."
    return ConfigError(message, param=key)


def _walk(root: type[Any], loc: Loc) -> tuple[Loc, Any, Loc]:
    """How far ``loc`` goes down the types from ``root``: the path, the type there, what is left
    (an unknown key, pydantic's tags for a union's members, or ``[key]`` for a mapping's key)."""
    tp: Any = root
    for i, part in enumerate(loc):
        base = _unwrap(tp)[0]
        origin, args = get_origin(base), get_args(base)
        if loc[i + 1 : i + 2] == ("[key]",) and origin in (Mapping, dict):
            return loc[: i + 1], args[0], loc[i + 1 :]
        hints = _hints(base) if isinstance(base, type) and is_dataclass(base) else {}
        if isinstance(part, str) and part in hints:
            tp = hints[part]
        elif origin is tuple and isinstance(part, int):
            tp = args[0] if args[1:] == (Ellipsis,) else args[part]
        elif origin in (Mapping, dict):
            tp = args[1]
        else:
            return loc[:i], tp, loc[i:]
    return loc, tp, ()


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """The type under ``Annotated`` and ``| None``, and the annotations found on the way."""
    metadata: list[Any] = []
    while True:
        if get_origin(tp) is Annotated:
            metadata += tp.__metadata__
            tp = tp.__origin__
        elif _is_union(tp) and type(None) in get_args(tp) and len(get_args(tp)) == 2:
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp, metadata


def _allowed(tp: Any) -> str:
    base, metadata = _unwrap(tp)
    if words := next((m.words for m in metadata if isinstance(m, Allowed)), None):
        return words
    bounds = _bounds(tp)
    return f"{_shape(base)}, {bounds}" if bounds else _shape(base)


def _shape(base: Any) -> str:
    origin, args = get_origin(base), get_args(base)
    if base in _WORDS:
        return _WORDS[base]
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in base)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if is_dataclass(base):
        return "a table"
    if origin is tuple and args[1:] == (Ellipsis,):
        return f"a list (each {_allowed(args[0])})"
    if origin is tuple:
        return "[" + ", ".join(_allowed(a) for a in args) + "]"
    if origin in (Mapping, dict):
        return f"a table (keys: {_allowed(args[0])}; values: {_allowed(args[1])})"
    if _is_union(base):
        return " or ".join(_allowed(a) for a in args)
    return str(getattr(base, "__name__", base))


def _bounds(tp: Any) -> str:
    """The declared range in words: "more than 0", "from 0 to 24", "non-empty"."""
    found = {type(m): m for m in _unwrap(tp)[1]}
    if at.Ge in found and at.Le in found:
        return f"from {found.pop(at.Ge).ge} to {found.pop(at.Le).le}"
    words = {
        at.Gt: lambda m: f"more than {m.gt}",
        at.Ge: lambda m: f"at least {m.ge}",
        at.Lt: lambda m: f"less than {m.lt}",
        at.Le: lambda m: f"at most {m.le}",
        at.MinLen: lambda m: "non-empty" if m.min_length == 1 else f"{m.min_length} long or more",
    }
    return " and ".join(words[kind](m) for kind, m in found.items() if kind in words)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _key(path: Loc) -> str:
    return "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" if i else str(p) for i, p in enumerate(path)
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"
