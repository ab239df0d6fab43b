"""A GBNF grammar (llama.cpp's grammar format) under construction: named rules, each body written once,
and the JSON primitives every grammar shares.

JSON is generated without whitespace after the root value, so generation can end the moment the
value is complete; inside it, whitespace is one space or a newline with up to 20 indent characters
(a small model left free to indent drifts into whitespace forever).
"""

from __future__ import annotations

import re

# name → (body, rules the body refers to)
PRIMITIVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ws": (r'| " " | "\n" [ \t]{0,20}', ()),
    "char": (r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})', ()),
    "string": (r'"\"" char* "\""', ("char",)),
    "int-part": (r'"0" | [1-9] [0-9]{0,15}', ()),
    "integer": (r'"-"? int-part', ("int-part",)),
    "number": (r'"-"? int-part ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?', ("int-part",)),
    "nonneg-number": (r'int-part ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?', ("int-part",)),
    "positive-integer": (r"[1-9] [0-9]{0,15}", ()),
    "boolean": ('"true" | "false"', ()),
    "null": ('"null"', ()),
    "value": (
        "object | array | string | number | boolean | null",
        ("object", "array", "string", "number", "boolean", "null"),
    ),
    "object": (
        r'"{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"',
        ("ws", "string", "value"),
    ),
    "array": (r'"[" ws ( value ws ( "," ws value ws )* )? "]"', ("ws", "value")),
    "date": (
        r'[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )',
        (),
    ),
    "time": (
        r'( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? '
        r'( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
        (),
    ),
    "date-string": (r'"\"" date "\""', ("date",)),
    "time-string": (r'"\"" time "\""', ("time",)),
    "date-time-string": (r'"\"" date "T" time "\""', ("date", "time")),
    "uuid-string": (
        r'"\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" '
        r'[0-9a-fA-F]{12} "\""',
        (),
    ),
}

_NAME = re.compile(r"[^a-zA-Z0-9-]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def repeat(item: str, least: int, most: int | None) -> str:
    """``item`` repeated ``least`` to ``most`` (None: unbounded) times."""
    if least == 0 and most is None:
        return f"{item}*"
    if least == 1 and most is None:
        return f"{item}+"
    if most is None:
        return f"{item}{{{least},}}"
    if least == most:
        return f"{item}{{{least}}}"
    return f"{item}{{{least},{most}}}"


class Rules:
    """Named rules. Adding a body that is already there under the same name hint reuses it."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = {}
        self._reserved = 0

    def __len__(self) -> int:
        return len(self._rules)

    def add(self, hint: str, body: str) -> str:
        base = _NAME.sub("-", hint).strip("-")[:48] or "r"
        name, i = base, 1
        while name in self._rules and self._rules[name] != body:
            i += 1
            name = f"{base}-{i}"
        self._rules[name] = body
        return name

    def reserve(self, hint: str) -> str:
        """A name whose body comes later (``define``): how a recursive reference is built."""
        self._reserved += 1
        return self.add(hint, f"<reserved {self._reserved}>")

    def define(self, name: str, body: str) -> None:
        self._rules[name] = body

    def primitive(self, name: str) -> str:
        body, needs = PRIMITIVES[name]
        if name not in self._rules:
            self._rules[name] = body
            for need in needs:
                self.primitive(need)
        return name

    def text(self, root: str) -> str:
        lines = [f"root ::= {root}", *(f"{n} ::= {b}" for n, b in self._rules.items())]
        return "\n".join(lines) + "\n"
