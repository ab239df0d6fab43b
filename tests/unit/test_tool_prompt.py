"""How tools and tool turns reach a chat template: a system section and plain turns for a template
without tool support, the Hugging Face shapes for one with it."""

from __future__ import annotations

import json

from jinja2.sandbox import ImmutableSandboxedEnvironment

from leeway.engines import tool_prompt
from leeway.jobs import Message
from leeway.structured import Tool, ToolCall, ToolChoice, ToolKind, Tools

WEATHER = Tool("get_weather", description="Weather", parameters={"type": "object"})
SHELL = Tool("shell", kind=ToolKind.CUSTOM, description="Runs a command")
CALL = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
TURNS = (
    Message("system", "Be brief."),
    Message("user", "Weather in Oslo and Rome?"),
    Message(
        "assistant", "Checking.", (CALL, ToolCall("call_2", "get_weather", '{"city": "Rome"}'))
    ),
    Message("tool", "rain", call_id="call_1"),
    Message("tool", "sun", call_id="call_2"),
)


def test_plain_templates_get_a_tools_section_and_calls_as_text():
    chat = tool_prompt.plain(TURNS, Tools((WEATHER, SHELL), ToolChoice.REQUIRED, only="shell"))
    system = chat[0]["content"]
    assert system.startswith("Be brief.\n\nYou can call these tools:\n<tools>\n")
    assert '"name": "get_weather"' in system and '"input": "free-form text"' in system
    assert system.endswith("Call shell now.")
    assert chat[2] == {
        "role": "assistant",
        "content": 'Checking.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}'
        '</tool_call>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>',
    }
    # without tool turns, a round of results is one user turn
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert json.loads(chat[3]["content"].split("\n")[1]) == {
        "name": "get_weather",
        "content": "rain",
    }
    turns = tool_prompt.plain(TURNS, None, tool_turns=True)
    assert [m["role"] for m in turns] == ["system", "user", "assistant", "tool", "tool"]
    assert turns[0]["content"] == "Be brief." and turns[4]["content"] == "sun"


def test_templates_that_render_tools_get_them_in_the_hugging_face_shape():
    template = ImmutableSandboxedEnvironment().from_string(
        "{% for t in tools %}[{{ t.function.name }}]{% endfor %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}"
        "{% for c in m.tool_calls or [] %}({{ c.function.name }} {{ c.function.arguments.city }})"
        "{% endfor %}{% endfor %}"
    )
    chat, tools = tool_prompt.native(TURNS, Tools((WEATHER,)))
    text = template.render(messages=chat, tools=tools)
    assert text == (
        "[get_weather]<system>Be brief.<user>Weather in Oslo and Rome?"
        "<assistant>Checking.(get_weather Oslo)(get_weather Rome)<tool>rain<tool>sun"
    )
    assert chat[3]["tool_call_id"] == "call_1"
