"""The Responses surface's structured parts: ``text.format``, ``tools``, ``tool_choice``,
``reasoning``, the call items a conversation carries back (input) and a reply's calls (output)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from leeway.api import structure
from leeway.api.bounds import Id, JsonList, JsonObject, Many, Schema, Text, ToolDescription
from leeway.api.bounds import Tools as ToolList
from leeway.api.wire import Wire
from leeway.errors import UnsupportedParameter
from leeway.jobs import Finish, Job, Message
from leeway.structured import OutputFormat, ToolCall, ToolChoice, ToolKind, Tools


class FormatText(Wire):
    type: Literal["text"]


class FormatJsonObject(Wire):
    type: Literal["json_object"]


class FormatJsonSchema(Wire):
    type: Literal["json_schema"]
    name: Id
    schema_: Schema = Field(alias="schema")
    description: Text | None = None
    strict: bool | None = None


class TextConfig(Wire):
    format: (
        Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")]
        | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


class FunctionTool(Wire):
    type: Literal["function"]
    name: Id
    description: ToolDescription | None = None
    parameters: Schema | None = None
    strict: bool | None = None


class CustomTool(Wire):
    type: Literal["custom"]
    name: Id
    description: ToolDescription | None = None
    format: JsonObject | None = None  # {"type": "text"}; grammars are not supported


AnyTool = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class ChoiceFunction(Wire):
    type: Literal["function"]
    name: Id


class ChoiceCustom(Wire):
    type: Literal["custom"]
    name: Id


class ChoiceAllowed(Wire):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: ToolList[JsonObject]


Choice = (
    Literal["none", "auto", "required"]
    | Annotated[ChoiceFunction | ChoiceCustom | ChoiceAllowed, Field(discriminator="type")]
)


class Reasoning(Wire):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class OutputPart(Wire):
    type: Literal["input_text", "output_text"]
    text: Text
    annotations: JsonList | None = None
    logprobs: JsonList | None = None


class FunctionCallItem(Wire):
    type: Literal["function_call"]
    call_id: Id
    name: Id
    arguments: Text
    id: Id | None = None
    status: Id | None = None


class CustomCallItem(Wire):
    type: Literal["custom_tool_call"]
    call_id: Id
    name: Id
    input: Text
    id: Id | None = None


class CallOutputItem(Wire):
    type: Literal["function_call_output", "custom_tool_call_output"]
    call_id: Id
    output: Text | Many[OutputPart]
    id: Id | None = None
    status: Id | None = None


class ReasoningItem(Wire):
    """An earlier reply's reasoning sent back as it came: accepted and left out of the prompt (as
    OpenAI leaves earlier turns' reasoning out of the context)."""

    type: Literal["reasoning"]
    id: Id | None = None
    summary: JsonList | None = None
    content: JsonList | None = None
    encrypted_content: Text | None = None
    status: Id | None = None


CallItem = FunctionCallItem | CustomCallItem | CallOutputItem | ReasoningItem


def output_format(text: TextConfig | None) -> OutputFormat | None:
    """The reply's format (``text.verbosity`` is accepted and shown back: the model answers as
    it does)."""
    fmt = None if text is None else text.format
    if isinstance(fmt, FormatJsonSchema):
        return structure.output_format(fmt.schema_, fmt.name, "text.format.schema")
    if isinstance(fmt, FormatJsonObject):
        return structure.output_format(None, "json_object", "text.format")
    return None


def tools(
    given: list[FunctionTool | CustomTool] | None, choice: Choice | None, parallel: bool | None
) -> Tools | None:
    if not given and choice is None:  # the usual request: no tools (a batch item: 100,000 times)
        return None
    made = []
    for i, t in enumerate(given or []):
        at = f"tools[{i}]"
        if isinstance(t, CustomTool):
            if t.format is not None and t.format.get("type") != "text":
                raise UnsupportedParameter(
                    f"{at}.format: only free-form text input is supported for custom tools.",
                    param=f"{at}.format",
                )
            made.append(structure.tool(t.name, ToolKind.CUSTOM, at, description=t.description))
        else:
            made.append(
                structure.tool(
                    t.name,
                    ToolKind.FUNCTION,
                    at,
                    description=t.description,
                    parameters=t.parameters,
                    strict=t.strict,
                )
            )
    only = None
    if isinstance(choice, ChoiceAllowed):
        raise UnsupportedParameter(
            "tool_choice: allowed_tools is not supported by this server yet.", param="tool_choice"
        )
    if isinstance(choice, ChoiceFunction | ChoiceCustom):
        kind = ToolKind.FUNCTION if isinstance(choice, ChoiceFunction) else ToolKind.CUSTOM
        only, mode = (choice.name, kind), ToolChoice.REQUIRED
    else:
        mode = ToolChoice(choice or "auto")
    return structure.tools(made, mode, only=only, parallel=parallel is not False)


def history_item(out: list[Message], item: CallItem) -> None:
    """Add a call item to the conversation: a call joins the assistant turn it belongs to (an
    earlier turn's reasoning is not shown to the model again)."""
    if isinstance(item, ReasoningItem):
        return
    if isinstance(item, CallOutputItem):
        text = item.output if isinstance(item.output, str) else "".join(p.text for p in item.output)
        out.append(Message("tool", text, call_id=item.call_id))
        return
    if isinstance(item, FunctionCallItem):
        call = ToolCall(item.call_id, item.name, item.arguments, ToolKind.FUNCTION)
    else:
        call = ToolCall(item.call_id, item.name, item.input, ToolKind.CUSTOM)
    if out and out[-1].role == "assistant":
        last = out[-1]
        out[-1] = Message("assistant", last.content, (*last.calls, call))
    else:
        out.append(Message("assistant", "", (call,)))


def output_items(job: Job) -> list[dict[str, Any]]:
    """A finished job's output: its reasoning (an upstream's), its message (unless it only called
    tools), then its calls."""
    if job.output is None:
        return []
    got = structure.reply(job)
    items: list[dict[str, Any]] = [reasoning_item(job)] if job.output.reasoning else []
    if got.text or not got.calls:
        capped = job.output.finish is Finish.LENGTH
        items.append(message_item(job, got.text, "incomplete" if capped else "completed"))
    return items + [call_item(c) for c in got.calls]


def reasoning_item(job: Job) -> dict[str, Any]:
    """The reasoning before the reply: its text as ``reasoning_text``, and as the summary when the
    request asked for one (``reasoning.summary``; the text is not shortened)."""
    assert job.output is not None
    text = job.output.reasoning
    asked = job.reasoning is not None and job.reasoning.get("summary") is not None
    return {
        "type": "reasoning",
        "id": "rs_" + job.id.removeprefix("resp_"),
        "summary": [{"type": "summary_text", "text": text}] if asked else [],
        "content": [{"type": "reasoning_text", "text": text}],
        "encrypted_content": None,
        "status": "completed",
    }


def message_item(job: Job, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [output_text(text)]
    return {
        "type": "message",
        "id": "msg_" + job.id.removeprefix("resp_"),
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call: ToolCall, done: bool = True) -> dict[str, Any]:
    key = call.id.removeprefix("call_")
    if call.kind is ToolKind.CUSTOM:
        return {
            "type": "custom_tool_call",
            "id": f"ctc_{key}",
            "call_id": call.id,
            "name": call.name,
            "input": call.arguments if done else "",
        }
    return {
        "type": "function_call",
        "id": f"fc_{key}",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments if done else "",
        "status": "completed" if done else "in_progress",
    }
