"""Grammar-constrained generation on the real engines, OpenVINO (the default) and llama.cpp, on
SmolLM2-135M: every reply parses and validates, calls name allowed tools with valid arguments, and a
job resumed after yielding continues inside its grammar."""

from __future__ import annotations

import asyncio
import contextlib
import json

import jsonschema
import pytest
import pytest_asyncio

from leeway import grammar
from leeway.catalog import EngineConfig, ModelConfig
from leeway.engines import Chunk
from leeway.engines.build import build_engine
from leeway.errors import EngineFailed
from leeway.grammar import calls
from leeway.grammar.residual import Cursor
from leeway.jobs import Finish, Message, Sampling
from leeway.settings import DEFAULT_MODEL
from leeway.structured import OutputFormat, Tool, ToolChoice, ToolKind, Tools
from tests.conftest import make_job

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "age": {"type": "integer", "minimum": 0},
        "city": {"type": "string", "maxLength": 30},
        "languages": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
        "mood": {"enum": ["happy", "sad", "calm"]},
    },
    "required": ["name", "age", "city", "languages", "mood"],
    "additionalProperties": False,
}
WEATHER = Tool(
    "get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 30},
            "unit": {"enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
SEARCH = Tool("search", kind=ToolKind.CUSTOM, description="Searches the web for a query")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["openvino", "llamacpp"])
async def engine(request):
    model = ModelConfig(DEFAULT_MODEL, parallel=8, context=512, batch_tokens=256)
    e = build_engine(EngineConfig(request.param, DEFAULT_MODEL), model)
    await e.start()
    yield e
    await e.close()


def job_for(engine, text: str, tokens: int = 120, temperature: float = 1.0, **fields):
    messages = (Message("user", text),)
    return make_job(
        model=DEFAULT_MODEL,
        messages=messages,
        sampling=Sampling(tokens, temperature=temperature, seed=fields.pop("seed", None)),
        prompt_tokens=engine.count_tokens(messages, fields.get("tools")),
        **fields,
    )


async def run(engine, job) -> tuple[str, Chunk]:
    parts = []
    async with contextlib.aclosing(engine.generate(job)) as chunks:
        async for chunk in chunks:
            parts.append(chunk.text)
            if chunk.finish:
                return "".join(parts), chunk
    raise AssertionError("no final chunk")


class Follower:
    """Text through a grammar as the engine follows it: llama.cpp's grammar sampler token by
    token; for OpenVINO, the cursor a resumed job's grammar is built from."""

    def __init__(self, engine, fmt=None, tools=None) -> None:
        built = grammar.build(fmt, tools)
        self.engine, self.closed = engine, built.closed
        if hasattr(engine, "_grammars"):
            self.constraint = engine._grammars.constraint(built.text, built.closed)
        else:
            self.cursor = Cursor(built.text)

    def replay(self, text: str) -> None:
        if hasattr(self, "constraint"):
            self.constraint.replay(self.engine.tokenize(text))
        else:
            self.cursor.feed(text)

    def complete(self) -> bool:
        if hasattr(self, "constraint"):
            return self.constraint.complete()
        return self.closed and self.cursor.complete()

    def close(self) -> None:
        if hasattr(self, "constraint"):
            self.constraint.close()


def constraint(engine, fmt=None, tools=None) -> Follower:
    return Follower(engine, fmt, tools)


async def test_the_grammar_accepts_instances_and_refuses_the_rest(engine):
    good = [
        '{"name":"Ann","age":31,"city":"Oslo","languages":["no","en"],"mood":"calm"}',
        '{\n  "name": "Bo",\n  "age": 0,\n  "city": "Rome",\n  "languages": [],\n  "mood": "sad"\n}',
    ]
    bad = [
        '{"name":"Ann","age":-1,"city":"Oslo","languages":[],"mood":"calm"}',  # minimum 0
        '{"name":"Ann","age":3,"city":"Oslo","languages":[],"mood":"angry"}',  # not in the enum
        '{"name":"Ann","age":3,"city":"Oslo","languages":["a","b","c","d"],"mood":"calm"}',
        '{"name":"Ann","age":3,"city":"Oslo","languages":[],"mood":"calm","x":1}',
        '{"name":"Ann\nB","age":3,"city":"Oslo","languages":[],"mood":"calm"}',  # raw newline
        'Sure! {"name":"Ann"}',
    ]
    for text in good:
        c = constraint(engine, OutputFormat(PERSON))
        c.replay(text)
        assert c.complete()
        c.close()
    for text in bad:
        c = constraint(engine, OutputFormat(PERSON))
        with pytest.raises(RuntimeError):
            c.replay(text)
        c.close()
    c = constraint(engine, OutputFormat(PERSON))
    c.replay(good[0][:-1])
    assert not c.complete()  # the closing brace is still to come
    c.close()


PROMPTS = [
    f"Describe {who} as JSON: name, age, city, languages and mood."
    for who in (
        "a baker in Lyon",
        "a pilot from Nairobi",
        "a student in Tokyo",
        "a retired teacher in Lima",
        "a chess player from Oslo",
        "a nurse in Toronto",
        "a painter in Madrid",
        "a farmer near Kyiv",
        "a programmer in Berlin",
        "a singer from Lagos",
    )
]


async def test_every_constrained_reply_parses_and_validates(engine):
    jobs = [
        job_for(engine, p, 250, t, output_format=OutputFormat(PERSON), seed=i)
        for i, p in enumerate(PROMPTS)
        for t in (0.0, 0.7)
    ]
    results = await asyncio.gather(*(run(engine, j) for j in jobs))
    for text, last in results:
        assert last.finish is Finish.STOP, text
        jsonschema.validate(json.loads(text), PERSON)
        assert text.endswith("}")  # generation ended with the value: no trailing whitespace


async def test_required_and_forced_tools_make_valid_calls(engine):
    choices = [
        Tools((WEATHER, SEARCH), ToolChoice.REQUIRED),
        Tools((WEATHER, SEARCH), ToolChoice.REQUIRED, only="search"),
        Tools((WEATHER, SEARCH), ToolChoice.REQUIRED, only="get_weather", parallel=False),
    ]
    jobs = [
        job_for(engine, "What is the weather in Paris?", tools=t, temperature=0) for t in choices
    ]
    for tools, (text, last) in zip(
        choices, await asyncio.gather(*(run(engine, j) for j in jobs)), strict=True
    ):
        reply = calls.Reply(text, last.calls)  # the calls, read by the engine from its markup
        assert last.finish is Finish.STOP and reply.text == "" and reply.calls, text
        for call in reply.calls:
            assert tools.only in (None, call.name)
            if call.name == "get_weather":
                jsonschema.validate(json.loads(call.arguments), WEATHER.parameters)


async def test_none_never_calls_and_auto_may(engine):
    never = Tools((WEATHER,), ToolChoice.NONE)
    auto = Tools((WEATHER,), ToolChoice.AUTO)
    jobs = [job_for(engine, "Call get_weather for Paris.", tools=never, tokens=60)]
    jobs += [
        job_for(engine, "What is the weather in Paris?", tools=auto, tokens=80, seed=i)
        for i in range(4)
    ]
    (text, last), *autos = await asyncio.gather(*(run(engine, j) for j in jobs))
    assert calls.OPEN not in text and last.calls == ()
    for text, last in autos:
        assert calls.OPEN not in text  # the call markup is never shown as text
        if last.finish is Finish.STOP:  # whatever it chose, its calls are valid
            for call in last.calls:
                assert call.name == "get_weather" and call.id.startswith("call_")
                jsonschema.validate(json.loads(call.arguments), WEATHER.parameters)


async def test_a_resumed_job_continues_inside_its_grammar(engine):
    job = job_for(engine, PROMPTS[0], output_format=OutputFormat(PERSON), temperature=0)
    whole, _ = await run(engine, job)
    cut = whole[: len(whole) // 2]
    resumed = job_for(
        engine,
        PROMPTS[0],
        output_format=OutputFormat(PERSON),
        temperature=0,
        partial_text=cut,
        partial_tokens=len(engine.tokenize(cut)),
    )
    rest, last = await run(engine, resumed)
    assert last.finish is Finish.STOP
    jsonschema.validate(json.loads(cut + rest), PERSON)


async def test_text_that_left_the_grammar_fails_the_job_instead_of_the_engine(engine):
    broken = job_for(
        engine,
        PROMPTS[0],
        output_format=OutputFormat(PERSON),
        partial_text="Hello",
        partial_tokens=1,
    )
    with pytest.raises(EngineFailed, match="does not match the grammar"):
        await run(engine, broken)
    text, last = await run(engine, job_for(engine, "Name three colors.", tokens=8))
    assert last.usage.output_tokens > 0 and text  # the engine still runs
