"""GBNF read back into rules, and written out again as the EBNF xgrammar reads (OpenVINO GenAI's
structured output decodes under xgrammar).

The two dialects differ in one thing the grammars here use: an empty alternative (``ws ::= | " "``)
is written ``""`` for xgrammar. Reading the text back also lets ``grammar.residual`` follow a grammar
through text generated earlier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chars:
    """One character from ``ranges`` (inclusive code point pairs), or from none of them."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def matches(self, c: str) -> bool:
        n = ord(c)
        return any(lo <= n <= hi for lo, hi in self.ranges) != self.negated


@dataclass(frozen=True, slots=True)
class Literal:
    text: str


@dataclass(frozen=True, slots=True)
class Ref:
    name: str


@dataclass(frozen=True, slots=True)
class Repeat:
    item: Node
    least: int
    most: int | None  # None: unbounded


@dataclass(frozen=True, slots=True)
class Group:
    alternatives: Alternatives


Node = Chars | Literal | Ref | Repeat | Group
Alternatives = tuple[tuple[Node, ...], ...]
Rules = dict[str, Alternatives]  # in the order written; ``root`` first

_RULE = re.compile(r"^([a-zA-Z0-9-]+)\s*::=\s*", re.MULTILINE)
_NAME = re.compile(r"[a-zA-Z0-9-]+")
_COUNT = re.compile(r"\{(\d+)(,(\d*))?\}")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def parse(text: str) -> Rules:
    """Rules of a GBNF grammar as ``leeway.grammar`` writes it (one rule per line)."""
    heads = list(_RULE.finditer(text))
    rules: Rules = {}
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : after.start() if after else len(text)]
        parser = _Parser(body)
        rules[head.group(1)] = parser.alternatives()
        if parser.rest().strip():
            raise ValueError(f"rule {head.group(1)}: cannot read {parser.rest()[:20]!r}")
    return rules


def ebnf(rules: Rules) -> str:
    """The rules as xgrammar's EBNF."""
    return "".join(f"{name} ::= {_alternatives(alts)}\n" for name, alts in rules.items())


def _alternatives(alts: Alternatives) -> str:
    return " | ".join(" ".join(map(_node, seq)) if seq else '""' for seq in alts)


def _node(node: Node) -> str:
    if isinstance(node, Literal):
        return '"' + "".join(_escape(c, '"\\') for c in node.text) + '"'
    if isinstance(node, Chars):
        return _chars(node)
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Group):
        return f"( {_alternatives(node.alternatives)} )"
    item = _node(node.item)
    if (node.least, node.most) == (0, None):
        return f"{item}*"
    if (node.least, node.most) == (1, None):
        return f"{item}+"
    if (node.least, node.most) == (0, 1):
        return f"{item}?"
    if node.most is None:
        return f"{item}{{{node.least},}}"
    if node.most == node.least:
        return f"{item}{{{node.least}}}"
    return f"{item}{{{node.least},{node.most}}}"


def _chars(node: Chars) -> str:
    parts = []
    for lo, hi in node.ranges:
        parts.append(_escape(chr(lo), "]\\-^"))
        if hi != lo:
            parts.append("-" + _escape(chr(hi), "]\\-^"))
    return "[" + ("^" if node.negated else "") + "".join(parts) + "]"


def _escape(c: str, special: str) -> str:
    if c in special:
        return "\\" + c
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\x{ord(c):02X}"
    return c


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def rest(self) -> str:
        return self.text[self.at :]

    def _skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.at] if self.at < len(self.text) else ""

    def alternatives(self) -> Alternatives:
        alts = [self._sequence()]
        while self._peek() == "|":
            self.at += 1
            alts.append(self._sequence())
        return tuple(alts)

    def _sequence(self) -> tuple[Node, ...]:
        seq: list[Node] = []
        while self._peek() not in ("", "|", ")"):
            node = self._primary()
            while True:
                c = self._peek_tight()
                if c in ("*", "+", "?"):
                    self.at += 1
                    least, most = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                    node = Repeat(node, least, most)
                elif c == "{" and (m := _COUNT.match(self.text, self.at)):
                    self.at = m.end()
                    least = int(m.group(1))
                    most = (
                        least if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                    )
                    node = Repeat(node, least, most)
                else:
                    break
            seq.append(node)
        return tuple(seq)

    def _peek_tight(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def _primary(self) -> Node:
        c = self._peek()
        if c == '"':
            self.at += 1
            out = []
            while self.text[self.at] != '"':
                out.append(self._char())
            self.at += 1
            return Literal("".join(out))
        if c == "[":
            return self._class()
        if c == "(":
            self.at += 1
            alts = self.alternatives()
            if self._peek() != ")":
                raise ValueError(f"expected ) at {self.rest()[:20]!r}")
            self.at += 1
            return Group(alts)
        if m := _NAME.match(self.text, self.at):
            self.at = m.end()
            return Ref(m.group())
        raise ValueError(f"cannot read {self.rest()[:20]!r}")

    def _class(self) -> Chars:
        self.at += 1
        negated = self.text[self.at] == "^"
        self.at += negated
        ranges = []
        while self.text[self.at] != "]":
            lo = self._char()
            hi = lo
            if self.text[self.at] == "-" and self.text[self.at + 1] != "]":
                self.at += 1
                hi = self._char()
            ranges.append((ord(lo), ord(hi)))
        self.at += 1
        return Chars(tuple(ranges), negated)

    def _char(self) -> str:
        c = self.text[self.at]
        if c != "\\":
            self.at += 1
            return c
        e = self.text[self.at + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(e)
        if width:
            self.at += 2 + width
            return chr(int(self.text[self.at - width : self.at], 16))
        self.at += 2
        return _ESCAPES.get(e, e)
