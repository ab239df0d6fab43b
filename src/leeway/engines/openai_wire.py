"""The OpenAI Chat Completions wire as the upstream engine speaks it, with no I/O: a job as a
request body, a streamed reply read back (text, tool calls, finish, usage), and a server's
Prometheus metrics read for capacity hints.

**Priority.** ``vllm``: the body's ``priority`` (lower runs earlier; the server must run with
``--scheduling-policy priority``, else vLLM 0.32 ignores it and older versions refuse any priority
but 0): asap 0, priority 1, standard 2, flex 3. ``sglang``: its ``priority`` field, which by default runs *higher* values first
(the server needs ``--enable-priority-scheduling``; started with
``--schedule-low-priority-values-first`` it would need the vLLM numbers): asap 3 … flex 0.
``openai``: nothing (a strict server refuses unknown fields).

**Output format and tools** go as ``response_format`` (``json_schema`` with the job's schema, or
``json_object``: vLLM and SGLang decode under it, guided) and ``tools`` / ``tool_choice`` /
``parallel_tool_calls``. A custom (free-form) tool is sent as a function taking one string,
``input``. To vLLM every tool goes ``strict``: vLLM (0.32) holds a call's arguments to the tool's
schema only for strict tools (else it constrains only the call's envelope, and a small model
writes arguments that do not match), while Leeway promises valid calls whatever ``strict`` says.
Calls that come back as ``tool_calls`` deltas become the reply's typed calls, keeping the server's
call ids.

**Reasoning** that comes back as vLLM's ``reasoning_content`` (or ``reasoning``) deltas is kept
apart from the reply's text: it becomes the output's reasoning, its tokens the usage's reasoning
tokens (the server's count when it gives one, else one per event). It is not streamed as it comes.

**A resumed job** (one that yielded its engine, or whose upstream failed mid-reply, with
``partial_text``) is continued, not regenerated: the text so far is sent as the last, assistant,
message; for vLLM and SGLang with ``continue_final_message: true, add_generation_prompt: false``,
so the model continues that very message. A plain ``openai`` server has no such switch: it gets the
assistant prefix alone (llama-server continues it; a server that starts a new turn instead writes a
reply that follows the partial text). A server's guided decoding cannot take up a JSON value in
its middle: given ``response_format``, vLLM starts a new value after the partial one, which is never
valid (``{"name": "Bo{"name": …``, every time in tests/vllm). So a resumed job with an output
format is continued without one: a model that finishes the value it began makes it valid, which
is the best a resumed structured reply on an upstream can be. (Tools are still sent: a call is
never half kept, ``partial_text`` holds only the text before any call.)
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leeway.errors import EngineFailed, EngineRejected, EngineUnavailable
from leeway.grammar.calls import NO_PARAMETERS, call_id
from leeway.grammar.schema import compact
from leeway.jobs import Job, Message, Window
from leeway.structured import OutputFormat, Tool, ToolCall, ToolChoice, ToolKind, Tools


class Flavor(enum.StrEnum):
    VLLM = "vllm"
    SGLANG = "sglang"
    OPENAI = "openai"


VLLM_PRIORITY: Mapping[Window, int] = {w: w.rank for w in Window}  # lower runs first
SGLANG_PRIORITY: Mapping[Window, int] = {w: len(Window) - 1 - w.rank for w in Window}
_INPUT: dict[str, Any] = {  # a custom tool's one argument
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
    "additionalProperties": False,
}


def request_body(job: Job, model: str, flavor: Flavor) -> dict[str, Any]:
    """The streamed chat completion request that runs ``job`` upstream."""
    s = job.sampling
    body: dict[str, Any] = {
        "model": model,
        "messages": [message(m) for m in job.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": max(1, s.max_output_tokens - job.partial_tokens),
        "temperature": s.temperature,
        "top_p": s.top_p,
    }
    if s.seed is not None:
        body["seed"] = s.seed
    if s.stop:
        body["stop"] = list(s.stop)
    if job.output_format is not None and not job.partial_text:
        body["response_format"] = response_format(job.output_format)
    if job.tools is not None and job.tools.tools:
        body.update(tools(job.tools, strict=flavor is Flavor.VLLM))
    if job.reasoning and isinstance(effort := job.reasoning.get("effort"), str):
        body["reasoning_effort"] = effort
    if job.partial_text:
        body["messages"].append({"role": "assistant", "content": job.partial_text})
        if flavor is not Flavor.OPENAI:
            body["continue_final_message"], body["add_generation_prompt"] = True, False
    if flavor is Flavor.VLLM:
        body["priority"] = VLLM_PRIORITY[job.window]
    elif flavor is Flavor.SGLANG:
        body["priority"] = SGLANG_PRIORITY[job.window]
    return body


def message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.calls:
        out["content"] = m.content or None
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": _arguments(c)},
            }
            for c in m.calls
        ]
    if m.call_id is not None:
        out["tool_call_id"] = m.call_id
    return out


def _arguments(call: ToolCall) -> str:
    if call.kind is ToolKind.CUSTOM:
        return json.dumps({"input": call.arguments}, ensure_ascii=False)
    return call.arguments


def response_format(fmt: OutputFormat) -> dict[str, Any]:
    if fmt.schema is None:
        return {"type": "json_object"}
    schema = {"name": fmt.name, "schema": dict(fmt.schema), "strict": True}
    return {"type": "json_schema", "json_schema": schema}


def tools(t: Tools, strict: bool = False) -> dict[str, Any]:
    """``strict``: every function's arguments held to its schema, whatever the tool says."""
    choice: Any = t.choice.value
    if t.choice is ToolChoice.REQUIRED and t.only is not None:
        choice = {"type": "function", "function": {"name": t.only}}
    return {
        "tools": [_tool(tool, strict) for tool in t.tools],
        "tool_choice": choice,
        "parallel_tool_calls": t.parallel,
    }


def _tool(tool: Tool, strict: bool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.kind is ToolKind.CUSTOM:
        function["parameters"] = _INPUT
        function["description"] = (tool.description + " (free-form input, as `input`)").strip()
    else:
        function["parameters"] = dict(tool.parameters or NO_PARAMETERS)
    if strict or (tool.strict and tool.kind is ToolKind.FUNCTION):
        function["strict"] = True
    return {"type": "function", "function": function}


@dataclass
class _Call:
    id: str = ""  # the server's own call id, kept
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Reply:
    """A streamed reply as its events arrive."""

    deltas: int = 0  # events that carried text, reasoning or call pieces: about one token each
    reasoning_deltas: int = 0  # those that carried reasoning
    reasoning: list[str] = field(default_factory=list)  # vLLM's ``reasoning_content`` deltas
    finish: str | None = None
    stop_reason: Any = None  # vLLM: the stop string that ended it
    usage: Mapping[str, Any] | None = None
    calls: dict[int, _Call] = field(default_factory=dict)

    def feed(self, event: Mapping[str, Any]) -> str:
        """Take one event; the new text it carries."""
        if isinstance(error := event.get("error"), Mapping):
            raise stream_error(error)
        if isinstance(usage := event.get("usage"), Mapping):
            self.usage = usage
        text = ""
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            piece = delta.get("content") or ""
            text += piece
            # vLLM's reasoning parsers: ``reasoning_content`` (``reasoning`` in newer releases)
            if thought := delta.get("reasoning_content") or delta.get("reasoning") or "":
                self.reasoning.append(str(thought))
                self.reasoning_deltas += 1
            for tc in delta.get("tool_calls") or ():
                call = self.calls.setdefault(int(tc.get("index", len(self.calls))), _Call())
                call.id = call.id or str(tc.get("id") or "")
                function = tc.get("function") or {}
                call.name += function.get("name") or ""
                call.arguments.append(function.get("arguments") or "")
            if piece or thought or delta.get("tool_calls"):
                self.deltas += 1
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.stop_reason = choice.get("stop_reason")
        return text

    def reasoning_tokens(self) -> int:
        """The server's count of reasoning tokens if it gave one, else one a reasoning event."""
        details = (self.usage or {}).get("completion_tokens_details") or {}
        given = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
        return int(given) if isinstance(given, int) else self.reasoning_deltas

    def tool_calls(self, tools: Tools | None, job_id: str) -> tuple[ToolCall, ...]:
        """The calls, with the server's ids (one it did not name gets one made from the job's)."""
        return tuple(
            _tool_call(c, tools, c.id or call_id(job_id, i)) for i, c in sorted(self.calls.items())
        )


def _tool_call(call: _Call, tools: Tools | None, cid: str) -> ToolCall:
    arguments = "".join(call.arguments)
    tool = tools.get(call.name) if tools is not None else None
    if tool is not None and tool.kind is ToolKind.CUSTOM:
        try:
            given = json.loads(arguments)
        except ValueError:
            given = None
        text = given.get("input") if isinstance(given, dict) else None
        return ToolCall(cid, call.name, text if isinstance(text, str) else arguments, tool.kind)
    with contextlib.suppress(ValueError):  # compact, as every engine's arguments are stored
        arguments = compact(json.loads(arguments or "{}"))
    return ToolCall(cid, call.name, arguments or "{}")


def stream_error(error: Mapping[str, Any]) -> Exception:
    """An error the server sent inside the stream: retried if the server's fault."""
    message = str(error.get("message") or error)
    code = error.get("code")
    status = code if isinstance(code, int) else 500
    return upstream_error(status, message)


def upstream_error(status: int, message: str) -> Exception:
    """What an upstream HTTP error means for the job: 408, 429 and 5xx are retried
    (``EngineUnavailable``), any other 4xx is the job's error (``EngineRejected``)."""
    if status in (408, 429) or status >= 500:
        return EngineUnavailable(f"The upstream engine answered {status}: {message}")
    if 400 <= status < 500:
        return EngineRejected(f"The upstream engine refused the request ({status}): {message}")
    return EngineFailed(f"The upstream engine answered {status}: {message}")


def error_message(body: bytes) -> str:
    """The message of an error answer: OpenAI's envelope, FastAPI's ``detail``, or the text."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:500] or "(no message)"
    if isinstance(obj, dict):
        error = obj.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if obj.get(key):
                return str(obj[key])
    return str(obj)[:500]


@dataclass(frozen=True, slots=True)
class Hints:
    """What the server's metrics say about its load (all its clients, not only us)."""

    running: float
    waiting: float


_RUNNING = ("vllm:num_requests_running", "sglang:num_running_reqs")
_WAITING = ("vllm:num_requests_waiting", "sglang:num_queue_reqs")


def capacity_hints(metrics: str) -> Hints | None:
    """Requests running and waiting, summed over label sets; None if the text has neither."""
    running = waiting = 0.0
    seen = False
    for line in metrics.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(" ")
        name = name.split("{", 1)[0]
        if "}" in line:  # labels may hold spaces: the value follows the closing brace
            rest = line.rsplit("}", 1)[1]
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        if name in _RUNNING:
            running, seen = running + value, True
        elif name in _WAITING:
            waiting, seen = waiting + value, True
    return Hints(running, waiting) if seen else None
