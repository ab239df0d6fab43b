"""What a grammar still allows after some text: how a job resumed after yielding its sequence goes on
generating inside its grammar, when the engine's grammar sampler can only start at the beginning.

A ``Cursor`` reads text through a GBNF grammar the way llama.cpp's grammar sampler does: the grammar's
repetitions and groups become rules of plain sequences, and the position is a set of stacks of
(rule, alternative, element) frames, each with a character class on top. The rest of the language is
then the union, over the stacks, of each frame's remaining elements from the top of the stack down:
that union is the grammar the resumed generation decodes under.
"""

from __future__ import annotations

from leeway.grammar import gbnf
from leeway.grammar.gbnf import Chars, Group, Literal, Node, Ref, Repeat

Atom = Chars | Ref
Frame = tuple[str, int, int]  # rule, alternative, next element
Stack = tuple[Frame, ...]  # the top is last
_MOST_STACKS = 4096
_DEEPEST = 4096


class Cursor:
    """A position in a grammar, starting at its ``root``."""

    def __init__(self, text: str) -> None:
        self._flat = _Flat(gbnf.parse(text))
        self.stacks = self._settle((("root", a, 0),) for a in self._flat.alternatives("root"))

    def feed(self, text: str) -> None:
        """Move past ``text``; ``RuntimeError`` if the grammar does not allow it here."""
        for c in text:
            moved = (
                (*s[:-1], (s[-1][0], s[-1][1], s[-1][2] + 1))
                for s in self.stacks
                if s and self._top(s).matches(c)
            )
            self.stacks = self._settle(moved)
            if not self.stacks:
                raise RuntimeError("the text generated earlier does not match the grammar")

    def complete(self) -> bool:
        """The text so far is a whole sentence of the grammar."""
        return () in self.stacks

    def ended(self) -> bool:
        """Nothing more is allowed."""
        return self.stacks == {()}

    def rest(self) -> str:
        """The grammar of what may follow, as xgrammar's EBNF (start rule ``root``)."""
        root = sorted({self._remaining(s) for s in self.stacks}, key=str)
        rules: gbnf.Rules = {"root": tuple(tuple(_nodes(seq)) for seq in root)}
        todo = [a.name for seq in root for a in seq if isinstance(a, Ref)]
        while todo:
            name = todo.pop()
            if name in rules:
                continue
            alts = self._flat.rules[name]
            rules[name] = tuple(tuple(_nodes(seq)) for seq in alts)
            todo += [a.name for seq in alts for a in seq if isinstance(a, Ref)]
        return gbnf.ebnf(rules)

    def _remaining(self, stack: Stack) -> tuple[Atom, ...]:
        out: list[Atom] = []
        for rule, alt, pos in reversed(stack):
            out += self._flat.rules[rule][alt][pos:]
        return tuple(out)

    def _top(self, stack: Stack) -> Chars:
        rule, alt, pos = stack[-1]
        atom = self._flat.rules[rule][alt][pos]
        assert isinstance(atom, Chars)
        return atom

    def _settle(self, stacks: object) -> set[Stack]:
        """Expand rule references until every stack has a character class on top (or is empty:
        the grammar is complete there)."""
        todo: list[Stack] = list(stacks)  # type: ignore[call-overload]
        seen: set[Stack] = set()
        out: set[Stack] = set()
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            if len(s) > _DEEPEST or len(out) > _MOST_STACKS:
                raise RuntimeError("the grammar is too ambiguous to resume")
            if not s:
                out.add(s)
                continue
            rule, alt, pos = s[-1]
            atoms = self._flat.rules[rule][alt]
            if pos == len(atoms):
                todo.append(s[:-1])
            elif isinstance(atom := atoms[pos], Chars):
                out.add(s)
            else:
                below = s[:-1] if pos + 1 == len(atoms) else (*s[:-1], (rule, alt, pos + 1))
                todo += [(*below, (atom.name, a, 0)) for a in self._flat.alternatives(atom.name)]
        return out


class _Flat:
    """The grammar as rules of plain sequences of character classes and rule references."""

    def __init__(self, rules: gbnf.Rules) -> None:
        self.rules: dict[str, list[tuple[Atom, ...]]] = {}
        self._taken = set(rules)
        for name, alts in rules.items():
            self.rules[name] = [self._sequence(name, seq) for seq in alts]

    def alternatives(self, name: str) -> range:
        if name not in self.rules:
            raise RuntimeError(f"the grammar has no rule {name!r}")
        return range(len(self.rules[name]))

    def _sequence(self, owner: str, seq: tuple[Node, ...]) -> tuple[Atom, ...]:
        out: list[Atom] = []
        for node in seq:
            out += self._atoms(owner, node)
        return tuple(out)

    def _atoms(self, owner: str, node: Node) -> list[Atom]:
        if isinstance(node, Chars | Ref):
            return [node]
        if isinstance(node, Literal):
            return [Chars(((ord(c), ord(c)),)) for c in node.text]
        if isinstance(node, Group):
            return [self._rule(owner, [self._sequence(owner, s) for s in node.alternatives])]
        return self._repeat(owner, node)

    def _repeat(self, owner: str, node: Repeat) -> list[Atom]:
        item = self._atoms(owner, node.item)
        one: Atom = item[0] if len(item) == 1 else self._rule(owner, [tuple(item)])
        if node.most is None:  # star ::= one star | (empty)
            star = self._new(owner)
            self.rules[star] = [(one, Ref(star)), ()]
            return [one] * node.least + [Ref(star)]
        tail: list[Atom] = []  # optional ::= one optional' | (empty), nested most - least deep
        for _ in range(node.most - node.least):
            tail = [self._rule(owner, [(one, *tail), ()])]
        return [one] * node.least + tail

    def _rule(self, owner: str, alts: list[tuple[Atom, ...]]) -> Ref:
        name = self._new(owner)
        self.rules[name] = alts
        return Ref(name)

    def _new(self, owner: str) -> str:
        n = len(self._taken)
        while f"{owner}-x{n}" in self._taken:
            n += 1
        self._taken.add(f"{owner}-x{n}")
        return f"{owner}-x{n}"


def _nodes(seq: tuple[Atom, ...]) -> list[Node]:
    """Atoms back as grammar nodes, runs of single characters as literals."""
    out: list[Node] = []
    for atom in seq:
        one = isinstance(atom, Chars) and not atom.negated and len(atom.ranges) == 1
        if one and atom.ranges[0][0] == atom.ranges[0][1]:  # type: ignore[union-attr]
            c = chr(atom.ranges[0][0])  # type: ignore[union-attr]
            if out and isinstance(out[-1], Literal):
                out[-1] = Literal(out[-1].text + c)
            else:
                out.append(Literal(c))
        else:
            out.append(atom)
    return out
