"""JSON Schema → GBNF: what compiles, what is refused (and where), caching, the fake engine's
minimal instances, and reading calls back out of generated text."""

from __future__ import annotations

import jsonschema
import pytest

from leeway import grammar
from leeway.grammar import calls, schema
from leeway.grammar.instance import minimal
from leeway.grammar.rules import Rules, literal
from leeway.structured import OutputFormat, Tool, ToolChoice, ToolKind, Tools

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
ACCEPTED = [
    PERSON,
    {},
    {"type": "object"},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": ["string", "null"], "maxLength": 5},
    {"enum": ["positive", "negative", "neutral"]},
    {"type": "integer", "minimum": 1, "maximum": 5},
    {"type": "integer", "minimum": 0},
    {"type": "number", "minimum": 0},
    {"type": "array", "items": {"type": "string", "format": "date-time"}, "minItems": 2},
    {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None, "title": "Maybe"},
    {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["value", "children"],
            }
        },
        "$ref": "#/$defs/Node",
    },
    {
        "properties": {"a": {"const": {"x": [1, "two"]}}, "b": {"type": "boolean"}},
        "required": ["a"],
    },
    {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}},
    {"type": "string", "format": "email"},  # an annotation: not enforced, not refused
]
REFUSED = [
    ({"type": "integer2"}, "type", "'integer2' is not a JSON Schema type"),
    (
        {"type": "object", "properties": {"age": {"type": "integer2"}}},
        "properties.age.type",
        "'integer2' is not a JSON Schema type",
    ),
    ({"type": ["string", 3]}, "type[1]", "3 is not a JSON Schema type"),
    ({"type": "string", "pattern": "^a+$"}, "pattern", "'pattern' is not supported"),
    ({"oneOf": [{"type": "string"}]}, "oneOf", "use anyOf"),
    (
        {"anyOf": [{"type": "string"}, {"type": "integer", "multipleOf": 2}]},
        "anyOf[1].multipleOf",
        "",
    ),
    ({"type": "integer", "minimum": 7}, "minimum", "integer bounds"),
    ({"type": "number", "maximum": 3}, "maximum", "number bounds"),
    ({"type": "array", "minItems": 3, "maxItems": 2}, "maxItems", "below minItems"),
    ({"type": "string", "maxLength": -1}, "maxLength", "non-negative integer"),
    ({"enum": []}, "enum", "non-empty"),
    ({"type": "string", "enum": ["a", 1]}, "enum[1]", "1 is not of type string"),
    ({"$ref": "#/$defs/Missing"}, "$ref", "does not point into this schema"),
    ({"$ref": "https://example.com/s.json"}, "$ref", "only local references"),
    ({"type": "object", "required": ["x"], "additionalProperties": False}, "required", "'x'"),
    ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, "allOf", "more than one"),
    ({"$ref": "#", "type": "object"}, "type", "beside '$ref'"),
    (False, "", "matches nothing"),
    ({"properties": {"a": 3}}, "properties.a", "a schema is an object or a boolean"),
]


@pytest.mark.parametrize("accepted", ACCEPTED)
def test_supported_schemas_compile(accepted):
    grammar.check_schema(accepted)
    built = grammar.build(OutputFormat(accepted), None)
    assert built is not None and built.text.startswith("root ::= ")


@pytest.mark.parametrize(("refused", "path", "words"), REFUSED)
def test_refused_schemas_name_the_part_that_is_the_problem(refused, path, words):
    with pytest.raises(grammar.SchemaError) as caught:
        grammar.check_schema(refused)
    assert grammar.where(caught.value.path) == path
    assert words in caught.value.message


def test_each_distinct_schema_is_compiled_once(monkeypatch):
    compiled = []
    real = grammar.compile_schema
    monkeypatch.setattr(grammar, "compile_schema", lambda *a: compiled.append(1) or real(*a))
    fresh = {**PERSON, "title": "Unique to this test"}
    for _ in range(3):
        grammar.check_schema(fresh)
    assert len(compiled) == 1
    first = grammar.build(OutputFormat(fresh), None)
    assert grammar.build(OutputFormat(dict(fresh)), None) is first and len(compiled) == 2


def test_a_closed_grammar_is_one_whose_reply_ends_with_its_root_value():
    assert grammar.build(OutputFormat(PERSON), None).closed
    assert grammar.build(OutputFormat(None), None).closed  # json_object: any object
    assert not grammar.build(OutputFormat({"type": "integer"}), None).closed
    assert grammar.build(None, None) is None


WEATHER = Tool(
    "get_weather",
    description="Weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
SHELL = Tool("shell", kind=ToolKind.CUSTOM, description="Runs a command")


def test_tool_choices_make_different_grammars():
    required = grammar.build(None, Tools((WEATHER, SHELL), ToolChoice.REQUIRED))
    auto = grammar.build(None, Tools((WEATHER, SHELL), ToolChoice.AUTO))
    none = grammar.build(None, Tools((WEATHER,), ToolChoice.NONE))
    only = grammar.build(None, Tools((WEATHER, SHELL), ToolChoice.REQUIRED, only="shell"))
    assert required.text.startswith("root ::= calls") and not required.closed
    assert "plain-0 ( calls )?" in auto.text
    assert none.text.startswith("root ::= plain-0") and "call" not in none.text
    assert '"\\"get_weather\\""' not in only.text and only.closed
    with_format = grammar.build(OutputFormat(PERSON), Tools((WEATHER,), ToolChoice.AUTO))
    assert with_format.text.startswith("root ::= f | call")


def test_tool_parameters_must_be_an_object_schema():
    grammar.check_parameters(WEATHER.parameters)
    with pytest.raises(grammar.SchemaError, match=r"type.*object"):
        grammar.check_parameters({"type": "string"})


@pytest.mark.parametrize("accepted", ACCEPTED)
def test_the_minimal_instance_validates(accepted):
    jsonschema.validate(minimal(accepted), accepted)


def test_calls_are_read_back_with_stable_ids():
    tools = Tools((WEATHER, SHELL))
    text = (
        "Let me check.\n"
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "shell", "input": "ls -l"}</tool_call>'
    )
    reply = calls.read(text, tools, "resp_1")
    assert reply.text == "Let me check.\n"
    assert [(c.name, c.arguments, c.kind) for c in reply.calls] == [
        ("get_weather", '{"city":"Paris"}', ToolKind.FUNCTION),
        ("shell", "ls -l", ToolKind.CUSTOM),
    ]
    assert reply.calls[0].id == calls.read(text, tools, "resp_1").calls[0].id
    assert reply.calls[0].id != calls.read(text, tools, "resp_2").calls[0].id
    cut = calls.read(text[:-20], tools, "resp_1")  # the last call was cut off by the token limit
    assert [c.name for c in cut.calls] == ["get_weather"]
    assert calls.read(text, Tools((WEATHER,), ToolChoice.NONE), "r").text == text
    assert calls.read(text, None, "r").calls == ()


def test_encoded_calls_read_back_the_same():
    tools = Tools((WEATHER, SHELL))
    made = calls.read(
        calls.encode(
            calls.read('<tool_call>{"name":"shell","input":"a\\nb"}</tool_call>', tools, "x").calls[
                0
            ]
        ),
        tools,
        "x",
    )
    assert made.calls[0].arguments == "a\nb"


def test_literals_escape_what_gbnf_needs():
    assert literal('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    rules = Rules()
    assert schema.compile_schema(rules, {"const": 'say "hi"'}, "f") == "f"
    assert '"\\"say \\\\\\"hi\\\\\\"\\""' in rules.text("f")


def test_the_grammar_caches_are_bounded_by_bytes_not_count():
    from leeway.grammar import _Cache

    cache = _Cache(most=1000)
    for i in range(50):
        cache.put(f"k{i:02d}", "v", 100)  # 103 bytes each: nine fit
    assert "k49" in cache and "k41" in cache and "k40" not in cache
    cache.put("huge", None, 5000)  # one over the bound alone is kept, alone
    assert "huge" in cache and "k49" not in cache
