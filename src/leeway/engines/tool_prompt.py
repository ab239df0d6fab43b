"""Tools in a prompt: what the chat template is given when a job has tools or tool turns.

A template that renders tools itself (it reads a ``tools`` variable, as Hermes- and Qwen-style
templates do, whose call format is the one Leeway generates) gets them in the Hugging Face shape:
``tools`` as function schemas, assistant turns with ``tool_calls``, ``tool`` messages. Any other
template (SmolLM2's) gets plain messages: the tools and how to call them in the system message,
earlier calls as the text the model would have written, and tool results as ``tool`` turns if the
template shows a ``tool`` turn (ChatML templates do: SmolLM2 answers from them best), else as a user
turn in ``<tool_response>`` tags.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from leeway.grammar.calls import CLOSE, NO_PARAMETERS, OPEN, encode
from leeway.jobs import Message
from leeway.structured import Tool, ToolChoice, ToolKind, Tools

Chat = list[dict[str, Any]]


def plain(messages: Sequence[Message], tools: Tools | None, tool_turns: bool = False) -> Chat:
    """Messages for a template that knows nothing of tools (``tool_turns``: but shows a turn of
    role ``tool``)."""
    names = {c.id: c.name for m in messages for c in m.calls}
    out: Chat = []
    for i, m in enumerate(messages):
        if m.role == "tool" and tool_turns:
            out.append({"role": "tool", "content": m.content})
        elif m.role == "tool":
            body = {"name": names.get(m.call_id or "", ""), "content": m.content}
            text = f"<tool_response>\n{json.dumps(body, ensure_ascii=False)}\n</tool_response>"
            if i and messages[i - 1].role == "tool":  # one turn for a round of results
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text})
        elif m.calls:
            parts = [m.content] if m.content else []
            out.append({"role": m.role, "content": "\n".join([*parts, *map(encode, m.calls)])})
        else:
            out.append({"role": m.role, "content": m.content})
    if tools is not None and tools.tools:
        text = section(tools, answered=bool(messages) and messages[-1].role == "tool")
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{text}"}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def native(messages: Sequence[Message], tools: Tools | None) -> tuple[Chat, list[dict[str, Any]]]:
    """Messages and tools in the Hugging Face shape, for a template that renders tools."""
    out: Chat = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.calls:
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, **_args(c.arguments)}}
                for c in m.calls
            ]
        if m.call_id is not None:
            item["tool_call_id"] = m.call_id
        out.append(item)
    shown = [] if tools is None else [_schema(t) for t in tools.tools]
    return out, shown


def section(tools: Tools, answered: bool = False) -> str:
    """The system-prompt section that shows the tools and how to call them (``answered``: the
    last turn is a tool's result)."""
    lines = ["You can call these tools:", "<tools>"]
    lines += [json.dumps(_schema(t)["function"], ensure_ascii=False) for t in tools.tools]
    lines.append("</tools>")
    lines.append(
        f'To call a tool, reply with {OPEN}{{"name": <tool name>, "arguments": '
        f"<arguments as a JSON object>}}{CLOSE}."
    )
    if any(t.kind is ToolKind.CUSTOM for t in tools.tools):
        lines.append(
            f'For a tool that takes free-form input: {OPEN}{{"name": <tool name>, "input": '
            f'"<the input>"}}{CLOSE}.'
        )
    if tools.choice is ToolChoice.NONE:
        lines.append("Do not call a tool now: answer in text.")
    elif tools.choice is ToolChoice.REQUIRED:
        lines.append(f"Call {tools.only} now." if tools.only else "Call a tool now.")
    elif answered:  # a small model left free calls the same tool again and again
        lines.append("The tool has answered: use its result to answer the user in text.")
    return "\n".join(lines)


def _schema(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.kind is ToolKind.CUSTOM:
        function["input"] = "free-form text"
    else:
        function["parameters"] = dict(tool.parameters or NO_PARAMETERS)
    return {"type": "function", "function": function}


def _args(arguments: str) -> dict[str, Any]:
    try:
        return {"arguments": json.loads(arguments)}
    except ValueError:
        return {"arguments": arguments}
