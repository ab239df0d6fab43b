"""Time to first token of a streamed `asap` request: through Leeway vs raw llama.cpp, same run.

  idle    Leeway: a streamed chat completion (window asap) against an idle `leeway serve`; time from
          sending it to the first text delta. Raw: prefill the same formatted prompt and sample the
          first token with llama.cpp in this process.
  loaded  The same, while every sequence of the engine runs flex work. Leeway must make room (the
          asap request takes a flex job's place). Raw: the prompt's prefill decoded in one batch
          together with one token for each of the other sequences, as a full engine would.

Median of --rounds for each; ratio = leeway / raw. Targets: idle ≤ 1.2×, loaded ≤ 2×.

    .venv/bin/python bench/streaming.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

from leeway.engines.llama_model import Batch, LlamaModel, Sampler, default_model_path
from leeway.jobs import Message, Sampling
from leeway.settings import DEFAULT_MODEL

PARALLEL, CONTEXT, BATCH = 8, 2048, 512
QUESTION = "Summarise the following notes in one sentence.\n" + " ".join(
    f"Note {i}: the shipment {i} arrived on time and the customer was satisfied." for i in range(24)
)


def leeway_ttft(client: OpenAI) -> float:
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        stream=True,
        metadata={"completion_window": "asap"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            elapsed = time.perf_counter() - start
            stream.close()
            return elapsed
    raise AssertionError("no text streamed")


def fill_with_flex(server: LeewayServer, client: OpenAI) -> list[str]:
    ids = [
        client.responses.create(
            model=DEFAULT_MODEL,
            input=f"Write a very long story ({i}).",
            max_output_tokens=1500,
            background=True,
            metadata={"completion_window": "flex"},
        ).id
        for i in range(PARALLEL)
    ]
    for _ in range(600):
        health = httpx.get(server.base_url.removesuffix("/v1") + "/health").json()
        if health["engines"][DEFAULT_MODEL]["running"] == PARALLEL:
            time.sleep(1.0)  # past their prefill: decoding
            return ids
        time.sleep(0.05)
    raise AssertionError("the engine never filled")


def raw_ttft(llama: LlamaModel, busy: int) -> float:
    """Prefill the prompt (seq 0) in one batch with one decode token for ``busy`` other sequences
    (whose caches hold a short history), then sample: the first token's time on a full engine."""
    prompt = llama.tokenize(llama.prompt([Message("user", QUESTION)]))
    batch, sampler = Batch(BATCH), Sampler(Sampling(1, temperature=0))
    history = llama.tokenize("Once upon a time there was a story.")
    for s in range(1, busy + 1):  # give the other sequences a cache to attend over
        for pos, tok in enumerate(history):
            batch.add(tok, pos, s, False)
    if busy:
        batch.decode(llama)
    start = time.perf_counter()
    for s in range(1, busy + 1):
        batch.add(history[-1], len(history), s, True)
    for pos, tok in enumerate(prompt):
        last = batch.add(tok, pos, 0, pos == len(prompt) - 1)
    batch.decode(llama)
    sampler.sample(llama, last)
    elapsed = time.perf_counter() - start
    for s in range(busy + 1):
        llama.forget(s)
    sampler.close()
    batch.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = (  # no flex reserve: every sequence busy, so the asap request must preempt
        "flex_reserve = 0\n"
        f'[[models]]\nid = "{DEFAULT_MODEL}"\nparallel = {PARALLEL}\ncontext = {CONTEXT}\n'
        f"batch_tokens = {BATCH}\n"
    )
    results: dict[str, tuple[list[float], list[float]]] = {"idle": ([], []), "loaded": ([], [])}
    with tempfile.TemporaryDirectory() as tmp:
        server = LeewayServer(Path(tmp), config).start()
        client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
        llama = LlamaModel(
            default_model_path(), parallel=PARALLEL, context=CONTEXT, batch_tokens=BATCH
        )
        prompt_tokens = len(llama.tokenize(llama.prompt([Message("user", QUESTION)])))
        try:
            leeway_ttft(client)  # warm-up
            for _ in range(args.rounds):
                results["idle"][0].append(leeway_ttft(client))
                results["idle"][1].append(raw_ttft(llama, 0))
            flex = fill_with_flex(server, client)
            for _ in range(args.rounds):
                results["loaded"][0].append(leeway_ttft(client))
            for i in flex:
                client.responses.cancel(i)
            for _ in range(args.rounds):  # raw, with nothing else running in either process
                results["loaded"][1].append(raw_ttft(llama, PARALLEL - 1))
        finally:
            llama.close()
            server.stop()

    print(
        f"\nTTFT, streamed asap chat completion, prompt {prompt_tokens} tokens, engine "
        f"{PARALLEL} sequences, median of {args.rounds}"
    )
    print(f"{'state':>7} {'leeway ms':>10} {'raw ms':>8} {'ratio':>6} {'target':>7}")
    for state, target in (("idle", 1.2), ("loaded", 2.0)):
        lw, raw = (statistics.median(v) * 1000 for v in results[state])
        print(f"{state:>7} {lw:>10.1f} {raw:>8.1f} {lw / raw:>6.2f} {'≤ ' + str(target):>7}")


if __name__ == "__main__":
    main()
