"""The shared vocabulary: a Job and the small values it is made of.

Every stage (store, scheduler, engines) sees only these types; the wire formats are converted to and
from them in ``leeway.api`` and nowhere else.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leeway.structured import OutputFormat, ToolCall, Tools


class Window(enum.StrEnum):
    """A completion window: how much leeway a request gives. Declared from most to least urgent."""

    ASAP = "asap"
    PRIORITY = "priority"
    STANDARD = "standard"
    FLEX = "flex"

    @property
    def rank(self) -> int:
        """0 for the most urgent window; the order the dispatcher serves them in."""
        return _RANKS[self]


_RANKS = {w: i for i, w in enumerate(Window)}


WINDOW_ALIASES: Mapping[str, Window] = {"15m": Window.PRIORITY, "24h": Window.FLEX}


class Status(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self not in (Status.QUEUED, Status.IN_PROGRESS)


class Surface(enum.StrEnum):
    """The API a job arrived through; decides how it is rendered back."""

    RESPONSES = "responses"
    CHAT = "chat"
    MESSAGES = "messages"


class Finish(enum.StrEnum):
    """Why generation stopped."""

    STOP = "stop"  # the model ended its turn
    LENGTH = "length"  # max_output_tokens (or the context) was reached


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system | user | assistant | tool (developer is folded into system at the edge)
    content: str
    calls: tuple[ToolCall, ...] = ()  # an assistant turn's tool calls, after its content
    call_id: str | None = None  # a tool message: the call it answers


@dataclass(frozen=True, slots=True)
class Sampling:
    max_output_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()  # generation ends before the first of these strings


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int  # reasoning tokens included
    reasoning_tokens: int = 0  # of the output, spent reasoning (an upstream's reasoning text)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Cost:
    """What a final job was billed: its usage at the prices (USD per million tokens) its model had
    in its window when the job became final (a later price change leaves it as it is)."""

    input_price: float
    output_price: float
    amount: float  # USD

    @staticmethod
    def of(usage: Usage | None, input_price: float, output_price: float) -> Cost:
        tokens = usage or Usage(0, 0)
        amount = tokens.input_tokens * input_price + tokens.output_tokens * output_price
        return Cost(input_price, output_price, amount / 1e6)


@dataclass(frozen=True, slots=True)
class Output:
    text: str  # the reply's text (a reply that calls tools: the text before its calls)
    finish: Finish
    stop_sequence: str | None = None  # the stop string that ended it, if one did
    piece_sizes: tuple[int, ...] = ()  # lengths of the pieces its text was streamed in
    calls: tuple[ToolCall, ...] = ()  # the tools it called, read once by the engine that ran it
    reasoning: str = ""  # the reasoning that came before the reply (an upstream's, read once)


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where a completion webhook goes (``metadata.completion_webhook`` and
    ``metadata.webhook_token``, read once at intake)."""

    url: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class JobError:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    """One request, from acceptance to its final state. Every change is a store write."""

    id: str
    tenant: str
    surface: Surface
    model: str
    messages: tuple[Message, ...]
    sampling: Sampling
    window: Window
    requested_window: str | None  # what the client asked for, before defaults and aliases
    created_at: float
    deadline: float
    prompt_tokens: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    echo: Mapping[str, Any] = field(default_factory=dict)  # wire fields only the surface reads back
    background: bool = False  # answered at once; the client polls or streams it later
    stored: bool = True  # listed and retrievable later (a chat completion sent ``store: false``)
    instructions: str | None = None  # the system message the request gave (its first message)
    webhook: Webhook | None = None
    # structured generation: the reply matches this format / may or must call these tools
    output_format: OutputFormat | None = None
    tools: Tools | None = None
    reasoning: Mapping[str, Any] | None = None  # passed to models that reason (e.g. {"effort": …})
    status: Status = Status.QUEUED
    attempts: int = 0
    # what an earlier run generated before it yielded its engine to more urgent work; the next run
    # continues from here, so nothing is generated (or billed) twice
    partial_text: str = ""
    partial_tokens: int = 0
    partial_piece_sizes: tuple[int, ...] = ()
    started_at: float | None = None
    completed_at: float | None = None
    output: Output | None = None
    usage: Usage | None = None
    error: JobError | None = None
    batch_id: str | None = None  # set on a batch's items, with the item's custom_id
    custom_id: str | None = None
    key_id: str | None = None  # the API key that created it
    cost: Cost | None = None  # set once final (and priced)


def new_id(prefix: str) -> str:
    """An unguessable id with its kind as prefix: ``resp_…``, ``msg_…``, ``batch_…``."""
    return f"{prefix}{secrets.token_hex(24)}"
