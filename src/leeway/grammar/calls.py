"""Tool calls as text: the one encoding a reply's calls are generated and stored in, its grammar,
and reading it back.

A call is ``<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>``
(``"input": "…"`` instead of ``arguments`` for a custom tool); a reply is optional plain text, then
its calls. The grammar only lets ``<tool_call>`` appear as the start of a valid call, so reading a
reply back is exact: the text before the first call is the reply's text, and every call names an
allowed tool with arguments that match its schema.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from leeway.grammar.rules import Rules, literal
from leeway.grammar.schema import compact, compile_schema
from leeway.structured import ToolCall, ToolChoice, ToolKind, Tools

OPEN, CLOSE = "<tool_call>", "</tool_call>"
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    calls: tuple[ToolCall, ...] = ()


def encode(call: ToolCall) -> str:
    """A call as the model writes it (how calls earlier in a conversation are shown to it)."""
    body: dict[str, Any] = {"name": call.name}
    if call.kind is ToolKind.CUSTOM:
        body["input"] = call.arguments
    else:
        try:
            body["arguments"] = json.loads(call.arguments)
        except ValueError:
            body["arguments"] = call.arguments  # as the client sent it back
    return OPEN + json.dumps(body, ensure_ascii=False) + CLOSE


def read(text: str, tools: Tools | None, seed: str, prefix: str = "call_") -> Reply:
    """Split generated ``text`` into plain text and calls (with ids derived from ``seed``, the job
    id, so they are the same each time the reply is read). A call cut short (the output limit) is
    left out."""
    if tools is None or tools.choice is ToolChoice.NONE or OPEN not in text:
        return Reply(text)
    head, _, rest = text.partition(OPEN)
    calls = []
    for i, chunk in enumerate(rest.split(OPEN)):
        body, closed, _ = chunk.partition(CLOSE)
        call = _call(body, tools, call_id(seed, i, prefix)) if closed else None
        if call is None:
            break
        calls.append(call)
    return Reply(head, tuple(calls))


def call_id(seed: str, index: int, prefix: str = "call_") -> str:
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=12).hexdigest()
    return f"{prefix}{digest}"


def _call(body: str, tools: Tools, cid: str) -> ToolCall | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    name = obj.get("name") if isinstance(obj, dict) else None
    tool = tools.get(name) if isinstance(name, str) else None
    if tool is None:
        return None
    if tool.kind is ToolKind.CUSTOM:
        given = obj.get("input")
        return ToolCall(cid, tool.name, given, tool.kind) if isinstance(given, str) else None
    if not isinstance(obj.get("arguments"), dict):
        return None
    return ToolCall(cid, tool.name, compact(obj["arguments"]), tool.kind)


def calls_rule(rules: Rules, tools: Tools) -> str:
    """One call of an allowed tool, or (parallel calls, no one tool forced) one or more."""
    ws, string = rules.primitive("ws"), rules.primitive("string")
    alts = []
    for i, tool in enumerate(tools.allowed()):
        name = f'{literal(compact(tool.name))} {ws} "," {ws}'
        if tool.kind is ToolKind.CUSTOM:
            body = f'{name} "\\"input\\"" {ws} ":" {ws} {string}'
        else:
            args = compile_schema(rules, tool.parameters or NO_PARAMETERS, f"t{i}")
            body = f'{name} "\\"arguments\\"" {ws} ":" {ws} {args}'
        alts.append(rules.add(f"call-{i}", body))
    head = f'{literal(OPEN)} {ws} "{{" {ws} "\\"name\\"" {ws} ":" {ws}'
    call = rules.add("call", f'{head} ( {" | ".join(alts)} ) {ws} "}}" {ws} {literal(CLOSE)}')
    if tools.parallel and tools.only is None:
        return rules.add("calls", f"{call}+")
    return call


def text_rule(rules: Rules) -> str:
    """Any text in which ``<tool_call>`` never appears (one rule per characters of it matched)."""
    for k in range(len(OPEN)):
        alts = ["", f"[^<{OPEN[k] if k else ''}] plain-0", '"<" plain-1']
        if 0 < k < len(OPEN) - 1:
            alts.append(f"{literal(OPEN[k])} plain-{k + 1}")
        rules.define(f"plain-{k}", " | ".join(alts).removeprefix(" "))
    return "plain-0"
