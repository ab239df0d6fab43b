"""On the real engine (OpenVINO, the default): with flex jobs filling every sequence, an asap request submitted
later finishes first, and the flex job that yielded still completes with correct usage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from leeway.catalog import ModelConfig
from leeway.engines.openvino import OpenVINOEngine
from leeway.jobs import Finish, Message, Sampling, Status, Window
from leeway.pieces import PieceLog
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.policy import PolicyConfig
from leeway.settings import DEFAULT_MODEL
from leeway.store import open_store
from tests.conftest import make_job


async def test_asap_preempts_flex_on_the_real_engine(tmp_path: Path):
    engine = OpenVINOEngine(ModelConfig(DEFAULT_MODEL, parallel=2, context=512, batch_tokens=128))
    await engine.start()
    store = open_store(tmp_path / "db.sqlite")
    events = PieceLog()
    dispatcher = Dispatcher(
        store,
        [engine],
        events,
        lease_seconds=30,
        poll_seconds=0.05,
        policy=PolicyConfig(flex_reserve=0),  # flex may fill every sequence: asap must preempt
    )

    def job(text: str, window: Window, max_tokens: int):
        messages = (Message("user", text),)
        now = time.time()
        return make_job(
            model=DEFAULT_MODEL,
            messages=messages,
            window=window,
            created_at=now,
            deadline=now + (86400 if window is Window.FLEX else 0),
            prompt_tokens=engine.count_tokens(messages),
            sampling=Sampling(max_tokens, temperature=0),
        )

    flex = [job(f"Write a long story about {t}.", Window.FLEX, 160) for t in ("a cat", "a ship")]
    try:
        watching = [events.subscribe(j.id)[0] for j in flex]
        for j in flex:
            await store.create(j)
        dispatcher.start()
        for _ in range(1200):  # until both have streamed some text
            if all(w.queue.qsize() >= 3 for w in watching):
                break
            await asyncio.sleep(0.05)
        for w in watching:
            w.close()
        urgent = job("Name three colors.", Window.ASAP, 12)
        await store.create(urgent)
        dispatcher.wake(urgent)
        ids = [urgent.id, *(j.id for j in flex)]
        for _ in range(1200):
            final = [await store.get("t1", i) for i in ids]
            if all(j.status.is_final for j in final):
                break
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
        await engine.close()
        await store.close()

    done_urgent, *done_flex = final
    assert done_urgent.status is Status.COMPLETED or done_urgent.status is Status.INCOMPLETE
    assert all(done_urgent.completed_at < f.completed_at for f in done_flex)
    yielded = [f for f in done_flex if f.partial_tokens > 0]
    assert len(yielded) == 1 and yielded[0].attempts == 1
    y = yielded[0]
    # the text generated before yielding is kept, and usage counts each output token once
    assert y.output.text.startswith(y.partial_text) and len(y.output.text) > len(y.partial_text)
    assert y.usage.input_tokens == y.prompt_tokens
    if y.output.finish is Finish.LENGTH:
        assert y.usage.output_tokens == 160
    assert y.partial_tokens < y.usage.output_tokens <= 160
