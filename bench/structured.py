"""Output tokens/s with a JSON schema versus plain text, through Leeway, in the same run.

Against a real `leeway serve` (SQLite + the llama.cpp engine, 32 sequences): P Responses requests at
once, greedy, each asking for a JSON profile of someone.
  json   with ``text.format`` a JSON schema: every reply is grammar-constrained and ends when its
         value is complete; the tokens each reply took are noted;
  text   the same prompts as plain text, each capped at exactly the tokens its JSON reply took (so
         both runs generate the same lengths);
and the ratio json/text of output tokens per second (target ≥ 0.8). Rounds alternate the order;
the best of --rounds counts for each.

    .venv/bin/python bench/structured.py [--prompts 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

from leeway.settings import DEFAULT_MODEL

CONFIG = f"""
[[models]]
id = "{DEFAULT_MODEL}"
parallel = 32
context = 1024
batch_tokens = 512
"""
PEOPLE = [
    "a baker in Lyon",
    "a pilot from Nairobi",
    "a student in Tokyo",
    "a retired teacher in Lima",
    "a chess player from Oslo",
    "a nurse in Toronto",
    "a painter in Madrid",
    "a farmer near Kyiv",
]
PROFILE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0},
        "city": {"type": "string", "maxLength": 40},
        "occupation": {"type": "string", "maxLength": 40},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 4},
        "bio": {"type": "string", "maxLength": 200},
    },
    "required": ["name", "age", "city", "occupation", "hobbies", "bio"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "name": "profile", "schema": PROFILE, "strict": True}


def prompts(n: int) -> list[str]:
    return [
        f"Write a JSON profile of {PEOPLE[i % len(PEOPLE)]} (person {i}): name, age, city, "
        "occupation, hobbies and a short bio."
        for i in range(n)
    ]


async def run(
    client: AsyncOpenAI, texts: list[str], caps: list[int], structured: bool
) -> tuple[float, list[int]]:
    """Seconds from the first submission to the last reply, and each reply's output tokens."""
    extra: dict[str, Any] = {"text": {"format": FORMAT}} if structured else {}

    async def one(text: str, cap: int) -> int:
        done = await client.responses.create(
            model=DEFAULT_MODEL,
            input=text,
            max_output_tokens=cap,
            temperature=0,
            metadata={"completion_window": "asap"},
            **extra,
        )
        assert done.usage is not None
        if structured and done.incomplete_details is None:
            json.loads(done.output_text)  # every whole reply parses
        return done.usage.output_tokens

    start = time.perf_counter()
    tokens = await asyncio.gather(*(one(t, c) for t, c in zip(texts, caps, strict=True)))
    return time.perf_counter() - start, list(tokens)


async def bench(server: LeewayServer, n: int, rounds: int) -> None:
    texts = prompts(n)
    best: dict[str, tuple[float, int]] = {}
    async with AsyncOpenAI(base_url=server.base_url, api_key=server.key, timeout=600) as client:
        await run(client, texts[:4], [8] * 4, structured=True)  # warm up: grammar, caches
        _, lengths = await run(client, texts, [400] * n, structured=True)
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for structured in order:
                seconds, tokens = await run(client, texts, lengths, structured)
                name = "json" if structured else "text"
                rate = sum(tokens) / seconds
                print(
                    f"  round {r + 1} {name}: {sum(tokens)} tokens in {seconds:.2f} s = {rate:.1f}/s"
                )
                if name not in best or rate > best[name][1] / best[name][0]:
                    best[name] = (seconds, sum(tokens))
    print()
    print(f"{'run':<6}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}")
    for name, (seconds, tokens) in best.items():
        print(f"{name:<6}{tokens:>8}{seconds:>9.2f}{tokens / seconds:>10.1f}")
    json_rate = best["json"][1] / best["json"][0]
    text_rate = best["text"][1] / best["text"][0]
    print(f"\njson/text output tokens/s: {json_rate / text_rate:.2f}  (target ≥ 0.8)")
    print(f"reply lengths (tokens): min {min(lengths)}, max {max(lengths)}, total {sum(lengths)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LeewayServer(Path(tmp), CONFIG).start()
        try:
            asyncio.run(bench(server, args.prompts, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
