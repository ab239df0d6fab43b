"""Structured generation in canonical form: an output format (a JSON schema the reply must match)
and tools (what the model may call, and whether it must). Every surface converts its own wire shapes
to these in ``leeway.api``; engines read them from the job (``leeway.grammar`` turns them into a
grammar for engines that constrain decoding).

A reply that calls tools is stored as text in one encoding, whatever the surface:
``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` per call (``"input": "…"`` for a custom
tool), after any plain text. ``leeway.grammar.calls`` writes and reads that encoding.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """The reply is one JSON value matching ``schema``; ``None`` means any JSON object."""

    schema: Mapping[str, Any] | None = None
    name: str = "response"


class ToolKind(enum.StrEnum):
    FUNCTION = "function"  # arguments: a JSON object matching ``parameters``
    CUSTOM = "custom"  # input: free-form text


class ToolChoice(enum.StrEnum):
    NONE = "none"  # never call: reply with text
    AUTO = "auto"  # text, calls, or both: the model decides
    REQUIRED = "required"  # at least one call (of ``Tools.only`` if set)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    kind: ToolKind = ToolKind.FUNCTION
    description: str = ""
    parameters: Mapping[str, Any] | None = None  # JSON schema of the arguments (functions)
    strict: bool = False  # accepted for compatibility: arguments always match, strict or not


@dataclass(frozen=True, slots=True)
class Tools:
    tools: tuple[Tool, ...]
    choice: ToolChoice = ToolChoice.AUTO
    only: str | None = None  # with REQUIRED: the one tool that must be called
    parallel: bool = True  # more than one call in a reply
    max_calls: int | None = None  # at most this many calls in a reply (later ones are dropped)

    def allowed(self) -> tuple[Tool, ...]:
        """The tools a call may name under this choice."""
        if self.choice is ToolChoice.NONE:
            return ()
        return tuple(t for t in self.tools if self.only is None or t.name == self.only)

    def get(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def limit(self, calls: tuple[ToolCall, ...]) -> tuple[ToolCall, ...]:
        """A reply's calls, no more than ``max_calls`` of them."""
        return calls if self.max_calls is None else calls[: self.max_calls]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made. ``arguments`` is compact JSON text for a function, the free-form
    input for a custom tool. ``id`` is the call id clients answer with (``call_id``,
    ``tool_call_id``, ``tool_use_id``)."""

    id: str
    name: str
    arguments: str
    kind: ToolKind = ToolKind.FUNCTION
