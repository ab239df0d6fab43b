"""The real OpenVINO engine on SmolLM2-135M (its Q8_0 copy): real tokens, continuous batching, caps,
stop strings, sampling, cancellation, and a resumed job that continues its text."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import pytest_asyncio

from leeway.catalog import ModelConfig
from leeway.engines import Chunk
from leeway.engines.openvino import OpenVINOEngine
from leeway.engines.openvino_worker import LANE
from leeway.jobs import Finish, Message, Sampling
from leeway.settings import DEFAULT_MODEL
from tests.conftest import make_job

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine():
    e = OpenVINOEngine(ModelConfig(DEFAULT_MODEL, parallel=4, context=256, batch_tokens=128))
    await e.start()
    yield e
    await e.close()


def job_for(engine: OpenVINOEngine, text: str, **fields):
    messages = (Message("user", text),)
    sampling = {k: fields.pop(k) for k in list(fields) if k in Sampling.__dataclass_fields__}
    return make_job(
        model=DEFAULT_MODEL,
        messages=messages,
        sampling=Sampling(**sampling),
        prompt_tokens=engine.count_tokens(messages),
        **fields,
    )


async def run(engine: OpenVINOEngine, job) -> tuple[str, Chunk, list[Chunk]]:
    chunks = []
    async with contextlib.aclosing(engine.generate(job)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            if chunk.finish:
                return "".join(c.text for c in chunks), chunk, chunks
    raise AssertionError("no final chunk")


async def test_generates_real_text_greedily_and_deterministically(engine):
    job = job_for(engine, "Name three colors.", max_output_tokens=24, temperature=0)
    text, last, chunks = await run(engine, job)
    again, _, _ = await run(engine, job)
    assert "Red" in text and "Blue" in text and text == again
    assert last.usage.input_tokens == job.prompt_tokens > 5
    assert 0 < last.usage.output_tokens <= 24
    assert len(chunks) > 3  # streamed as generated, not in one piece at the end


async def test_max_output_tokens_caps_exactly(engine):
    job = job_for(engine, "Write a long story about a dragon.", max_output_tokens=7)
    text, last, _ = await run(engine, job)
    assert last.finish is Finish.LENGTH and last.usage.output_tokens == 7 and text


async def test_the_context_bounds_the_output(engine):
    job = job_for(
        engine,
        "Count from one to one thousand in words. " * 18,
        max_output_tokens=1000,
        temperature=0,
    )
    assert 180 < job.prompt_tokens < 256
    _, last, _ = await run(engine, job)
    assert last.finish is Finish.LENGTH
    assert last.usage.input_tokens + last.usage.output_tokens == 256


async def test_a_stop_string_ends_the_reply_and_no_part_of_it_is_streamed(engine):
    plain = job_for(engine, "Name three colors.", max_output_tokens=24, temperature=0)
    whole, _, _ = await run(engine, plain)
    stop = whole[whole.index("Blue") : whole.index("Blue") + 3]  # "Blu": spans a token's end
    job = job_for(engine, "Name three colors.", max_output_tokens=24, temperature=0, stop=(stop,))
    text, last, chunks = await run(engine, job)
    assert text == whole[: whole.index(stop)]
    assert last.finish is Finish.STOP and last.stop_sequence == stop
    assert not any("Bl" in c.text for c in chunks)
    assert last.usage.output_tokens < 24


async def test_temperature_samples_and_zero_is_greedy(engine):
    # OpenVINO's continuous-batching sampler draws from one generator for every request, so a
    # request's ``seed`` does not make its sampling repeatable (best effort, as on OpenAI)
    sampled = [job_for(engine, "Invent a name for a cat.", max_output_tokens=16) for _ in range(4)]
    greedy = [
        job_for(engine, "Invent a name for a cat.", max_output_tokens=16, temperature=0)
        for _ in range(2)
    ]
    texts = [t for t, _, _ in await asyncio.gather(*(run(engine, j) for j in sampled + greedy))]
    assert len(set(texts[:4])) > 1 and texts[4] == texts[5]


async def test_more_jobs_than_sequences_all_finish(engine):
    jobs = [
        job_for(engine, f"Tell me a fact about the number {i}.", max_output_tokens=16)
        for i in range(10)
    ]
    results = await asyncio.gather(*(run(engine, j) for j in jobs))
    assert all(last.usage.output_tokens > 0 and text for text, last, _ in results)


async def test_a_cancelled_generation_frees_its_sequence(engine):
    for _ in range(engine.parallel):  # abandon one generation per sequence
        gen = engine.generate(job_for(engine, "Write a poem about the sea.", max_output_tokens=200))
        await anext(gen)
        await gen.aclose()
    jobs = [job_for(engine, "Say hi.", max_output_tokens=4) for _ in range(engine.parallel)]
    results = await asyncio.wait_for(asyncio.gather(*(run(engine, j) for j in jobs)), 60)
    assert len(results) == engine.parallel


async def test_a_resumed_job_continues_its_text_and_bills_each_token_once(engine):
    job = job_for(engine, "Write a story about a fox.", max_output_tokens=40, temperature=0)
    whole, first, _ = await run(engine, job)
    cut = whole[: len(whole) // 2]
    done = len(engine.tokenize(cut))
    resumed = job_for(
        engine,
        "Write a story about a fox.",
        max_output_tokens=40,
        temperature=0,
        partial_text=cut,
        partial_tokens=done,
    )
    rest, last, _ = await run(engine, resumed)
    assert rest and not rest.startswith(cut)  # it goes on from where it stopped
    assert last.finish is Finish.LENGTH and last.usage.output_tokens == 40
    assert last.usage.input_tokens == first.usage.input_tokens


async def test_closing_with_generations_running_leaves_no_kv_block_held(capfd):
    # the decode process drops what it was generating before it exits: OpenVINO reports any KV
    # cache block still held when its pipeline goes ("BlockManager leaked sequence block tables")
    other = OpenVINOEngine(ModelConfig(DEFAULT_MODEL, parallel=2, context=256, batch_tokens=64))
    await other.start()
    prompt = "Write a poem about the sea."
    gens = [other.generate(job_for(other, prompt, max_output_tokens=200)) for _ in range(2)]
    for gen in gens:
        await anext(gen)
    await gens[0].aclose()  # one cancelled just before the close, one still generating
    await other.close()
    with contextlib.suppress(Exception):
        await gens[1].aclose()
    err = capfd.readouterr().err
    assert "leaked" not in err, err


async def test_a_bf16_engine_moves_its_lone_request_from_the_lane_without_losing_a_token(capfd):
    # an engine of 64 sequences decodes in bf16, with an f32 lane for a few requests while nothing
    # else runs: the lone request starts there and moves when more arrive, continuing its text
    big = OpenVINOEngine(ModelConfig(DEFAULT_MODEL, parallel=64, context=256, batch_tokens=128))
    await big.start()
    try:
        prompt = "Write a long story about a dragon."
        first = big.generate(job_for(big, prompt, max_output_tokens=40, temperature=0))
        chunks = [await anext(first) for _ in range(8)]  # it runs, alone, in the lane
        start = "".join(c.text for c in chunks)
        others = [
            job_for(big, f"Write a long story about a city ({i}).", max_output_tokens=16)
            for i in range(LANE + 2)  # more than the lane takes: everything moves
        ]
        results = asyncio.gather(*(run(big, j) for j in others))
        async for chunk in first:
            chunks.append(chunk)
        assert chunks[-1].finish is Finish.LENGTH and chunks[-1].usage.output_tokens == 40
        text = "".join(c.text for c in chunks)
        assert len(start) > 20 and text.count(start) == 1  # it went on, it did not start again
        for text, last, _ in await results:
            assert text and last.finish is Finish.LENGTH and last.usage.output_tokens == 16
    finally:
        await big.close()
    err = capfd.readouterr().err
    assert "leaked" not in err, err
