"""Engine throughput: Leeway end to end vs raw OpenVINO GenAI (the default engine) vs raw llama.cpp
on the shipped Q4_1 GGUF (the engine it replaced), in the same run.

For each parallelism P (1, 16, 64, 128 by default), best of --rounds (with the spread):
  leeway    P Responses requests over HTTP, all sent at once, each answered when done (--poll: in
            background, polled once a second to completion, as the reference's client does),
            against a real `leeway serve` (SQLite + the default OpenVINO engine, parallel = the
            largest P); output tokens / time from the first submission to the last result stored
            (read from the server's database, so the poll interval does not blur the time).
  openvino  the same P prompts through OpenVINO GenAI's continuous-batching pipeline in this
            process (the engine's own settings, Q8_0 copy of the GGUF), greedy, each for exactly
            as many tokens as Leeway produced for it (EOS ignored); tokens / time.
  llamacpp  the same through llama.cpp batched decoding (one batch per step, greedy) on the Q4_1
            file the wheel ships; tokens / time.

    .venv/bin/python bench/engine.py [--parallel 1 16 64 128] [--tokens 128] [--rounds 3]
        [--threads N] [--batch-tokens 512] [--skip-llamacpp] [--skip-leeway] [--poll]
        [--ov-properties '{"KV_CACHE_PRECISION": "f16", "INFERENCE_PRECISION_HINT": "f32"}']
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openvino_genai as ovg
from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

from leeway.catalog import ModelConfig
from leeway.engines.gguf_file import default_model_path, for_openvino
from leeway.engines.openvino import pipeline, template_of
from leeway.engines.openvino_worker import LANE, lane_config
from leeway.jobs import Message
from leeway.settings import DEFAULT_MODEL

CONTEXT = 1024
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
    server: LeewayServer, texts: list[str], tokens: int, poll: bool
) -> tuple[float, list[int]]:
    async with AsyncOpenAI(base_url=server.base_url, api_key=server.key, timeout=600) as client:
        start = time.time()  # the server stamps completed_at with the same clock
        created = await asyncio.gather(
            *(
                client.responses.create(
                    model=DEFAULT_MODEL,
                    input=t,
                    max_output_tokens=tokens,
                    temperature=0,
                    background=poll,
                    metadata={"completion_window": "asap"},
                )
                for t in texts
            )
        )
        done: dict[str, int] = {}
        for r in created:
            if r.status in ("completed", "incomplete", "failed"):
                assert r.usage is not None, r.error
                done[r.id] = r.usage.output_tokens
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


class RawOpenVINO:
    """The pipelines the engine runs, driven directly: add every request, step until done. As in
    the engine, a bf16 engine's f32 lane runs up to LANE requests when they are all there is."""

    def __init__(self, config: ModelConfig, properties: dict[str, object]) -> None:
        path = for_openvino(default_model_path())
        self.pipe = pipeline(path, config, properties=properties)
        lane = None if properties else lane_config(config)
        self.lane = pipeline(path, lane) if lane is not None else None
        self.tokenizer = self.pipe.get_tokenizer()
        self.template = template_of(self.tokenizer)
        self.requests = 0

    def run(self, texts: list[str], lengths: list[int]) -> float:
        ids = [
            self.tokenizer.encode(self.template.prompt([Message("user", t)])).input_ids
            for t in texts
        ]
        pipe = self.lane if self.lane is not None and len(texts) <= LANE else self.pipe
        start = time.perf_counter()
        handles = []
        for prompt, n in zip(ids, lengths, strict=True):
            config = ovg.GenerationConfig()
            config.max_new_tokens, config.ignore_eos, config.do_sample = n, True, False
            handles.append(pipe.add_request(self.requests, prompt, config))
            self.requests += 1
        while pipe.has_non_finished_requests():
            pipe.step()
            for h in handles:
                if h.can_read():
                    h.read()
        return time.perf_counter() - start


class RawLlamaCpp:
    """llama.cpp batched decoding on the shipped Q4_1 file: prefill, then one batch per step."""

    def __init__(self, parallel: int, batch: int, threads: int | None) -> None:
        from leeway.engines.llama_model import Batch, LlamaModel, Sampler

        self.llama = LlamaModel(
            default_model_path(),
            parallel=parallel,
            context=CONTEXT,
            batch_tokens=batch,
            threads=threads,
        )
        self.batch, self.sampler = Batch(batch), Sampler

    def run(self, texts: list[str], lengths: list[int]) -> float:
        from leeway.jobs import Sampling

        llama, batch = self.llama, self.batch
        prompts_ = [llama.tokenize(llama.prompt([Message("user", t)])) for t in texts]
        samplers = [self.sampler(Sampling(1, temperature=0)) for _ in texts]
        start = time.perf_counter()
        last, made = [0] * len(texts), [0] * len(texts)
        pending = [(s, pos) for s, p in enumerate(prompts_) for pos in range(len(p))]
        while pending:  # prefill in batch-sized chunks
            chunk, pending = pending[: batch.size], pending[batch.size :]
            outs = []
            for s, pos in chunk:
                is_last = pos == len(prompts_[s]) - 1
                i = batch.add(prompts_[s][pos], pos, s, is_last)
                if is_last:
                    outs.append((s, i))
            batch.decode(llama)
            for s, i in outs:
                last[s], made[s] = samplers[s].sample(llama, i), 1
        while live := [s for s in range(len(texts)) if made[s] < lengths[s]]:
            index = {s: batch.add(last[s], len(prompts_[s]) + made[s] - 1, s, True) for s in live}
            batch.decode(llama)
            for s in live:
                last[s] = samplers[s].sample(llama, index[s])
                made[s] += 1
        elapsed = time.perf_counter() - start
        for s in range(len(texts)):
            llama.forget(s)
            samplers[s].close()
        return elapsed


def spread(rates: list[float]) -> str:
    if not rates:
        return "-"
    return f"{max(rates):7.1f} ({min(rates):.0f}-{max(rates):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 16, 64, 128])
    parser.add_argument("--tokens", type=int, default=128, help="max output tokens per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="engine threads (all cores)")
    parser.add_argument("--batch-tokens", type=int, default=512)
    parser.add_argument("--skip-llamacpp", action="store_true")
    parser.add_argument("--skip-leeway", action="store_true")
    parser.add_argument("--poll", action="store_true", help="leeway: background requests, polled")
    parser.add_argument(
        "--ov-properties",
        type=json.loads,
        default={},
        help='raw OpenVINO only: CPU plugin properties, e.g. \'{"KV_CACHE_PRECISION": "f16"}\'',
    )
    args = parser.parse_args()

    parallel = max(args.parallel)
    threads = f"threads = {args.threads}\n" if args.threads else ""
    config = (
        f'[[models]]\nid = "{DEFAULT_MODEL}"\nparallel = {parallel}\ncontext = {CONTEXT}\n'
        f"batch_tokens = {args.batch_tokens}\n{threads}"
    )
    model = ModelConfig(
        DEFAULT_MODEL,
        parallel=parallel,
        context=CONTEXT,
        batch_tokens=args.batch_tokens,
        threads=args.threads,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.skip_leeway else LeewayServer(Path(tmp), config).start(timeout=300)
        raw_ov = RawOpenVINO(model, args.ov_properties)
        raw_ll = (
            None
            if args.skip_llamacpp
            else RawLlamaCpp(parallel, max(args.batch_tokens, parallel), args.threads)
        )
        try:
            if server is not None:
                asyncio.run(through_leeway(server, prompts(2), 8, args.poll))  # warm-up
            raw_ov.run(prompts(2), [8, 8])
            for p in args.parallel:
                texts = prompts(p)
                rates: dict[str, list[float]] = {"leeway": [], "openvino": [], "llamacpp": []}
                for _ in range(args.rounds):
                    lengths = [args.tokens] * p
                    if server is not None:
                        secs, lengths = asyncio.run(
                            through_leeway(server, texts, args.tokens, args.poll)
                        )
                        rates["leeway"].append(sum(lengths) / secs)
                    runs: list[tuple[str, Callable[[list[str], list[int]], float]]] = [
                        ("openvino", raw_ov.run)
                    ]
                    if raw_ll is not None:
                        runs.append(("llamacpp", raw_ll.run))
                    for name, run in runs:
                        rates[name].append(sum(lengths) / run(texts, lengths))
                rows.append((p, sum(lengths), rates))
                print(
                    f"P={p}: " + ", ".join(f"{k} {spread(v)}" for k, v in rates.items()), flush=True
                )
        finally:
            if server is not None:
                server.stop()
    report(rows, args)


def report(rows: list[tuple[int, int, dict[str, list[float]]]], args: argparse.Namespace) -> None:
    print(
        f"\nSmolLM2-135M, context {CONTEXT}/seq, batch {args.batch_tokens} tokens, greedy, "
        f"{args.tokens} output tokens, best of {args.rounds} (min-max), tok/s"
        + (f", raw OpenVINO with {args.ov_properties}" if args.ov_properties else "")
    )
    print(
        f"{'P':>4} {'tokens':>7} {'leeway':>18} {'openvino':>18} {'llamacpp Q4_1':>18} "
        f"{'ov/llama':>9} {'leeway/ov':>10} {'leeway/llama':>13}"
    )
    for p, n, r in rows:
        best = {k: max(v) if v else float("nan") for k, v in r.items()}
        print(
            f"{p:>4} {n:>7} {spread(r['leeway']):>18} {spread(r['openvino']):>18} "
            f"{spread(r['llamacpp']):>18} {best['openvino'] / best['llamacpp']:>9.2f} "
            f"{best['leeway'] / best['openvino']:>10.2f} {best['leeway'] / best['llamacpp']:>13.2f}"
        )
    print(
        f"(median openvino at each P: {[round(statistics.median(r['openvino'])) for *_, r in rows]})"
    )


if __name__ == "__main__":
    main()
