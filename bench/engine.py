"""Engine throughput through Leeway vs raw llama.cpp, in the same run.

For each parallelism P (1, 8, 32 by default):
  leeway  P background Responses requests over HTTP, all submitted at once, polled to completion,
          against a real `leeway serve` (SQLite + the llama.cpp engine); output tokens / time from
          the first submission to the last result stored (read from the server's database, so the
          poll interval does not blur the time).
  raw     the same P prompts decoded with llama.cpp batched decoding in this process (one batch per
          step, greedy), each for exactly as many tokens as Leeway produced for it; tokens / time.
and the ratio leeway/raw. Best of --rounds for each. Greedy sampling on both sides.

    .venv/bin/python bench/engine.py [--parallel 1 8 32] [--tokens 128] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

from leeway.engines.llama_model import Batch, LlamaModel, Sampler, default_model_path
from leeway.jobs import Message, Sampling
from leeway.settings import DEFAULT_MODEL

PARALLEL, CONTEXT, BATCH = 32, 1024, 512
POLL = 1.0  # seconds between polling rounds, as the reference client does
TOPICS = [
    "a dragon",
    "the sea",
    "a robot",
    "a city at night",
    "an old clock",
    "a garden",
    "the moon",
    "a lighthouse",
]


def prompts(n: int) -> list[str]:
    return [
        f"Write a long, detailed story about {TOPICS[i % len(TOPICS)]} (story {i})."
        for i in range(n)
    ]


async def through_leeway(
    server: LeewayServer, texts: list[str], tokens: int
) -> tuple[float, list[int]]:
    async with AsyncOpenAI(base_url=server.base_url, api_key=server.key) as client:
        start = time.time()  # the server stamps completed_at with the same clock
        created = await asyncio.gather(
            *(
                client.responses.create(
                    model=DEFAULT_MODEL,
                    input=t,
                    max_output_tokens=tokens,
                    temperature=0,
                    background=True,
                    metadata={"completion_window": "asap"},
                )
                for t in texts
            )
        )
        done: dict[str, int] = {}
        while len(done) < len(created):
            for r in created:
                if r.id not in done:
                    got = await client.responses.retrieve(r.id)
                    if got.status in ("completed", "incomplete", "failed"):
                        assert got.usage is not None, got.error
                        done[r.id] = got.usage.output_tokens
            await asyncio.sleep(POLL)
    with sqlite3.connect(server.data_dir / "leeway.db") as db:
        marks = ",".join("?" * len(created))
        (last,) = db.execute(
            f"SELECT max(completed_at) FROM jobs WHERE id IN ({marks})", [r.id for r in created]
        ).fetchone()
    return last - start, [done[r.id] for r in created]


def raw_llamacpp(llama: LlamaModel, texts: list[str], lengths: list[int]) -> float:
    """Prefill every prompt, then decode all sequences together, each for its given length."""
    prompts_ = [llama.tokenize(llama.prompt([Message("user", t)])) for t in texts]
    batch = Batch(BATCH)
    samplers = [Sampler(Sampling(1, temperature=0)) for _ in texts]
    start = time.perf_counter()
    last, made = [0] * len(texts), [0] * len(texts)
    pending = [(s, pos) for s, p in enumerate(prompts_) for pos in range(len(p))]
    while pending:  # prefill in batch-sized chunks
        chunk, pending = pending[:BATCH], pending[BATCH:]
        outs = []
        for s, pos in chunk:
            is_last = pos == len(prompts_[s]) - 1
            i = batch.add(prompts_[s][pos], pos, s, is_last)
            if is_last:
                outs.append((s, i))
        batch.decode(llama)
        for s, i in outs:
            last[s], made[s] = samplers[s].sample(llama, i), 1
    while True:
        live = [s for s in range(len(texts)) if made[s] < lengths[s]]
        if not live:
            break
        index = {s: batch.add(last[s], len(prompts_[s]) + made[s] - 1, s, True) for s in live}
        batch.decode(llama)
        for s in live:
            last[s] = samplers[s].sample(llama, index[s])
            made[s] += 1
    elapsed = time.perf_counter() - start
    for s in range(len(texts)):
        llama.forget(s)
        samplers[s].close()
    batch.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--tokens", type=int, default=128, help="max output tokens per request")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    config = (
        f'[[models]]\nid = "{DEFAULT_MODEL}"\nparallel = {PARALLEL}\ncontext = {CONTEXT}\n'
        f"batch_tokens = {BATCH}\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = LeewayServer(Path(tmp), config).start()
        llama = LlamaModel(
            default_model_path(), parallel=PARALLEL, context=CONTEXT, batch_tokens=BATCH
        )
        try:
            asyncio.run(through_leeway(server, prompts(2), 8))  # warm-up
            for p in args.parallel:
                texts = prompts(p)
                best_lw = best_raw = 0.0
                for _ in range(args.rounds):
                    secs, lengths = asyncio.run(through_leeway(server, texts, args.tokens))
                    best_lw = max(best_lw, sum(lengths) / secs)
                    best_raw = max(best_raw, sum(lengths) / raw_llamacpp(llama, texts, lengths))
                rows.append((p, sum(lengths), best_lw, best_raw))
        finally:
            llama.close()
            server.stop()

    print(
        f"\nSmolLM2-135M Q4_1, context {CONTEXT}/seq, batch {BATCH}, greedy, best of {args.rounds}"
    )
    print(f"{'parallel':>8} {'tokens':>7} {'leeway tok/s':>13} {'raw tok/s':>10} {'ratio':>6}")
    for p, n, lw, raw in rows:
        print(f"{p:>8} {n:>7} {lw:>13.1f} {raw:>10.1f} {lw / raw:>6.2f}")


if __name__ == "__main__":
    main()
