"""The OpenAI Chat Completions surface: ``POST /v1/chat/completions``."""

from __future__ import annotations

from typing import Any, Literal

from leeway.api import billing, service_tier, structure
from leeway.api.bounds import ChatStops, Id, Json, JsonList, Many, Messages, Stop, Text, User
from leeway.api.bounds import Tools as ToolList
from leeway.api.chat_tools import (
    AnyCall,
    AnyTool,
    Choice,
    ResponseFormat,
    call_in,
    call_out,
    output_format,
    tools,
)
from leeway.api.create import Mode
from leeway.api.intake import Draft
from leeway.api.service_tier import OpenAITier
from leeway.api.sse import Encoder, frame
from leeway.api.wire import (
    Metadata,
    PositiveInt,
    Request,
    Temperature,
    TopP,
    Wire,
    reject_unsupported,
)
from leeway.errors import EngineFailed, InvalidRequest
from leeway.jobs import Finish, Job, Message, Surface
from leeway.store import Jobs

# Known parameters not built yet, each with the value that means "not used" (accepted).
_NOT_YET: dict[str, Any] = {
    "functions": [],
    "function_call": "none",
    "logprobs": False,
    "top_logprobs": 0,
    "logit_bias": {},
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "audio": None,
    "modalities": ["text"],
    "prediction": None,
    "web_search_options": None,
}


class TextPart(Wire):
    type: Literal["text"]
    text: Text


class ChatMessage(Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | Many[TextPart] | None = None  # None: an assistant turn with only tool calls
    tool_calls: ToolList[AnyCall] | None = None
    name: Id | None = None
    tool_call_id: Id | None = None
    refusal: Text | None = None
    annotations: JsonList | None = None  # an earlier reply sent back as it came
    parsed: Json = None  # the openai SDK's parse() leaves it on a message sent back
    # an upstream's reasoning on an earlier reply sent back (vLLM's name, and its newer one):
    # accepted, not shown to the model again
    reasoning_content: Text | None = None
    reasoning: Text | None = None


class StreamOptions(Wire):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class CreateChatCompletion(Request):
    model: Id
    messages: Messages[ChatMessage]
    max_completion_tokens: PositiveInt | None = None
    max_tokens: PositiveInt | None = None  # the older name most clients still send
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: Stop | ChatStops | None = None
    seed: int | None = None
    n: int | None = None
    user: User | None = None
    metadata: Metadata | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    service_tier: OpenAITier | None = None
    response_format: ResponseFormat | None = None
    tools: ToolList[AnyTool] | None = None
    tool_choice: Choice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    # stored unless ``store: false`` (Leeway keeps every job; this says whether it is listed)
    store: bool | None = None
    prompt_cache_key: Id | None = None  # accepted: llama.cpp and vLLM reuse prefixes anyway
    safety_identifier: User | None = None
    verbosity: Literal["low", "medium", "high"] | None = (
        None  # accepted: the model answers as it does
    )


def draft(body: CreateChatCompletion, *, in_batch: bool = False) -> Draft:
    """``in_batch``: a batch item, which runs in the background (so ``service_tier: flex`` is
    its flex window)."""
    reject_unsupported(body, _NOT_YET)
    if body.n not in (None, 1):
        raise InvalidRequest("Only n=1 is supported: one choice per request.", param="n")
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "stream_options is only allowed with stream: true.", param="stream_options"
        )
    if body.service_tier == "flex" and not in_batch:
        raise InvalidRequest(
            "service_tier 'flex' runs in the flex completion window, which needs background: "
            "true; a chat completion is answered while you wait. Use the Responses API with "
            "background: true (or a batch) for flex.",
            param="service_tier",
        )
    metadata = dict(body.metadata or {})
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    messages: list[Message] = []
    for i, m in enumerate(body.messages):
        messages.append(_message(i, m, messages))
    return Draft(
        surface=Surface.CHAT,
        id_prefix="chatcmpl-",
        model=body.model,
        messages=tuple(messages),
        max_output_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=stop,
        background=False,
        requested_window=service_tier.requested_window(body.service_tier, metadata),
        window_param=service_tier.window_param(body.service_tier, metadata),
        metadata=metadata,
        echo={"user": body.user},
        input_param="messages",
        stored=body.store is not False,
        output_format=output_format(body.response_format),
        tools=tools(body.tools, body.tool_choice, body.parallel_tool_calls),
        reasoning=structure.reasoning(body.reasoning_effort),
        reasoning_param="reasoning_effort",
    )


def _message(index: int, m: ChatMessage, earlier: list[Message]) -> Message:
    text = _text(m.content)
    if m.role == "function":  # the deprecated tool result: it answers the last call of its name
        if m.name is None:
            raise InvalidRequest(
                f"messages[{index}].name: a function message names the function it answers.",
                param=f"messages[{index}].name",
            )
        made = (c for turn in reversed(earlier) for c in reversed(turn.calls))
        answered = next((c.id for c in made if c.name == m.name), m.name)
        return Message("tool", text, call_id=answered)
    if m.role == "tool":
        if m.tool_call_id is None:
            raise InvalidRequest(
                f"messages[{index}].tool_call_id: a tool message answers a call: name it.",
                param=f"messages[{index}].tool_call_id",
            )
        return Message("tool", text, call_id=m.tool_call_id)
    calls = tuple(call_in(c) for c in m.tool_calls or ())
    return Message("system" if m.role == "developer" else m.role, text, calls)


def _text(content: str | list[TextPart] | None) -> str:
    if content is None:
        return ""
    return content if isinstance(content, str) else "".join(p.text for p in content)


def _finish_reason(job: Job) -> str:
    assert job.output is not None
    if job.output.finish is Finish.LENGTH:
        return "length"
    return "tool_calls" if structure.reply(job).calls else "stop"


def _usage(job: Job) -> dict[str, Any]:
    assert job.usage is not None
    return {
        "prompt_tokens": job.usage.input_tokens,
        "completion_tokens": job.usage.output_tokens,
        "total_tokens": job.usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": job.usage.reasoning_tokens},
    }


def render(job: Job) -> dict[str, Any]:
    """The final job as a ``chat.completion``; a failed job is an error, as OpenAI reports it."""
    if job.output is None:
        raise EngineFailed(job.error.message if job.error else None)
    got = structure.reply(job)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": got.text if got.text or not got.calls else None,
        "refusal": None,
        "annotations": [],
    }
    if got.calls:
        message["tool_calls"] = [call_out(c) for c in got.calls]
    if job.output.reasoning:  # as vLLM shows an upstream's reasoning
        message["reasoning_content"] = job.output.reasoning
    return {
        "id": job.id,
        "object": "chat.completion",
        "created": int(job.created_at),
        "model": job.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(job),
            }
        ],
        "usage": _usage(job),
        "cost": billing.cost(job),
        "system_fingerprint": None,
        "service_tier": service_tier.tier(job.window),
        "metadata": dict(job.metadata),
        "completion_window": job.window.value,
    }


class ChatStream:
    """``chat.completion.chunk`` frames, then ``[DONE]``."""

    def __init__(self, job: Job, include_usage: bool) -> None:
        self._job, self._include_usage = job, include_usage
        self._sent = 0  # characters of text streamed

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        job = self._job
        return frame(
            {
                "id": job.id,
                "object": "chat.completion.chunk",
                "created": int(job.created_at),
                "model": job.model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    def start(self) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": "", "refusal": None})]

    def delta(self, text: str) -> list[bytes]:
        self._sent += len(text)
        return [self._chunk({"content": text})] if text else []

    def end(self, job: Job) -> list[bytes]:
        if job.output is None:
            message = job.error.message if job.error else "The job did not finish."
            return [
                frame(
                    {
                        "error": {
                            "message": message,
                            "type": "server_error",
                            "param": None,
                            "code": job.error.code if job.error else None,
                        }
                    }
                )
            ]
        frames, got = [], structure.reply(job)
        if job.output.reasoning:  # an upstream's: known once the reply ends
            frames.append(self._chunk({"reasoning_content": job.output.reasoning}))
        if len(got.text) > self._sent:  # text not streamed (a replay of a reply cut short)
            frames.append(self._chunk({"content": got.text[self._sent :]}))
        for i, call in enumerate(got.calls):
            frames.append(self._chunk({"tool_calls": [{"index": i, **call_out(call)}]}))
        frames.append(self._chunk({}, _finish_reason(job)))
        if self._include_usage:
            frames.append(
                frame(
                    {
                        "id": job.id,
                        "object": "chat.completion.chunk",
                        "created": int(job.created_at),
                        "model": job.model,
                        "choices": [],
                        "usage": _usage(job),
                    }
                )
            )
        return [*frames, frame(b"[DONE]")]


class Chat:
    """The surface, for the one create flow."""

    def draft(self, body: CreateChatCompletion) -> Draft:
        return draft(body)

    def mode(self, body: CreateChatCompletion) -> Mode:
        return Mode.STREAM if body.stream else Mode.BLOCK

    async def prepare(
        self, body: CreateChatCompletion, draft: Draft, tenant: str, store: Jobs
    ) -> Draft:
        return draft

    def render(self, job: Job) -> dict[str, Any]:
        return render(job)

    def encoder(self, job: Job, body: CreateChatCompletion) -> Encoder:
        return ChatStream(job, bool(body.stream_options and body.stream_options.include_usage))
