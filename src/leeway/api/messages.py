"""The Anthropic Messages surface: ``POST /v1/messages``, in Anthropic's shapes (errors included)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from leeway.api.errors import anthropic_envelope
from leeway.api.intake import Draft
from leeway.api.sse import frame
from leeway.api.wire import Metadata, PositiveInt, Request, TopP, Wire, reject_unsupported
from leeway.errors import EngineFailed
from leeway.jobs import Finish, Job, Message, Surface

_NOT_YET: dict[str, Any] = {
    "tools": [],
    "tool_choice": None,
    "thinking": None,
    "top_k": None,
    "service_tier": None,
    "container": None,
    "mcp_servers": [],
    "output_config": None,
    "inference_geo": None,
}


class TextBlock(Wire):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Any] | None = None


class InputMessage(Wire):
    role: Literal["user", "assistant"]
    content: str | list[TextBlock]


class CreateMessage(Request):
    model: str
    max_tokens: PositiveInt
    messages: Annotated[list[InputMessage], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    temperature: Annotated[float, Field(ge=0, le=1, strict=False)] | None = None
    top_p: TopP | None = None
    stop_sequences: list[str] | None = None
    metadata: Metadata | None = None
    stream: bool | None = None


def draft(body: CreateMessage) -> Draft:
    reject_unsupported(body, _NOT_YET)
    metadata = dict(body.metadata or {})
    messages = [Message(m.role, _text(m.content)) for m in body.messages]
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
    )


def _text(content: str | list[TextBlock]) -> str:
    return content if isinstance(content, str) else "".join(b.text for b in content)


def _stop_reason(job: Job) -> str:
    assert job.output is not None
    if job.output.finish is Finish.LENGTH:
        return "max_tokens"
    return "stop_sequence" if job.output.stop_sequence is not None else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def render(job: Job) -> dict[str, Any]:
    if job.output is None or job.usage is None:
        raise EngineFailed(job.error.message if job.error else None)
    return {
        "id": job.id,
        "type": "message",
        "role": "assistant",
        "model": job.model,
        "content": [{"type": "text", "text": job.output.text}],
        "stop_reason": _stop_reason(job),
        "stop_sequence": job.output.stop_sequence,
        "usage": _usage(job.usage.input_tokens, job.usage.output_tokens),
    }


class MessageStream:
    """``message_start``, one text block's deltas, ``message_delta`` with the stop reason."""

    def __init__(self, job: Job) -> None:
        self._job = job

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
            "usage": _usage(job.prompt_tokens, 0),
        }
        return [
            frame({"type": "message_start", "message": message}, "message_start"),
            frame(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            frame({"type": "ping"}, "ping"),
        ]

    def delta(self, text: str) -> list[bytes]:
        return [
            frame(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
                "content_block_delta",
            )
        ]

    def end(self, job: Job) -> list[bytes]:
        if job.output is None or job.usage is None:
            return [
                frame(
                    anthropic_envelope(EngineFailed(job.error.message if job.error else None)),
                    "error",
                )
            ]
        return [
            frame({"type": "content_block_stop", "index": 0}, "content_block_stop"),
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
