"""A job's messages, output format, tools and reasoning in its stored request (JSON), so they
survive a restart and a job resumed after yielding is constrained exactly as before."""

from __future__ import annotations

from typing import Any

import orjson

from leeway.jobs import Job, Message
from leeway.structured import OutputFormat, Tool, ToolCall, ToolChoice, ToolKind, Tools


def message_json(m: Message) -> list[Any]:
    """``[role, content]``, with the calls and the call answered when there are any."""
    if not m.calls and m.call_id is None:
        return [m.role, m.content]
    return [m.role, m.content, {"calls": _calls(m.calls), "call_id": m.call_id}]


def message_from(item: list[Any]) -> Message:
    role, content, *rest = item
    if not rest:
        return Message(role, content)
    extra = rest[0]
    return Message(role, content, _read_calls(extra["calls"]), extra["call_id"])


def calls_json(calls: tuple[ToolCall, ...]) -> str:
    """A reply's calls as a column's JSON text."""
    return orjson.dumps(_calls(calls)).decode()


def calls_from(text: str) -> tuple[ToolCall, ...]:
    return _read_calls(orjson.loads(text))


def _calls(calls: tuple[ToolCall, ...]) -> list[list[str]]:
    return [[c.id, c.name, c.arguments, c.kind.value] for c in calls]


def _read_calls(items: list[list[str]]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(i, n, a, ToolKind(k)) for i, n, a, k in items)


def structure_json(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (fmt := job.output_format) is not None:
        out["format"] = {"schema": fmt.schema, "name": fmt.name}
    if (tools := job.tools) is not None:
        out["tools"] = {
            "tools": [
                [t.name, t.kind.value, t.description, t.parameters, t.strict] for t in tools.tools
            ],
            "choice": tools.choice.value,
            "only": tools.only,
            "parallel": tools.parallel,
        }
        if tools.max_calls is not None:
            out["tools"]["max_calls"] = tools.max_calls
    if job.reasoning is not None:
        out["reasoning"] = job.reasoning
    return out


def structure_from(request: dict[str, Any]) -> dict[str, Any]:
    """The Job fields ``structure_json`` wrote."""
    out: dict[str, Any] = {}
    if (fmt := request.get("format")) is not None:
        out["output_format"] = OutputFormat(fmt["schema"], fmt["name"])
    if (tools := request.get("tools")) is not None:
        out["tools"] = Tools(
            tuple(Tool(n, ToolKind(k), d, p, s) for n, k, d, p, s in tools["tools"]),
            ToolChoice(tools["choice"]),
            tools["only"],
            tools["parallel"],
            tools.get("max_calls"),
        )
    if (reasoning := request.get("reasoning")) is not None:
        out["reasoning"] = reasoning
    return out
