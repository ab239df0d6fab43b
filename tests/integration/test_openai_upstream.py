"""The upstream (``openai``) engine against a stub OpenAI-compatible server that records requests:
what it sends (priorities, sampling, formats, tools, continuations), how it reads the stream, and
what a 503, a refused connection or a 400 does to a job run by the real dispatcher and store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from leeway.catalog import EngineConfig, ModelConfig
from leeway.engines import Chunk
from leeway.engines.openai_upstream import OpenAIEngine
from leeway.errors import EngineRejected, EngineUnavailable
from leeway.jobs import Finish, Job, Message, Sampling, Status, Usage, Window
from leeway.pieces import PieceLog
from leeway.scheduler.dispatcher import Dispatcher
from leeway.store import SqlStore, open_store
from leeway.structured import OutputFormat, Tool, ToolCall, ToolChoice, ToolKind, Tools
from tests.conftest import FAKE_MODEL, make_job
from tests.e2e.server import free_port
from tests.integration.upstream_stub import Answer, Stub, text_events

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def engine_for(url: str, flavor: str = "vllm", **overrides: Any) -> OpenAIEngine:
    config = EngineConfig(
        kind="openai",
        model=FAKE_MODEL,
        id="gpu-1",
        url=url,
        flavor=flavor,
        upstream_model="served-name",
        parallel=2,
        health_seconds=overrides.pop("health_seconds", 0.2),
        **overrides,
    )
    return OpenAIEngine(config, ModelConfig(FAKE_MODEL, engine="fake", context=4096))


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    s = await Stub().start()
    try:
        yield s
    finally:
        await s.stop()


async def run(engine: OpenAIEngine, job: Job) -> list[Chunk]:
    return [chunk async for chunk in engine.generate(job)]


async def until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_vllm_gets_the_window_as_priority_and_the_sampling(stub: Stub):
    engine = engine_for(stub.url, api_key="sk-up")
    await engine.start()
    jobs = []
    try:
        assert engine.ready() and engine.id == "gpu-1" and engine.model == FAKE_MODEL
        for window in Window:
            sampling = Sampling(20, temperature=0.3, top_p=0.9, seed=7, stop=("END",))
            jobs.append(make_job(window=window, sampling=sampling))
            await run(engine, jobs[-1])
    finally:
        await engine.close()
    assert [r["priority"] for r in stub.requests] == [0, 1, 2, 3]  # lower runs first
    body = stub.requests[0]
    assert body["model"] == "served-name" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert body["max_completion_tokens"] == 20 and body["temperature"] == 0.3
    assert body["top_p"] == 0.9 and body["seed"] == 7 and body["stop"] == ["END"]
    assert "continue_final_message" not in body and "response_format" not in body
    assert stub.headers[0]["Authorization"] == "Bearer sk-up"
    # the job's id names the request upstream (vLLM logs it as chatcmpl-<id>)
    assert [h["X-Request-ID"] for h in stub.headers] == [j.id for j in jobs]


@pytest.mark.parametrize(("flavor", "expected"), [("sglang", [3, 2, 1, 0]), ("openai", None)])
async def test_sglang_priority_runs_high_values_first_and_openai_sends_none(
    stub: Stub, flavor: str, expected: list[int] | None
):
    engine = engine_for(stub.url, flavor)
    await engine.start()
    try:
        for window in Window:
            await run(engine, make_job(window=window))
    finally:
        await engine.close()
    if expected is None:
        assert all("priority" not in r for r in stub.requests)
    else:
        assert [r["priority"] for r in stub.requests] == expected


async def test_output_format_and_tools_are_passed_as_guided_decoding(stub: Stub):
    tools = Tools(
        (
            Tool("get_weather", description="Weather.", parameters=SCHEMA, strict=True),
            Tool("shell", kind=ToolKind.CUSTOM, description="Run it."),
        ),
        choice=ToolChoice.REQUIRED,
        only="get_weather",
        parallel=False,
    )
    engine = engine_for(stub.url)
    await engine.start()
    try:
        await run(engine, make_job(output_format=OutputFormat(SCHEMA, "answer")))
        await run(engine, make_job(output_format=OutputFormat()))
        await run(engine, make_job(tools=tools))
    finally:
        await engine.close()
    schema, any_object, called = stub.requests
    assert schema["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    assert any_object["response_format"] == {"type": "json_object"}
    weather, shell = called["tools"]
    assert weather == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather.",
            "parameters": SCHEMA,
            "strict": True,
        },
    }
    assert shell["function"]["parameters"]["properties"] == {"input": {"type": "string"}}
    assert shell["function"]["strict"] is True  # to vLLM every tool is strict: valid arguments
    assert called["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert called["parallel_tool_calls"] is False


async def test_only_vllm_gets_every_tool_strict(stub: Stub):
    tools = Tools((Tool("get_weather", parameters=SCHEMA), Tool("sure", strict=True)))
    engine = engine_for(stub.url, "openai")
    await engine.start()
    try:
        await run(engine, make_job(tools=tools))
    finally:
        await engine.close()
    loose, strict = stub.requests[0]["tools"]
    assert "strict" not in loose["function"] and strict["function"]["strict"] is True


async def test_the_stream_becomes_chunks_with_the_servers_usage(stub: Stub):
    stub.answers = [
        Answer(events=text_events("Hel", "lo", finish="stop", usage=(11, 2))),
        Answer(events=text_events("a", "b", "c", finish="length", usage=(11, 3))),
        Answer(events=text_events("x ", finish="stop", usage=(11, 2), stop_reason="END")),
    ]
    engine = engine_for(stub.url)
    await engine.start()
    try:
        first = await run(engine, make_job())
        capped = await run(engine, make_job())
        stopped = await run(engine, make_job(sampling=Sampling(16, stop=("END",))))
    finally:
        await engine.close()
    assert [c.text for c in first] == ["Hel", "lo", ""]
    assert [c.tokens for c in first] == [1, 2, 2]
    assert first[-1].finish is Finish.STOP and first[-1].usage == Usage(11, 2)
    assert all(c.finish is None and c.usage is None for c in first[:-1])
    assert capped[-1].finish is Finish.LENGTH and capped[-1].usage == Usage(11, 3)
    assert stopped[-1].stop_sequence == "END"


async def test_tool_calls_come_back_typed_with_the_servers_ids(stub: Stub):
    tools = Tools((Tool("get_weather", parameters=SCHEMA), Tool("shell", kind=ToolKind.CUSTOM)))

    def call(index: int, name: str | None, args: str, id: str | None = None) -> dict[str, Any]:
        function = {"arguments": args} | ({"name": name} if name else {})
        tc = {"index": index, "function": function} | ({"id": id, "type": "function"} if id else {})
        return {"choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]}

    events = [
        {"choices": [{"index": 0, "delta": {"content": "Let me check."}}]},
        call(0, "get_weather", "", id="up-1"),
        call(0, None, '{"n": '),
        call(0, None, "3}"),
        call(1, "shell", '{"input": "ls -l"}', id="up-2"),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 12}},
    ]
    stub.answers = [Answer(events=events)]
    engine = engine_for(stub.url)
    await engine.start()
    job = make_job(
        tools=tools,
        messages=(
            Message("user", "weather?"),
            Message("assistant", "", calls=(ToolCall("c1", "get_weather", '{"n":1}'),)),
            Message("tool", "sunny", call_id="c1"),
        ),
    )
    try:
        chunks = await run(engine, job)
    finally:
        await engine.close()
    assert "".join(c.text for c in chunks) == "Let me check."
    assert [(c.id, c.name, c.arguments, c.kind) for c in chunks[-1].calls] == [
        ("up-1", "get_weather", '{"n":3}', ToolKind.FUNCTION),
        ("up-2", "shell", "ls -l", ToolKind.CUSTOM),
    ]
    assert chunks[-1].finish is Finish.STOP and chunks[-1].usage == Usage(30, 12)
    sent = stub.requests[0]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"n":1}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}


async def test_a_resumed_job_continues_its_text_on_vllm(stub: Stub):
    stub.answers = [Answer(events=text_events(" more", usage=(25, 4)))]
    engine = engine_for(stub.url)
    await engine.start()
    try:
        job = make_job(partial_text="So far", partial_tokens=3, sampling=Sampling(10))
        chunks = await run(engine, job)
    finally:
        await engine.close()
    body = stub.requests[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "So far"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["max_completion_tokens"] == 7
    assert chunks[0].tokens == 4  # earlier runs' tokens included
    assert chunks[-1].usage == Usage(22, 7)  # the text so far is output, not input


async def test_a_resumed_structured_job_continues_its_value_unguided(stub: Stub):
    engine = engine_for(stub.url)
    await engine.start()
    fmt = OutputFormat(SCHEMA, "answer")
    try:
        await run(engine, make_job(output_format=fmt))
        await run(engine, make_job(output_format=fmt, partial_text='{"n": ', partial_tokens=3))
    finally:
        await engine.close()
    fresh, resumed = stub.requests
    assert fresh["response_format"]["json_schema"]["schema"] == SCHEMA
    # guided decoding would start a second value after the partial one: never valid
    assert "response_format" not in resumed
    assert resumed["messages"][-1] == {"role": "assistant", "content": '{"n": '}


async def test_errors_are_mapped_once(stub: Stub):
    stub.answers = [
        Answer(status=400, error="maximum context length is 4096 tokens"),
        Answer(status=503, error="overloaded"),
        Answer(status=429, error="slow down", headers={"Retry-After": "30"}),
    ]
    engine = engine_for(stub.url, health_seconds=60)
    await engine.start()
    try:
        with pytest.raises(EngineRejected, match="maximum context length is 4096 tokens"):
            await run(engine, make_job())
        assert engine.ready()  # the job's fault, not the server's
        with pytest.raises(EngineUnavailable, match="503"):
            await run(engine, make_job())
        assert not engine.ready()
        await until(engine.ready)  # the probe finds it healthy again
        with pytest.raises(EngineUnavailable, match="429"):
            await run(engine, make_job())
        await asyncio.sleep(1.5)
        assert not engine.ready()  # healthy, but not before its Retry-After
    finally:
        await engine.close()


async def test_vllm_metrics_hold_back_new_work_while_its_queue_is_long(stub: Stub):
    stub.metrics = (
        "# HELP vllm:num_requests_waiting Number of requests waiting.\n"
        'vllm:num_requests_running{model_name="m"} 2.0\n'
        'vllm:num_requests_waiting{model_name="m"} 9.0\n'
    )
    engine = engine_for(stub.url)
    await engine.start()
    try:
        assert engine.hints is not None and engine.hints.waiting == 9.0
        assert not engine.ready()
        stub.metrics = stub.metrics.replace("9.0", "1.0")
        await until(engine.ready)
    finally:
        await engine.close()


def test_token_counts_are_an_estimate():
    engine = engine_for("http://127.0.0.1:1")
    messages = [Message("system", "x" * 40), Message("user", "y" * 80)]
    assert engine.count_tokens(messages) == 30 + 2 * 4  # 120 characters / 4, + 4 a message


# -- through the real dispatcher and store --------------------------------------------------


async def dispatch(store: SqlStore, engine: OpenAIEngine, job: Job, done: Any) -> Job:
    await store.create(job)
    dispatcher = Dispatcher(store, [engine], PieceLog(), lease_seconds=30, poll_seconds=0.05)
    dispatcher.start()
    try:
        dispatcher.wake(job)
        current = job
        for _ in range(500):
            current = await store.get(job.tenant, job.id) or current
            if await done(current):
                return current
            await asyncio.sleep(0.02)
        raise AssertionError(f"never done: {current.status}")
    finally:
        await dispatcher.stop()


async def final(job: Job) -> bool:
    return job.status.is_final


async def test_a_503_requeues_the_job_which_completes_once_billed_once(stub: Stub, tmp_path: Path):
    stub.answers = [
        Answer(status=503, error="busy"),
        Answer(events=text_events("ok", usage=(9, 1))),
    ]
    store, engine = open_store(tmp_path / "db"), engine_for(stub.url)
    await engine.start()
    try:
        job = await dispatch(store, engine, make_job(), final)
    finally:
        await engine.close()
        await store.close()
    assert job.status is Status.COMPLETED and job.output is not None
    assert job.output.text == "ok" and job.usage == Usage(9, 1)
    assert job.attempts == 1  # the refused run spent no attempt
    assert len(stub.requests) == 2


async def test_a_refused_connection_requeues_and_the_engine_recovers(tmp_path: Path):
    port = free_port()
    stub = await Stub(port=port).start()
    store, engine = open_store(tmp_path / "db"), engine_for(stub.url, health_seconds=60)
    await engine.start()
    assert engine.ready()
    await stub.stop()  # the server goes away; the engine has yet to notice
    job = make_job()

    async def requeued(current: Job) -> bool:
        return current.status is Status.QUEUED and not engine.ready()

    try:
        seen = await dispatch(store, engine, job, requeued)
        assert seen.attempts == 0 and seen.output is None
        stub = await Stub(port=port).start()  # back up: the probe notices within a second or so
        await until(engine.ready)
        done = await dispatch_again(store, engine, job)
    finally:
        await engine.close()
        await stub.stop()
        await store.close()
    assert done.status is Status.COMPLETED and done.output is not None
    assert done.output.text == "Hello world" and done.usage == Usage(7, 3)
    assert len(stub.requests) == 1


async def dispatch_again(store: SqlStore, engine: OpenAIEngine, job: Job) -> Job:
    dispatcher = Dispatcher(store, [engine], PieceLog(), lease_seconds=30, poll_seconds=0.05)
    dispatcher.start()
    try:
        for _ in range(500):
            current = await store.get(job.tenant, job.id)
            assert current is not None
            if current.status.is_final:
                return current
            await asyncio.sleep(0.02)
        raise AssertionError("never finished")
    finally:
        await dispatcher.stop()


async def test_a_stream_cut_short_keeps_its_text_and_continues(stub: Stub, tmp_path: Path):
    stub.answers = [
        Answer(events=text_events("one", " two", usage=(5, 2)), drop_after=2),
        Answer(events=text_events(" three", usage=(8, 1))),
    ]
    store, engine = open_store(tmp_path / "db"), engine_for(stub.url)
    await engine.start()
    try:
        job = await dispatch(store, engine, make_job(), final)
    finally:
        await engine.close()
        await store.close()
    assert job.status is Status.COMPLETED and job.output is not None
    assert job.output.text == "one three"  # what streamed before the cut is kept, not redone
    retry = stub.requests[1]
    assert retry["messages"][-1] == {"role": "assistant", "content": "one"}
    assert job.usage == Usage(7, 2)  # one token kept + one continued; prompt less the kept text


async def test_a_400_fails_the_job_with_the_upstreams_message(stub: Stub, tmp_path: Path):
    stub.answers = [Answer(status=400, error="'temperature' must be at most 2")]
    store, engine = open_store(tmp_path / "db"), engine_for(stub.url)
    await engine.start()
    try:
        job = await dispatch(store, engine, make_job(), final)
    finally:
        await engine.close()
        await store.close()
    assert job.status is Status.FAILED and job.error is not None
    assert "'temperature' must be at most 2" in job.error.message
    assert job.usage is None and len(stub.requests) == 1
