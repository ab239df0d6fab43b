"""The real llama.cpp engine on SmolLM2-135M: real tokens, continuous batching, caps, cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import pytest_asyncio

from leeway.catalog import ModelConfig
from leeway.engines import Chunk
from leeway.engines.llamacpp import LlamaCppEngine
from leeway.jobs import Finish, Message, Sampling
from leeway.settings import DEFAULT_MODEL
from tests.conftest import make_job

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine():
    e = LlamaCppEngine(ModelConfig(DEFAULT_MODEL, parallel=4, context=256, batch_tokens=128))
    await e.start()
    yield e
    await e.close()


def job_for(engine: LlamaCppEngine, text: str, **sampling):
    messages = (Message("user", text),)
    return make_job(
        model=DEFAULT_MODEL,
        messages=messages,
        sampling=Sampling(**sampling),
        prompt_tokens=engine.count_tokens(messages),
    )


async def run(engine: LlamaCppEngine, job) -> tuple[str, Chunk]:
    parts = []
    async with contextlib.aclosing(engine.generate(job)) as chunks:
        async for chunk in chunks:
            parts.append(chunk.text)
            if chunk.finish:
                return "".join(parts), chunk
    raise AssertionError("no final chunk")


async def test_generates_real_text_greedily_and_deterministically(engine):
    job = job_for(engine, "Name three colors.", max_output_tokens=24, temperature=0)
    text, last = await run(engine, job)
    again, _ = await run(engine, job)
    assert "Red" in text and "Blue" in text and text == again
    assert last.usage.input_tokens == job.prompt_tokens > 5
    assert 0 < last.usage.output_tokens <= 24


async def test_max_output_tokens_caps_exactly(engine):
    job = job_for(engine, "Write a long story about a dragon.", max_output_tokens=7)
    text, last = await run(engine, job)
    assert last.finish is Finish.LENGTH and last.usage.output_tokens == 7 and text


async def test_the_context_bounds_the_output(engine):
    job = job_for(
        engine,
        "Count from one to one thousand in words. " * 18,
        max_output_tokens=1000,
        temperature=0,
    )
    assert 180 < job.prompt_tokens < 256
    _, last = await run(engine, job)
    assert last.finish is Finish.LENGTH
    assert last.usage.input_tokens + last.usage.output_tokens == 256


async def test_more_jobs_than_sequences_all_finish(engine):
    jobs = [
        job_for(engine, f"Tell me a fact about the number {i}.", max_output_tokens=16)
        for i in range(10)
    ]
    results = await asyncio.gather(*(run(engine, j) for j in jobs))
    assert all(last.usage.output_tokens > 0 and text for text, last in results)


async def test_a_cancelled_generation_frees_its_sequence(engine):
    for _ in range(engine.parallel):  # abandon one generation per sequence
        gen = engine.generate(job_for(engine, "Write a poem about the sea.", max_output_tokens=200))
        await anext(gen)
        await gen.aclose()
    jobs = [job_for(engine, "Say hi.", max_output_tokens=4) for _ in range(engine.parallel)]
    results = await asyncio.wait_for(asyncio.gather(*(run(engine, j) for j in jobs)), 60)
    assert len(results) == engine.parallel


async def test_a_prompt_too_long_to_fit_is_counted_over_the_context_without_tokenizing(engine):
    short = (Message("user", "Name three colors."),)
    assert engine.count_tokens(short) == len(engine._tokens(short, None))  # exact when it may fit
    huge = (Message("user", "hello world, " * 80_000),)  # ~1 MB: over a second to tokenize
    fewest = engine.count_tokens(huge)
    assert engine.context < fewest <= len(engine._tokens(huge, None))  # a true lower bound
