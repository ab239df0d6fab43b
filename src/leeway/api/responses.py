"""The OpenAI Responses surface: ``POST /v1/responses`` and ``GET /v1/responses/{id}``."""

from __future__ import annotations

from typing import Any, Literal

from leeway.api import structure
from leeway.api.bounds import Id, JsonList, Many, Text, User
from leeway.api.bounds import Tools as ToolList
from leeway.api.intake import Draft
from leeway.api.responses_tools import (
    AnyTool,
    CallItem,
    Choice,
    Reasoning,
    TextConfig,
    history_item,
    message_item,
    output_format,
    output_items,
    tools,
)
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
    "conversation": None,
    "prompt": None,
    "include": [],
    "truncation": "disabled",
    "max_tool_calls": None,
    "top_logprobs": None,
    "stream_options": None,
}


class TextPart(Wire):
    type: Literal["input_text", "output_text"]
    text: Text
    annotations: JsonList | None = None  # output_text parts echoed back from an earlier response
    logprobs: JsonList | None = None


class InputMessage(Wire):
    type: Literal["message"] | None = None
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | Many[TextPart]
    id: Id | None = None  # items echoed back from an earlier response carry these
    status: Id | None = None


class CreateResponse(Request):
    model: Id
    input: Text | Many[InputMessage | CallItem]
    instructions: Text | None = None
    max_output_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    user: User | None = None
    metadata: Metadata | None = None
    background: bool | None = None
    store: bool | None = None
    stream: bool | None = None
    previous_response_id: Id | None = None
    service_tier: Literal["auto", "default"] | None = None
    text: TextConfig | None = None
    tools: ToolList[AnyTool] | None = None
    tool_choice: Choice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None


_NO_REASONING = Reasoning()  # read only: what a request that asks for no reasoning reads


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
    reasoning = body.reasoning or _NO_REASONING
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
            **_echo_structure(body),
        },
        output_format=output_format(body.text),
        tools=tools(body.tools, body.tool_choice, body.parallel_tool_calls),
        reasoning=structure.reasoning(
            reasoning.effort, summary=reasoning.summary or reasoning.generate_summary
        ),
    )


def _echo_structure(body: CreateResponse) -> dict[str, Any]:
    """How the format, tools and reasoning are shown back on the response."""
    echo: dict[str, Any] = {}
    if body.text is not None and body.text.format is not None:
        echo["text"] = {"format": body.text.format.model_dump(by_alias=True, exclude_none=True)}
    if body.tools:
        echo["tools"] = [t.model_dump(exclude_none=True) for t in body.tools]
    if body.tool_choice is not None:
        choice = body.tool_choice
        echo["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump()
    if body.parallel_tool_calls is not None:
        echo["parallel_tool_calls"] = body.parallel_tool_calls
    if body.reasoning is not None:
        echo["reasoning"] = body.reasoning.model_dump(exclude_none=True)
    return echo


def _messages(body: CreateResponse) -> tuple[Message, ...]:
    out = [Message("system", body.instructions)] if body.instructions is not None else []
    if isinstance(body.input, str):
        return (*out, Message("user", body.input))
    for item in body.input:
        if not isinstance(item, InputMessage):
            history_item(out, item)
            continue
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
        "output": output_items(job),
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "reasoning": {"effort": None, "summary": None, **echo.get("reasoning", {})},
        "store": True,
        "temperature": echo.get("temperature"),
        "text": echo.get("text", {"format": {"type": "text"}}),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p"),
        "truncation": "disabled",
        "usage": _usage(job),
        "user": echo.get("user"),
        "completion_window": job.window.value,
    }


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
    """Responses events: created, in_progress, the message item's text deltas, then the outcome.
    A job that may call tools opens its message only once text that is not a call arrives, and
    its calls follow as function_call / custom_tool_call items when it ends."""

    def __init__(self, job: Job, *, strict_incomplete: bool, after: int = -1) -> None:
        """``after``: events up to this sequence number were seen already and are skipped."""
        self._job, self._strict, self._seq, self._after = job, strict_incomplete, 0, after
        self._item = "msg_" + job.id.removeprefix("resp_")
        self._before = structure.TextBeforeCalls() if structure.calling(job) else None
        self._opened = self._before is None
        self._sent: list[str] = []

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
        return [
            self._event("response.created", response=created),
            self._event("response.in_progress", response={**created, "status": "in_progress"}),
            *(self._open() if self._opened else []),
        ]

    def _open(self) -> list[bytes]:
        self._opened = True
        return [
            self._event(
                "response.output_item.added",
                output_index=0,
                item=message_item(self._job, None, "in_progress"),
            ),
            self._event(
                "response.content_part.added",
                **self._where(),
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]

    def delta(self, text: str) -> list[bytes]:
        if self._before is not None:
            text = self._before.feed(text)
        if not text:
            return []
        opening = [] if self._opened else self._open()
        self._sent.append(text)
        return [
            *opening,
            self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[]),
        ]

    def end(self, job: Job) -> list[bytes]:
        final = render(job, strict_incomplete=self._strict)
        if job.output is None:
            return [self._event("response.failed", response=final)]
        items = final["output"]
        events = []
        if items and items[0]["type"] == "message":
            events += self._close_message(items[0])
        for index, item in enumerate(items):
            if item["type"] != "message":
                events += self._call(index, item)
        outcome = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return [*events, self._event(outcome, response=final)]

    def _close_message(self, item: dict[str, Any]) -> list[bytes]:
        part = item["content"][0]
        events = [] if self._opened else self._open()
        sent = "".join(self._sent)
        if len(part["text"]) > len(sent):  # held back as a possible call, and it was not one
            rest = part["text"][len(sent) :]
            events.append(
                self._event("response.output_text.delta", **self._where(), delta=rest, logprobs=[])
            )
        return [
            *events,
            self._event(
                "response.output_text.done", **self._where(), text=part["text"], logprobs=[]
            ),
            self._event("response.content_part.done", **self._where(), part=part),
            self._event("response.output_item.done", output_index=0, item=item),
        ]

    def _call(self, index: int, item: dict[str, Any]) -> list[bytes]:
        where = {"item_id": item["id"], "output_index": index}
        custom = item["type"] == "custom_tool_call"
        value = item["input"] if custom else item["arguments"]
        kind = "response.custom_tool_call_input" if custom else "response.function_call_arguments"
        started = (
            {**item, "input": ""} if custom else {**item, "arguments": "", "status": "in_progress"}
        )
        done = {"input": value} if custom else {"arguments": value}
        return [
            self._event("response.output_item.added", output_index=index, item=started),
            self._event(f"{kind}.delta", **where, delta=value),
            self._event(f"{kind}.done", **where, **done),
            self._event("response.output_item.done", output_index=index, item=item),
        ]
