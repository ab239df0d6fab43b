"""Prefix caching on the default engine: P requests that share a long system prompt (as a team's
requests to one assistant do), with OpenVINO GenAI's prefix cache on (the engine's setting) and off,
in the same run. A shared prompt's KV blocks are computed once and reused, so prefill all but
disappears after the first request.

For each setting: the time until every request has its first token (prefill) when the system
prompt is new (all P prefill it at once: the cache shares only blocks already computed) and, best
of --rounds, when it was seen before; the whole time; prompt tokens per second of prefill.

    .venv/bin/python bench/prefix_cache.py [--parallel 64] [--system-tokens 600] [--tokens 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import openvino_genai as ovg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leeway.catalog import ModelConfig
from leeway.engines.gguf_file import default_model_path, for_openvino
from leeway.engines.openvino import pipeline, template_of
from leeway.jobs import Message

RULES = (
    "You are the support assistant of a company that sells garden tools. Answer politely, "
    "briefly and only about the company's products, orders, deliveries and returns. "
)


def run(pipe: object, prompts: list[object], tokens: int, first: int) -> tuple[float, float]:
    """Seconds until every request has a token, and until all are done."""
    start = time.perf_counter()
    handles = []
    for i, ids in enumerate(prompts):
        config = ovg.GenerationConfig()
        config.max_new_tokens, config.ignore_eos, config.do_sample = tokens, True, False
        handles.append(pipe.add_request(first + i, ids, config))  # type: ignore[attr-defined]
    started: set[int] = set()
    prefill = 0.0
    while pipe.has_non_finished_requests():  # type: ignore[attr-defined]
        pipe.step()  # type: ignore[attr-defined]
        for i, h in enumerate(handles):
            if h.can_read():
                h.read()
                started.add(i)
        if not prefill and len(started) == len(handles):
            prefill = time.perf_counter() - start
    return prefill, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--system-tokens", type=int, default=600, help="about this long")
    parser.add_argument("--tokens", type=int, default=16, help="output tokens per request")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    path = for_openvino(default_model_path())
    config = ModelConfig("prefix", parallel=args.parallel, context=2048, batch_tokens=512)
    rows = []
    for caching in (True, False):
        pipe = pipeline(path, config, prefix_caching=caching)
        tokenizer = pipe.get_tokenizer()
        template = template_of(tokenizer)
        system = RULES * max(1, args.system_tokens // 30)
        prompts = [
            tokenizer.encode(
                template.prompt([Message("system", system), Message("user", f"Question {i}?")])
            ).input_ids
            for i in range(args.parallel)
        ]
        warm_up = tokenizer.encode(template.prompt([Message("user", "Hi")])).input_ids
        run(pipe, [warm_up] * 4, args.tokens, first=99_000)  # the first inference compiles kernels
        # round 0: the system prompt is new (every request prefills it at once: the cache shares
        # only blocks already computed); later rounds: it was seen before (the cache's case)
        times = [run(pipe, prompts, args.tokens, first=r * 10_000) for r in range(args.rounds + 1)]
        cold, warm = times[0], min(times[1:])
        rows.append((caching, prompts[0].get_shape()[1], cold, warm))
        del pipe
    print(f"\n{args.parallel} requests, one shared system prompt, {args.tokens} output tokens each")
    print(
        f"{'prefix cache':>12} {'prompt':>7} {'cold prefill s':>15} {'warm prefill s':>15} "
        f"{'warm prompt tok/s':>18} {'warm total s':>13}"
    )
    for caching, length, cold, warm in rows:
        rate = length * args.parallel / warm[0]
        print(
            f"{'on' if caching else 'off':>12} {length:>7} {cold[0]:>15.2f} {warm[0]:>15.2f} "
            f"{rate:>18.0f} {warm[1]:>13.2f}"
        )
    on, off = rows
    print(f"warm prefill with the cache on takes {on[3][0] / off[3][0]:.3f}x the time it takes off")


if __name__ == "__main__":
    main()
