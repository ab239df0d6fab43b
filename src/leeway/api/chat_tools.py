"""The Chat Completions surface's structured parts: ``response_format``, ``tools``, ``tool_choice``,
an assistant message's ``tool_calls`` (input and output)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from leeway.api import structure
from leeway.api.bounds import Id, Json, JsonObject, Schema, Text, ToolDescription
from leeway.api.wire import Wire
from leeway.errors import UnsupportedParameter
from leeway.structured import OutputFormat, ToolCall, ToolChoice, ToolKind, Tools


class JsonSchemaSpec(Wire):
    name: Id
    schema_: Schema | None = Field(None, alias="schema")
    description: Text | None = None
    strict: bool | None = None


class FormatText(Wire):
    type: Literal["text"]


class FormatJsonObject(Wire):
    type: Literal["json_object"]


class FormatJsonSchema(Wire):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")
]


class FunctionSpec(Wire):
    name: Id
    description: ToolDescription | None = None
    parameters: Schema | None = None
    strict: bool | None = None


class FunctionTool(Wire):
    type: Literal["function"]
    function: FunctionSpec


class CustomSpec(Wire):
    name: Id
    description: ToolDescription | None = None
    format: JsonObject | None = None  # {"type": "text"}; grammars are not supported


class CustomTool(Wire):
    type: Literal["custom"]
    custom: CustomSpec


AnyTool = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class Named(Wire):
    name: Id


class ChoiceFunction(Wire):
    type: Literal["function"]
    function: Named


class ChoiceCustom(Wire):
    type: Literal["custom"]
    custom: Named


class ChoiceAllowed(Wire):
    type: Literal["allowed_tools"]
    allowed_tools: JsonObject


Choice = (
    Literal["none", "auto", "required"]
    | Annotated[ChoiceFunction | ChoiceCustom | ChoiceAllowed, Field(discriminator="type")]
)


class CallFunction(Wire):
    name: Id
    arguments: Text
    parsed_arguments: Json = None  # the openai SDK's parse() leaves it on a message sent back


class CallCustom(Wire):
    name: Id
    input: Text


class FunctionCall(Wire):
    id: Id
    type: Literal["function"]
    function: CallFunction


class CustomCall(Wire):
    id: Id
    type: Literal["custom"]
    custom: CallCustom


AnyCall = Annotated[FunctionCall | CustomCall, Field(discriminator="type")]


def output_format(given: ResponseFormat | None) -> OutputFormat | None:
    if isinstance(given, FormatJsonSchema):
        spec = given.json_schema
        if spec.schema_ is None:
            return structure.output_format(None, spec.name, "response_format.json_schema")
        return structure.output_format(
            spec.schema_, spec.name, "response_format.json_schema.schema"
        )
    if isinstance(given, FormatJsonObject):
        return structure.output_format(None, "json_object", "response_format")
    return None


def tools(
    given: list[AnyTool] | None, choice: Choice | None, parallel: bool | None
) -> Tools | None:
    made = []
    for i, t in enumerate(given or []):
        at = f"tools[{i}]"
        if isinstance(t, CustomTool):
            if t.custom.format is not None and t.custom.format.get("type") != "text":
                raise UnsupportedParameter(
                    f"{at}.custom.format: only free-form text input is supported for custom tools.",
                    param=f"{at}.custom.format",
                )
            made.append(
                structure.tool(
                    t.custom.name, ToolKind.CUSTOM, f"{at}.custom", description=t.custom.description
                )
            )
        else:
            f = t.function
            made.append(
                structure.tool(
                    f.name,
                    ToolKind.FUNCTION,
                    f"{at}.function",
                    description=f.description,
                    parameters=f.parameters,
                    strict=f.strict,
                )
            )
    if isinstance(choice, ChoiceAllowed):
        raise UnsupportedParameter(
            "tool_choice: allowed_tools is not supported by this server yet.", param="tool_choice"
        )
    only = None
    if isinstance(choice, ChoiceFunction):
        only, mode = (choice.function.name, ToolKind.FUNCTION), ToolChoice.REQUIRED
    elif isinstance(choice, ChoiceCustom):
        only, mode = (choice.custom.name, ToolKind.CUSTOM), ToolChoice.REQUIRED
    else:
        mode = ToolChoice(choice or "auto")
    return structure.tools(made, mode, only=only, parallel=parallel is not False)


def call_in(call: FunctionCall | CustomCall) -> ToolCall:
    if isinstance(call, CustomCall):
        return ToolCall(call.id, call.custom.name, call.custom.input, ToolKind.CUSTOM)
    return ToolCall(call.id, call.function.name, call.function.arguments, ToolKind.FUNCTION)


def call_out(call: ToolCall) -> dict[str, Any]:
    if call.kind is ToolKind.CUSTOM:
        return {
            "id": call.id,
            "type": "custom",
            "custom": {"name": call.name, "input": call.arguments},
        }
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
