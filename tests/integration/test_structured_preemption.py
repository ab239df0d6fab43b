"""On the real engine (OpenVINO, the default): a flex job generating JSON under its grammar yields its sequence to
an asap job half-way, resumes later from the text it had, and its reply still parses and validates."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jsonschema

from leeway.catalog import ModelConfig
from leeway.engines.openvino import OpenVINOEngine
from leeway.jobs import Finish, Message, Sampling, Window
from leeway.pieces import PieceLog
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.policy import PolicyConfig
from leeway.settings import DEFAULT_MODEL
from leeway.store import open_store
from leeway.structured import OutputFormat
from tests.conftest import make_job

STORY = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "story": {"type": "string", "minLength": 300, "maxLength": 400},
        "moral": {"type": "string", "maxLength": 80},
    },
    "required": ["title", "story", "moral"],
    "additionalProperties": False,
}


async def test_a_preempted_json_job_resumes_inside_its_grammar(tmp_path: Path):
    engine = OpenVINOEngine(ModelConfig(DEFAULT_MODEL, parallel=2, context=1024, batch_tokens=128))
    await engine.start()
    store = open_store(tmp_path / "db.sqlite")
    events = PieceLog()
    dispatcher = Dispatcher(
        store,
        [engine],
        events,
        lease_seconds=30,
        poll_seconds=0.05,
        policy=PolicyConfig(flex_reserve=0),
    )

    def job(text: str, window: Window, tokens: int, fmt: OutputFormat | None):
        messages = (Message("user", text),)
        now = time.time()
        return make_job(
            model=DEFAULT_MODEL,
            messages=messages,
            window=window,
            created_at=now,
            deadline=now + (86400 if window is Window.FLEX else 0),
            prompt_tokens=engine.count_tokens(messages),
            sampling=Sampling(tokens, temperature=0),
            output_format=fmt,
        )

    flex = [
        job(f"Write a story about {t} as JSON.", Window.FLEX, 600, OutputFormat(STORY))
        for t in ("a cat", "a ship")
    ]
    try:
        watching = [events.subscribe(j.id)[0] for j in flex]
        for j in flex:
            await store.create(j)
        dispatcher.start()
        for _ in range(1200):  # until both are well inside their JSON
            if all(w.queue.qsize() >= 20 for w in watching):
                break
            await asyncio.sleep(0.05)
        for w in watching:
            w.close()
        urgent = job("Name three colors.", Window.ASAP, 12, None)
        await store.create(urgent)
        dispatcher.wake(urgent)
        ids = [urgent.id, *(j.id for j in flex)]
        for _ in range(2400):
            final = [await store.get("t1", i) for i in ids]
            if all(j.status.is_final for j in final):
                break
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
        await engine.close()
        await store.close()

    _, *done_flex = final
    yielded = [f for f in done_flex if f.partial_tokens > 0]
    assert len(yielded) == 1 and yielded[0].attempts == 1
    y = yielded[0]
    assert y.partial_text.startswith("{") and y.output.text.startswith(y.partial_text)
    for f in done_flex:
        assert f.output.finish is Finish.STOP, f.output.text
        jsonschema.validate(json.loads(f.output.text), STORY)
