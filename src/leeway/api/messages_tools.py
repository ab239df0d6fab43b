"""The Anthropic Messages surface's structured parts: ``output_config.format``, ``tools``,
``tool_choice``, ``thinking``, and the ``tool_use`` / ``tool_result`` content blocks."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from leeway.api import structure
from leeway.api.bounds import Id, JsonList, JsonObject, Many, Schema, Text
from leeway.api.wire import Wire
from leeway.grammar.schema import compact
from leeway.jobs import Message
from leeway.structured import OutputFormat, ToolCall, ToolChoice, ToolKind, Tools


class TextBlock(Wire):
    type: Literal["text"]
    text: Text
    cache_control: JsonObject | None = None
    citations: JsonList | None = None


class ToolUseBlock(Wire):
    type: Literal["tool_use"]
    id: Id
    name: Id
    input: JsonObject
    cache_control: JsonObject | None = None
    caller: JsonObject | None = None


class ToolResultBlock(Wire):
    type: Literal["tool_result"]
    tool_use_id: Id
    content: Text | Many[TextBlock] | None = None
    is_error: bool | None = None
    cache_control: JsonObject | None = None


class ThinkingBlock(Wire):
    """An earlier reply's thinking sent back as it came (Anthropic asks clients to): accepted and
    left out of the prompt, as Anthropic leaves earlier turns' thinking out of the context."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: Text | None = None
    signature: Text | None = None
    data: Text | None = None  # a redacted block's
    cache_control: JsonObject | None = None


Block = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock, Field(discriminator="type")
]


class Tool(Wire):
    name: Id
    input_schema: Schema
    description: Text | None = None
    type: Literal["custom"] | None = None
    cache_control: JsonObject | None = None
    strict: bool | None = None


class ChoiceAuto(Wire):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ChoiceAny(Wire):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ChoiceTool(Wire):
    type: Literal["tool"]
    name: Id
    disable_parallel_tool_use: bool | None = None


class ChoiceNone(Wire):
    type: Literal["none"]


Choice = Annotated[ChoiceAuto | ChoiceAny | ChoiceTool | ChoiceNone, Field(discriminator="type")]


class JsonFormat(Wire):
    type: Literal["json_schema"]
    schema_: Schema = Field(alias="schema")


class OutputConfig(Wire):
    format: JsonFormat | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None


class Thinking(Wire):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None
    display: Id | None = None


def output_format(config: OutputConfig | None) -> OutputFormat | None:
    if config is None or config.format is None:
        return None
    return structure.output_format(config.format.schema_, "output", "output_config.format.schema")


def tools(given: list[Tool] | None, choice: Choice | None) -> Tools | None:
    made = [
        structure.tool(
            t.name,
            ToolKind.FUNCTION,
            f"tools[{i}]",
            description=t.description,
            parameters=t.input_schema,
            parameters_param="input_schema",
            strict=t.strict,
        )
        for i, t in enumerate(given or [])
    ]
    only, mode = None, ToolChoice.AUTO
    if isinstance(choice, ChoiceAny):
        mode = ToolChoice.REQUIRED
    elif isinstance(choice, ChoiceTool):
        only, mode = (choice.name, ToolKind.FUNCTION), ToolChoice.REQUIRED
    elif isinstance(choice, ChoiceNone):
        mode = ToolChoice.NONE
    single = isinstance(choice, ChoiceAuto | ChoiceAny | ChoiceTool) and bool(
        choice.disable_parallel_tool_use
    )
    return structure.tools(made, mode, only=only, parallel=not single)


def reasoning(thinking: Thinking | None, config: OutputConfig | None) -> dict[str, Any] | None:
    """Extended thinking (``thinking``) or effort (``output_config.effort``), if asked for."""
    if thinking is not None and thinking.type != "disabled":
        return {"thinking": thinking.type, "budget_tokens": thinking.budget_tokens}
    return structure.reasoning(config.effort if config else None)


def turn(role: str, content: str | list[Block]) -> list[Message]:
    """One input message as canonical messages: a user turn's tool results come first, each its
    own tool message; an assistant turn's tool_use blocks are its calls."""
    if isinstance(content, str):
        return [Message(role, content)]
    text = "".join(b.text for b in content if isinstance(b, TextBlock))
    results = [
        Message("tool", _result_text(b), call_id=b.tool_use_id)
        for b in content
        if isinstance(b, ToolResultBlock)
    ]
    calls = tuple(
        ToolCall(b.id, b.name, compact(b.input), ToolKind.FUNCTION)
        for b in content
        if isinstance(b, ToolUseBlock)
    )
    if results and not text:
        return results
    return [*results, Message(role, text, calls)]


def tool_use(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.name,
        "input": json.loads(call.arguments),
    }


def _result_text(block: ToolResultBlock) -> str:
    content = block.content or ""
    text = content if isinstance(content, str) else "".join(b.text for b in content)
    return f"Error: {text}" if block.is_error else text
