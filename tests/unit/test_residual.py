"""GBNF read back and written as xgrammar's EBNF, and the rest of a grammar after some text: what a
job resumed inside its grammar decodes under on the OpenVINO engine."""

from __future__ import annotations

import json

import pytest

from leeway import grammar
from leeway.grammar import gbnf
from leeway.grammar.residual import Cursor
from leeway.structured import OutputFormat, Tool, ToolChoice, ToolKind, Tools

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "mood": {"enum": ["happy", "sad"]},
    },
    "required": ["name", "age", "tags", "mood"],
    "additionalProperties": False,
}
WEATHER = Tool(
    "get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
SEARCH = Tool("search", kind=ToolKind.CUSTOM)
GOOD = '{"name": "Ann \\"A\\" B", "age": 31, "tags": ["x", "y"], "mood": "sad"}'


def grammars() -> list[grammar.Grammar]:
    built = [
        grammar.build(OutputFormat(PERSON), None),
        grammar.build(OutputFormat(None), None),
        *(
            grammar.build(None, Tools((WEATHER, SEARCH), choice))
            for choice in (ToolChoice.REQUIRED, ToolChoice.AUTO, ToolChoice.NONE)
        ),
    ]
    return [g for g in built if g is not None]


@pytest.mark.parametrize("g", grammars(), ids=lambda g: g.text.split("\n")[0])
def test_ebnf_reads_back_as_the_same_rules_and_has_no_empty_alternative(g):
    rules = gbnf.parse(g.text)
    ebnf = gbnf.ebnf(rules)
    assert gbnf.parse(ebnf) == {
        name: tuple(seq or (gbnf.Literal(""),) for seq in alts) for name, alts in rules.items()
    }
    assert (
        "::= |" not in ebnf
        and "| |" not in ebnf
        and not any(line.rstrip().endswith("|") for line in ebnf.splitlines())
    )


def test_a_cursor_accepts_instances_and_refuses_the_rest():
    g = grammar.build(OutputFormat(PERSON), None)
    assert g is not None
    whole = Cursor(g.text)
    whole.feed(GOOD)
    assert whole.complete() and whole.ended()
    for bad in (
        GOOD.replace("31", "-1"),
        GOOD.replace('"sad"', '"angry"'),
        GOOD.replace('["x", "y"]', '["x", "y", "z"]'),
        GOOD.replace('"Ann', '"Annabelle Lee'),  # over maxLength
        "Sure! " + GOOD,
    ):
        with pytest.raises(RuntimeError, match="does not match the grammar"):
            Cursor(g.text).feed(bad)


@pytest.mark.parametrize("cut", [1, 9, 17, 30, 44, len(GOOD) - 1])
def test_the_rest_of_a_grammar_takes_exactly_what_the_grammar_allows_after_the_cut(cut):
    g = grammar.build(OutputFormat(PERSON), None)
    assert g is not None
    head = Cursor(g.text)
    head.feed(GOOD[:cut])
    assert not head.complete()
    rest = head.rest()
    tail = Cursor(rest)
    tail.feed(GOOD[cut:])
    assert tail.complete()
    with pytest.raises(RuntimeError):
        Cursor(rest).feed(GOOD[cut:] + "}")  # nothing after the value
    assert gbnf.parse(gbnf.ebnf(gbnf.parse(rest))) == gbnf.parse(rest)


def test_a_resumed_tool_call_goes_on_as_a_call():
    g = grammar.build(None, Tools((WEATHER, SEARCH), ToolChoice.AUTO))
    assert g is not None
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    text = "Let me check. " + call
    for cut in (5, len("Let me check. <tool"), len(text) - 20):
        tail = Cursor(_rest(g.text, text[:cut]))
        tail.feed(text[cut:])
        assert tail.complete()
    assert json.loads(call[len("<tool_call>") : -len("</tool_call>")])["name"] == "get_weather"


def _rest(text: str, head: str) -> str:
    cursor = Cursor(text)
    cursor.feed(head)
    return cursor.rest()
