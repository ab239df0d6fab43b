"""The OpenAI Responses surface: ``POST /v1/responses`` (its wire model, draft and rendering, for the
one create flow), and its own routes: ``GET``, ``cancel``, ``DELETE`` and ``input_items`` of a
response, and ``previous_response_id`` (a conversation continued from a stored response)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from leeway.api import billing, service_tier, structure
from leeway.api.bounds import Id, JsonList, Many, Text, User
from leeway.api.bounds import Tools as ToolList
from leeway.api.create import Mode
from leeway.api.intake import Draft
from leeway.api.responses_stream import ResponseStream
from leeway.api.responses_tools import (
    AnyTool,
    CallItem,
    Choice,
    Reasoning,
    TextConfig,
    history_item,
    output_format,
    output_items,
    tools,
)
from leeway.api.service_tier import OpenAITier
from leeway.api.sse import Encoder
from leeway.api.wire import (
    Metadata,
    PositiveInt,
    Request,
    Temperature,
    TopP,
    Wire,
    reject_unsupported,
)
from leeway.errors import InvalidRequest, NotFound, UnsupportedParameter
from leeway.jobs import Finish, Job, Message, Status, Surface
from leeway.store import Jobs

# Parameters of OpenAI's Responses API that Leeway does not implement yet: rejected by name, never
# silently ignored. Each maps to the value that means "not used", which is accepted.
_NOT_YET: dict[str, Any] = {
    "conversation": None,
    "prompt": None,
    "truncation": "disabled",
    "top_logprobs": 0,
}
# ``include`` values the reference refuses (seed 004); any other string is accepted.
_NOT_INCLUDED = frozenset(
    {
        "reasoning.encrypted_content",
        "web_search_call.action.sources",
        "code_interpreter_call.outputs",
        "computer_call_output.output.image_url",
        "file_search_call.results",
        "message.input_image.image_url",
        "message.output_text.logprobs",
    }
)


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


class StreamOptions(Wire):
    include_obfuscation: bool | None = None  # Leeway never pads its events: either is the same


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
    service_tier: OpenAITier | None = None
    text: TextConfig | None = None
    tools: ToolList[AnyTool] | None = None
    tool_choice: Choice | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: Annotated[int, Field(ge=0)] | None = None
    reasoning: Reasoning | None = None
    prompt_cache_key: Id | None = None  # accepted: llama.cpp and vLLM reuse prefixes anyway
    safety_identifier: User | None = None
    stream_options: StreamOptions | None = None
    include: Many[Id] | None = None


_NO_REASONING = Reasoning()  # read only: what a request that asks for no reasoning reads
_TEXT = {"format": {"type": "text"}}


def draft(body: CreateResponse) -> Draft:
    reject_unsupported(body, _NOT_YET)
    _check(body)
    messages = _messages(body)
    if not messages:
        raise InvalidRequest("input must hold at least one message.", param="input")
    metadata = dict(body.metadata or {})
    background = bool(body.background)
    temperature = 1.0 if body.temperature is None else body.temperature
    top_p = 1.0 if body.top_p is None else body.top_p
    reasoning = body.reasoning or _NO_REASONING
    given_tools = tools(body.tools, body.tool_choice, body.parallel_tool_calls)
    return Draft(
        surface=Surface.RESPONSES,
        id_prefix="resp_",
        model=body.model,
        messages=messages,
        max_output_tokens=body.max_output_tokens,
        temperature=temperature,
        top_p=top_p,
        background=background,
        requested_window=service_tier.requested_window(body.service_tier, metadata),
        window_param=service_tier.window_param(body.service_tier, metadata),
        metadata=metadata,
        instructions=body.instructions,
        echo={
            "max_output_tokens": body.max_output_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "user": body.user,
            **_echo_structure(body),
            **_echo_more(body),
        },
        output_format=output_format(body.text),
        tools=structure.limit_calls(given_tools, body.max_tool_calls, "max_tool_calls"),
        reasoning=structure.reasoning(
            reasoning.effort, summary=reasoning.summary or reasoning.generate_summary
        ),
    )


def _check(body: CreateResponse) -> None:
    if body.store is False:
        raise InvalidRequest(
            "store: false is not supported: Leeway stores every response.", param="store"
        )
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "stream_options is only allowed with stream: true.", param="stream_options"
        )
    for i, value in enumerate(body.include or ()):
        if value in _NOT_INCLUDED:
            raise UnsupportedParameter(
                f"include[{i}]: {value!r} is not supported by this server; remove it from include.",
                param=f"include[{i}]",
            )


def _echo_more(body: CreateResponse) -> dict[str, Any]:
    """The accepted parameters a response shows back (only those the request gave)."""
    given = {
        "previous_response_id": body.previous_response_id,
        "prompt_cache_key": body.prompt_cache_key,
        "safety_identifier": body.safety_identifier,
        "max_tool_calls": body.max_tool_calls,
        "top_logprobs": (body.model_extra or {}).get("top_logprobs"),
    }
    return {k: v for k, v in given.items() if v is not None}


def _echo_structure(body: CreateResponse) -> dict[str, Any]:
    """How the format, tools and reasoning are shown back on the response."""
    echo: dict[str, Any] = {}
    if body.text is not None and body.text.format is not None:
        echo["text"] = {"format": body.text.format.model_dump(by_alias=True, exclude_none=True)}
    if body.text is not None and body.text.verbosity is not None:
        echo["text"] = {**echo.get("text", _TEXT), "verbosity": body.text.verbosity}
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
        "background": job.background,
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "error": {"code": job.error.code, "message": job.error.message} if job.error else None,
        "incomplete_details": {"reason": "max_output_tokens"} if capped else None,
        "instructions": job.instructions,
        "max_output_tokens": echo.get("max_output_tokens"),
        "metadata": dict(job.metadata),
        "model": job.model,
        "output": output_items(job),
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "reasoning": {"effort": None, "summary": None, **echo.get("reasoning", {})},
        "store": True,
        "temperature": echo.get("temperature"),
        "text": echo.get("text", _TEXT),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p"),
        "truncation": "disabled",
        "usage": _usage(job),
        "cost": billing.cost(job),
        "user": echo.get("user"),
        "service_tier": service_tier.tier(job.window),
        "previous_response_id": echo.get("previous_response_id"),
        "prompt_cache_key": echo.get("prompt_cache_key"),
        "safety_identifier": echo.get("safety_identifier"),
        "max_tool_calls": echo.get("max_tool_calls"),
        "top_logprobs": echo.get("top_logprobs"),
        "completion_window": job.window.value,
    }


def _usage(job: Job) -> dict[str, Any] | None:
    if job.usage is None:
        return None
    return {
        "input_tokens": job.usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": job.usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": job.usage.reasoning_tokens},
        "total_tokens": job.usage.total_tokens,
    }


class Responses:
    """The surface, its rendering options fixed: a response cut short by its output cap reports
    ``completed`` as the reference service does, or OpenAI's ``incomplete`` (``strict``)."""

    def __init__(self, *, strict_incomplete: bool) -> None:
        self._strict = strict_incomplete

    def draft(self, body: CreateResponse) -> Draft:
        return draft(body)

    def mode(self, body: CreateResponse) -> Mode:
        if body.stream:
            return Mode.STREAM
        return Mode.BACKGROUND if body.background else Mode.BLOCK

    async def prepare(self, body: CreateResponse, draft: Draft, tenant: str, store: Jobs) -> Draft:
        """With ``previous_response_id``: the stored conversation so far, then this request's
        input. As in OpenAI's API, the previous request's instructions are not carried over."""
        if body.previous_response_id is None:
            return draft
        prev = await store.get(tenant, body.previous_response_id)
        if prev is None or prev.surface is not Surface.RESPONSES:
            raise NotFound(
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
            )
        if prev.output is None:
            raise InvalidRequest(
                f"Previous response '{prev.id}' has no output yet (status "
                f"{prev.status.value}); continue once it has completed.",
                param="previous_response_id",
            )
        history = prev.messages[1:] if prev.instructions is not None else prev.messages
        turn = (*history, structure.assistant_turn(prev))
        given = draft.messages[:1] if draft.instructions is not None else ()
        return replace(draft, messages=(*given, *turn, *draft.messages[len(given) :]))

    def render(self, job: Job) -> dict[str, Any]:
        return render(job, strict_incomplete=self._strict)

    def encoder(self, job: Job, body: CreateResponse | None = None, after: int = -1) -> Encoder:
        return ResponseStream(job, self.render, after)
