"""The OpenAI Responses surface: ``POST /v1/responses`` and ``GET /v1/responses/{id}``."""

from __future__ import annotations

from typing import Any, Literal

from leeway.api.intake import Draft
from leeway.api.sse import frame
from leeway.api.wire import (
    Metadata,
    PositiveInt,
    Request,
    Temperature,
    TopP,
    Wire,
    reject_unsupported,
)
from leeway.errors import InvalidRequest
from leeway.jobs import Finish, Job, Message, Status, Surface

# Parameters of OpenAI's Responses API that Leeway does not implement yet: rejected by name, never
# silently ignored. Each maps to the value that means "not used", which is accepted.
_NOT_YET: dict[str, Any] = {
    "tools": [],
    "tool_choice": "none",
    "text": {"format": {"type": "text"}},
    "reasoning": None,
    "conversation": None,
    "prompt": None,
    "include": [],
    "truncation": "disabled",
    "parallel_tool_calls": None,
    "max_tool_calls": None,
    "top_logprobs": None,
    "stream_options": None,
}


class TextPart(Wire):
    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None  # output_text parts echoed back from an earlier response


class InputMessage(Wire):
    type: Literal["message"] | None = None
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    id: str | None = None  # items echoed back from an earlier response carry these
    status: str | None = None


class CreateResponse(Request):
    model: str
    input: str | list[InputMessage]
    instructions: str | None = None
    max_output_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    user: str | None = None
    metadata: Metadata | None = None
    background: bool | None = None
    store: bool | None = None
    stream: bool | None = None
    previous_response_id: str | None = None
    service_tier: Literal["auto", "default"] | None = None


def draft(body: CreateResponse) -> Draft:
    reject_unsupported(body, _NOT_YET)
    if body.store is False:
        raise InvalidRequest(
            "store: false is not supported: Leeway stores every response.", param="store"
        )
    messages = _messages(body)
    if not messages:
        raise InvalidRequest("input must hold at least one message.", param="input")
    metadata = dict(body.metadata or {})
    background = bool(body.background)
    temperature = 1.0 if body.temperature is None else body.temperature
    top_p = 1.0 if body.top_p is None else body.top_p
    return Draft(
        surface=Surface.RESPONSES,
        id_prefix="resp_",
        model=body.model,
        messages=messages,
        max_output_tokens=body.max_output_tokens,
        temperature=temperature,
        top_p=top_p,
        background=background,
        requested_window=metadata.get("completion_window"),
        metadata=metadata,
        echo={
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "user": body.user,
            "background": background,
        },
    )


def _messages(body: CreateResponse) -> tuple[Message, ...]:
    out = [Message("system", body.instructions)] if body.instructions is not None else []
    if isinstance(body.input, str):
        return (*out, Message("user", body.input))
    for item in body.input:
        role = "system" if item.role == "developer" else item.role
        if isinstance(item.content, str):
            text = item.content
        else:
            text = "".join(part.text for part in item.content)
        out.append(Message(role, text))
    return tuple(out)


def render(job: Job, *, strict_incomplete: bool) -> dict[str, Any]:
    """The job as OpenAI's ``Response`` object, in its current state."""
    capped = job.output is not None and job.output.finish is Finish.LENGTH
    status = job.status
    if status is Status.INCOMPLETE and not strict_incomplete:
        status = Status.COMPLETED  # as the reference service reports it; details say it was capped
    echo = job.echo
    return {
        "id": job.id,
        "object": "response",
        "created_at": int(job.created_at),
        "status": status.value,
        "background": echo.get("background", False),
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "error": {"code": job.error.code, "message": job.error.message} if job.error else None,
        "incomplete_details": {"reason": "max_output_tokens"} if capped else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "metadata": dict(job.metadata),
        "model": job.model,
        "output": _output(job),
        "parallel_tool_calls": False,
        "store": True,
        "temperature": echo.get("temperature"),
        "text": {"format": {"type": "text"}},
        "tool_choice": "none",
        "tools": [],
        "top_p": echo.get("top_p"),
        "truncation": "disabled",
        "usage": _usage(job),
        "user": echo.get("user"),
        "completion_window": job.window.value,
    }


def _output(job: Job) -> list[dict[str, Any]]:
    if job.output is None:
        return []
    capped = job.output.finish is Finish.LENGTH
    return [
        {
            "type": "message",
            "id": "msg_" + job.id.removeprefix("resp_"),
            "status": "incomplete" if capped else "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": job.output.text, "annotations": [], "logprobs": []}
            ],
        }
    ]


def _usage(job: Job) -> dict[str, Any] | None:
    if job.usage is None:
        return None
    return {
        "input_tokens": job.usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": job.usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": job.usage.total_tokens,
    }


class ResponseStream:
    """Responses events: created, in_progress, the message item's text deltas, then the outcome."""

    def __init__(self, job: Job, *, strict_incomplete: bool, after: int = -1) -> None:
        """``after``: events up to this sequence number were seen already and are skipped."""
        self._job, self._strict, self._seq, self._after = job, strict_incomplete, 0, after
        self._item = "msg_" + job.id.removeprefix("resp_")

    def _event(self, kind: str, **fields: Any) -> bytes:
        seq = self._seq
        self._seq += 1
        if seq <= self._after:
            return b""
        return frame({"type": kind, "sequence_number": seq, **fields}, kind)

    def _where(self) -> dict[str, Any]:
        return {"item_id": self._item, "output_index": 0, "content_index": 0}

    def start(self) -> list[bytes]:
        created = render(self._job, strict_incomplete=self._strict)
        item = {
            "id": self._item,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        return [
            self._event("response.created", response=created),
            self._event("response.in_progress", response={**created, "status": "in_progress"}),
            self._event("response.output_item.added", output_index=0, item=item),
            self._event(
                "response.content_part.added",
                **self._where(),
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]

    def delta(self, text: str) -> list[bytes]:
        return [self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[])]

    def end(self, job: Job) -> list[bytes]:
        final = render(job, strict_incomplete=self._strict)
        if job.output is None:
            return [self._event("response.failed", response=final)]
        item = final["output"][0]
        part = item["content"][0]
        outcome = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return [
            self._event(
                "response.output_text.done", **self._where(), text=part["text"], logprobs=[]
            ),
            self._event("response.content_part.done", **self._where(), part=part),
            self._event("response.output_item.done", output_index=0, item=item),
            self._event(outcome, response=final),
        ]
