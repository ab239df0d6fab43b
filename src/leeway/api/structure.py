"""What every surface shares for structured generation: schemas and tools checked (a 400 names the
field, down to the part of a schema at fault), and a finished job's reply: its text and calls."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from leeway import grammar
from leeway.errors import InvalidRequest
from leeway.grammar.calls import Reply
from leeway.jobs import Job, Message
from leeway.structured import OutputFormat, Tool, ToolChoice, ToolKind, Tools

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def output_format(schema: Any, name: str, param: str) -> OutputFormat:
    """A ``json_schema`` format (``schema`` None: ``json_object``, any object)."""
    if schema is not None:
        _checked(grammar.check_schema, schema, param)
    return OutputFormat(schema, name)


def tool(
    name: str,
    kind: ToolKind,
    param: str,
    *,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    parameters_param: str = "parameters",
    strict: bool | None = None,
) -> Tool:
    """One tool; ``param`` is where it is in the request (``tools[2]``)."""
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"{param}.name: a tool name is 1 to 64 letters, digits, '_' or '-'; got {name!r}.",
            param=f"{param}.name",
        )
    if parameters is not None:
        _checked(grammar.check_parameters, parameters, f"{param}.{parameters_param}")
    return Tool(name, kind, description or "", parameters, bool(strict))


def tools(
    given: Sequence[Tool],
    choice: ToolChoice,
    *,
    only: tuple[str, ToolKind] | None = None,
    parallel: bool = True,
    tools_param: str = "tools",
    choice_param: str = "tool_choice",
) -> Tools | None:
    """The request's tools and choice (None when it has no tools). ``only``: the one tool forced,
    by name and kind."""
    seen: set[str] = set()
    for i, t in enumerate(given):
        if t.name in seen:
            raise InvalidRequest(
                f"{tools_param}[{i}].name: another tool is already named {t.name!r}.",
                param=f"{tools_param}[{i}].name",
            )
        seen.add(t.name)
    if not given:
        if choice is ToolChoice.REQUIRED:
            raise InvalidRequest(
                f"{choice_param}: a tool call is required, but the request has no tools.",
                param=choice_param,
            )
        return None
    if only is not None:
        forced = next((t for t in given if t.name == only[0]), None)
        if forced is None or forced.kind is not only[1]:
            raise InvalidRequest(
                f"{choice_param}: there is no {only[1].value} tool named {only[0]!r} in "
                f"{tools_param}.",
                param=choice_param,
            )
    return Tools(tuple(given), choice, only[0] if only else None, parallel)


def limit_calls(tools: Tools | None, most: int | None, param: str) -> Tools | None:
    """The tools with at most ``most`` calls a reply (``max_tool_calls``): none is tool choice
    ``none``, one is no parallel calls, more are cut to that many once generated."""
    if tools is None or most is None:
        return tools
    if most == 0:
        if tools.choice is ToolChoice.REQUIRED:
            raise InvalidRequest(
                f"{param} is 0, but tool_choice requires a call: allow a call, or choose no tool.",
                param=param,
            )
        return replace(tools, choice=ToolChoice.NONE)
    return replace(tools, parallel=tools.parallel and most > 1, max_calls=most)


def reasoning(effort: str | None, **more: Any) -> dict[str, Any] | None:
    """The reasoning asked for, or None when nothing is (an effort of ``none`` asks for none)."""
    shown = {k: v for k, v in more.items() if v is not None}
    if effort not in (None, "none"):
        shown["effort"] = effort
    return shown or None


def reply(job: Job, prefix: str = "call_") -> Reply:
    """A finished job's reply: its text, and the calls it made. ``prefix``: how the surface names
    call ids (a call id the engine made, ``call_…``, is shown with it; an upstream's as it is)."""
    assert job.output is not None
    calls = job.output.calls
    if prefix != "call_":
        calls = tuple(replace(c, id=prefix + c.id.removeprefix("call_")) for c in calls)
    return Reply(job.output.text, calls)


def assistant_turn(job: Job) -> Message:
    """A finished job's reply as the assistant message of a conversation that goes on."""
    assert job.output is not None
    return Message("assistant", job.output.text, job.output.calls)


def calling(job: Job) -> bool:
    """The job may reply with calls."""
    return job.tools is not None and bool(job.tools.allowed())


def _checked(check: Any, schema: Any, param: str) -> None:
    try:
        check(schema)
    except grammar.SchemaError as e:
        at = param + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path)
        raise InvalidRequest(f"{at}: {e.message}.", param=at) from e
