"""The Anthropic Messages surface: ``POST /v1/messages``, in Anthropic's shapes (errors included)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from leeway.api import billing, structure
from leeway.api.bounds import Id, Many, Stops, Text
from leeway.api.bounds import Messages as MessageList
from leeway.api.bounds import Tools as ToolList
from leeway.api.create import Mode
from leeway.api.errors import anthropic_envelope
from leeway.api.intake import Draft
from leeway.api.messages_tools import (
    Block,
    Choice,
    OutputConfig,
    TextBlock,
    Thinking,
    Tool,
    output_format,
    reasoning,
    tool_use,
    tools,
    turn,
)
from leeway.api.service_tier import AnthropicTier
from leeway.api.sse import Encoder, frame
from leeway.api.wire import Metadata, PositiveInt, Request, TopP, Wire, reject_unsupported
from leeway.errors import EngineFailed
from leeway.jobs import Finish, Job, Message, Surface
from leeway.store import Jobs

_NOT_YET: dict[str, Any] = {
    "top_k": None,
    "container": None,
    "mcp_servers": [],
    "inference_geo": None,
}


class InputMessage(Wire):
    role: Literal["user", "assistant"]
    content: Text | Many[Block]


class CreateMessage(Request):
    model: Id
    max_tokens: PositiveInt
    messages: MessageList[InputMessage]
    system: Text | Many[TextBlock] | None = None
    temperature: Annotated[float, Field(ge=0, le=1, strict=False)] | None = None
    top_p: TopP | None = None
    stop_sequences: Stops | None = None
    metadata: Metadata | None = None
    stream: bool | None = None
    tools: ToolList[Tool] | None = None
    tool_choice: Choice | None = None
    output_config: OutputConfig | None = None
    thinking: Thinking | None = None
    service_tier: AnthropicTier | None = None  # accepted: the window is the model's default


def draft(body: CreateMessage) -> Draft:
    reject_unsupported(body, _NOT_YET)
    metadata = dict(body.metadata or {})
    messages = [m for given in body.messages for m in turn(given.role, given.content)]
    if body.system:
        messages.insert(0, Message("system", _text(body.system)))
    return Draft(
        surface=Surface.MESSAGES,
        id_prefix="msg_",
        model=body.model,
        messages=tuple(messages),
        max_output_tokens=body.max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=tuple(body.stop_sequences or ()),
        background=False,
        requested_window=metadata.get("completion_window"),
        metadata=metadata,
        input_param="messages",
        output_format=output_format(body.output_config),
        tools=tools(body.tools, body.tool_choice),
        reasoning=reasoning(body.thinking, body.output_config),
        reasoning_param="thinking" if body.thinking is not None else "output_config.effort",
    )


def _text(content: str | list[TextBlock]) -> str:
    return content if isinstance(content, str) else "".join(b.text for b in content)


def _stop_reason(job: Job) -> str:
    assert job.output is not None
    if job.output.finish is Finish.LENGTH:
        return "max_tokens"
    if job.output.stop_sequence is not None:
        return "stop_sequence"
    return "tool_use" if structure.reply(job, "toolu_").calls else "end_turn"


def _content(job: Job) -> list[dict[str, Any]]:
    """A thinking block (an upstream's reasoning), the text, the tool_use blocks."""
    assert job.output is not None
    got = structure.reply(job, "toolu_")
    thought = job.output.reasoning
    thinking = [{"type": "thinking", "thinking": thought, "signature": ""}] if thought else []
    text = [{"type": "text", "text": got.text}] if got.text or not got.calls else []
    return thinking + text + [tool_use(c) for c in got.calls]


def _usage(job: Job, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "batch" if job.batch_id is not None else "standard",
    }


def render(job: Job) -> dict[str, Any]:
    if job.output is None or job.usage is None:
        raise EngineFailed(job.error.message if job.error else None)
    return {
        "id": job.id,
        "type": "message",
        "role": "assistant",
        "model": job.model,
        "content": _content(job),
        "stop_reason": _stop_reason(job),
        "stop_sequence": job.output.stop_sequence,
        "usage": _usage(job, job.usage.input_tokens, job.usage.output_tokens),
        "cost": billing.cost(job),
        "completion_window": job.window.value,  # Leeway's: as the other surfaces show it
    }


class MessageStream:
    """``message_start``, one text block's deltas, ``message_delta`` with the stop reason. A job
    that may call tools opens its text block only once text that is not a call arrives, and its
    calls follow as ``tool_use`` blocks when it ends."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._opened = not structure.calling(job)
        self._sent = 0  # characters of text streamed

    def start(self) -> list[bytes]:
        job = self._job
        message: dict[str, Any] = {
            "id": job.id,
            "type": "message",
            "role": "assistant",
            "model": job.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(job, job.prompt_tokens, 0),
        }
        return [
            frame({"type": "message_start", "message": message}, "message_start"),
            *(self._block(0, {"type": "text", "text": ""}) if self._opened else []),
            frame({"type": "ping"}, "ping"),
        ]

    def _block(self, index: int, block: dict[str, Any]) -> list[bytes]:
        self._opened = self._opened or block["type"] == "text"
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return [frame(start, "content_block_start")]

    def delta(self, text: str) -> list[bytes]:
        if not text:
            return []
        self._sent += len(text)
        opening = [] if self._opened else self._block(0, {"type": "text", "text": ""})
        return [*opening, _delta(0, {"type": "text_delta", "text": text})]

    def end(self, job: Job) -> list[bytes]:
        if job.output is None or job.usage is None:
            return [
                frame(
                    anthropic_envelope(EngineFailed(job.error.message if job.error else None)),
                    "error",
                )
            ]
        frames: list[bytes] = []
        # an upstream's thinking is known once the reply ends: its block comes last here (the
        # message itself lists it first)
        blocks = [b for b in _content(job) if b["type"] != "thinking"]
        if job.output.reasoning:
            blocks.append({"type": "thinking", "thinking": job.output.reasoning, "signature": ""})
        for index, block in enumerate(blocks):
            if block["type"] == "thinking":
                frames += self._block(index, {**block, "thinking": ""})
                frames.append(
                    _delta(index, {"type": "thinking_delta", "thinking": block["thinking"]})
                )
                frames.append(_delta(index, {"type": "signature_delta", "signature": ""}))
            elif block["type"] == "text":
                if not self._opened:
                    frames += self._block(0, {"type": "text", "text": ""})
                if len(block["text"]) > self._sent:  # held back as a possible call; it was not
                    rest = {"type": "text_delta", "text": block["text"][self._sent :]}
                    frames.append(_delta(0, rest))
            else:
                frames += self._block(index, {**block, "input": {}})
                partial = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                frames.append(_delta(index, partial))
            frames.append(_stop(index))
        return [
            *frames,
            frame(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": _stop_reason(job),
                        "stop_sequence": job.output.stop_sequence,
                    },
                    "usage": {"output_tokens": job.usage.output_tokens},
                },
                "message_delta",
            ),
            frame({"type": "message_stop"}, "message_stop"),
        ]


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return frame(
        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
    )


def _stop(index: int) -> bytes:
    return frame({"type": "content_block_stop", "index": index}, "content_block_stop")


class Messages:
    """The surface, for the one create flow (errors in Anthropic's shape: ``api.errors``)."""

    def draft(self, body: CreateMessage) -> Draft:
        return draft(body)

    def mode(self, body: CreateMessage) -> Mode:
        return Mode.STREAM if body.stream else Mode.BLOCK

    async def prepare(self, body: CreateMessage, draft: Draft, tenant: str, store: Jobs) -> Draft:
        return draft

    def render(self, job: Job) -> dict[str, Any]:
        return render(job)

    def encoder(self, job: Job, body: CreateMessage) -> Encoder:
        return MessageStream(job)
