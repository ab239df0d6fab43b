"""Reasoning from an upstream (vLLM's ``reasoning_content`` deltas, or ``reasoning`` in newer
releases): kept apart from the reply's text, read once by the engine, stored with the output and
its tokens counted; and ``max_tool_calls`` cutting an upstream's calls. Against the recording
stub, through the real dispatcher and store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from leeway.jobs import Status, Usage
from leeway.store import open_store
from leeway.structured import Tool, Tools
from tests.conftest import make_job
from tests.integration.test_openai_upstream import SCHEMA, dispatch, engine_for, final, run
from tests.integration.upstream_stub import Answer, Stub, reasoning_events


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    s = await Stub().start()
    try:
        yield s
    finally:
        await s.stop()


async def test_reasoning_deltas_are_kept_apart_from_the_text(stub: Stub):
    stub.answers = [
        Answer(events=reasoning_events(["Two ", "and two."], ["It is ", "4."], usage=(9, 6))),
        Answer(events=reasoning_events(["Hm."], ["Yes."], key="reasoning", details=5)),
        Answer(events=reasoning_events([], ["Plain."], usage=(9, 1))),
    ]
    engine = engine_for(stub.url)
    await engine.start()
    try:
        thought = await run(engine, make_job())
        newer = await run(engine, make_job())
        plain = await run(engine, make_job())
    finally:
        await engine.close()
    assert [c.text for c in thought] == ["It is ", "4.", ""]  # the reasoning is no piece of text
    assert thought[-1].reasoning == "Two and two."
    assert [c.tokens for c in thought][:2] == [3, 4]  # reasoning events are output tokens too
    assert thought[-1].usage == Usage(9, 6, 2)  # no count from the server: one an event
    assert newer[-1].reasoning == "Hm." and newer[-1].usage == Usage(7, 9, 5)  # the server's
    assert plain[-1].reasoning == "" and plain[-1].usage == Usage(9, 1, 0)


async def test_reasoning_is_stored_with_the_output(stub: Stub, tmp_path: Path):
    stub.answers = [Answer(events=reasoning_events(["Think."], ["Done."], usage=(8, 3)))]
    store, engine = open_store(tmp_path / "db"), engine_for(stub.url)
    await engine.start()
    try:
        job = await dispatch(store, engine, make_job(reasoning={"effort": "low"}), final)
    finally:
        await engine.close()
        await store.close()
    reopened = open_store(tmp_path / "db")  # read back anew
    try:
        again = await reopened.get(job.tenant, job.id)
    finally:
        await reopened.close()
    assert stub.requests[0]["reasoning_effort"] == "low"
    for got in (job, again):
        assert got is not None and got.status is Status.COMPLETED and got.output is not None
        assert got.output.text == "Done." and got.output.reasoning == "Think."
        assert got.usage == Usage(8, 3, 1)


def _calls(n: int) -> list[dict[str, Any]]:
    def call(i: int) -> dict[str, Any]:
        tc = {
            "index": i,
            "id": f"up-{i}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": f'{{"n": {i}}}'},
        }
        return {"choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]}

    return [
        *(call(i) for i in range(n)),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9}},
    ]


async def test_max_tool_calls_cuts_an_upstreams_calls(stub: Stub, tmp_path: Path):
    stub.answers = [Answer(events=_calls(3)), Answer(events=_calls(3))]
    store, engine = open_store(tmp_path / "db"), engine_for(stub.url)
    tools = Tools((Tool("get_weather", parameters=SCHEMA),))
    await engine.start()
    try:
        capped = await dispatch(
            store, engine, make_job(tools=Tools(tools.tools, max_calls=2)), final
        )
        free = await dispatch(store, engine, make_job(tools=tools), final)
    finally:
        await engine.close()
        await store.close()
    assert capped.output is not None and [c.id for c in capped.output.calls] == ["up-0", "up-1"]
    assert capped.tools is not None and capped.tools.max_calls == 2  # stored with the job
    assert free.output is not None and len(free.output.calls) == 3
