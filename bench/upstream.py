"""Leeway in front of vLLM against vLLM direct: the same workload, in the same run.

One vLLM server (the CPU build from ``.venv-vllm``, SmolLM2, ``--max-num-seqs`` = the largest
concurrency) serves three ways of reaching it:

  direct  clients stream chat completions straight from vLLM
  leeway  the same requests through one ``leeway serve`` (SQLite) whose only engine is that vLLM
          (``[[engines]] kind = "openai"``, ``flavor = "vllm"``, ``parallel`` = max-num-seqs)
  fleet   through two ``leeway serve --role api`` processes and one ``--role dispatcher`` sharing a
          throwaway PostgreSQL on loopback; clients alternate between the two API processes

At each concurrency C, C clients each send streamed chat completions (temperature 0, ``max_tokens``
--tokens, prompts from one list) until --requests-per-client x C are done. Reported per mode:
output tokens/s (completion tokens from the streams' usage / wall time) and the time to first token
(send → first text delta) at p50 and p99; for the Leeway modes, the tokens/s ratio to direct
(target ≥ 0.9) and the TTFT they add (p50, p99 differences). Each round runs the modes in a
rotated order; the table gives the median over rounds and the spread (min–max).

Everything runs on this machine: on 2 cores, Leeway's processes and the clients take CPU from vLLM
itself (on a real fleet, Leeway runs beside GPU servers, not on them).

    make bench-upstream                     # installs .venv-vllm and the model if need be
    .venv/bin/python bench/upstream.py --rounds 3 --concurrency 16 64 128 --tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer
from tests.pg import PgServer
from tests.vllm.server import API_KEY, MODEL, VllmServer

KEY_ENV = "LEEWAY_BENCH_VLLM_KEY"
PROMPTS = [
    f"Write a very long essay about {topic}."
    for topic in ("the history of Rome", "the oceans", "bread", "trains", "the moon", "music")
]
MODES = ("direct", "leeway", "fleet")


@dataclass
class Run:
    tokens: int
    seconds: float
    ttft: list[float]

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


@dataclass
class Target:
    urls: list[str]  # chat completion URLs; clients alternate between them
    key: str


def config(vllm: VllmServer, parallel: int) -> str:
    return f"""
[[models]]
id = "{MODEL}"
context = 2048
parallel = {parallel}

[[engines]]
kind = "openai"
model = "{MODEL}"
id = "vllm-1"
url = "{vllm.url}"
flavor = "vllm"
api_key_env = "{KEY_ENV}"
parallel = {parallel}
"""


async def request(session: aiohttp.ClientSession, url: str, key: str, n: int, tokens: int):  # type: ignore[no-untyped-def]
    """One streamed chat completion: (completion tokens, seconds to the first text)."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPTS[n % len(PROMPTS)]}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {key}"}
    start, first, generated = time.perf_counter(), None, 0
    async with session.post(url, json=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {await resp.text()}")
        async for raw in resp.content:
            line = raw.strip()
            if not line.startswith(b"data:") or line == b"data: [DONE]":
                continue
            event = orjson.loads(line[5:])
            if first is None and any(
                (c.get("delta") or {}).get("content") for c in event["choices"]
            ):
                first = time.perf_counter() - start
            if event.get("usage"):
                generated = event["usage"]["completion_tokens"]
    return generated, first if first is not None else time.perf_counter() - start


async def drive(target: Target, concurrency: int, total: int, tokens: int) -> Run:
    numbers = itertools.count()
    ttft: list[float] = []
    generated = 0

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal generated
        url = target.urls[i % len(target.urls)]
        while (n := next(numbers)) < total:
            got, first = await request(session, url, target.key, n, tokens)
            generated += got
            ttft.append(first)

    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(i, session) for i in range(concurrency)))
        return Run(generated, time.perf_counter() - start, ttft)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def targets(vllm: VllmServer, root: Path, parallel: int) -> Iterator[dict[str, Target]]:
    os.environ[KEY_ENV] = API_KEY
    single = LeewayServer(root / "leeway", config(vllm, parallel))
    pg = PgServer.start()
    fleet: list[LeewayServer] = []
    try:
        single.start()
        env = {"LEEWAY_STORE_URL": pg.create_database()}
        for i, role in enumerate(("api", "api", "dispatcher")):
            server = LeewayServer(
                root / f"{role}-{i}", config(vllm, parallel), ("--role", role), env
            )
            fleet.append(server.start())
        yield {
            "direct": Target([f"{vllm.url}/v1/chat/completions"], API_KEY),
            "leeway": Target([f"{single.base_url}/chat/completions"], single.key),
            "fleet": Target([f"{s.base_url}/chat/completions" for s in fleet[:2]], fleet[0].key),
        }
    finally:
        for server in (single, *fleet):
            server.stop()
        pg.stop()


def measure(
    targets: dict[str, Target], levels: list[int], rounds: int, per_client: int, tokens: int
) -> dict[tuple[int, str], list[Run]]:
    runs: dict[tuple[int, str], list[Run]] = {}
    for name, target in targets.items():  # warm up: connections, caches, vLLM's first requests
        asyncio.run(drive(target, 4, 8, 8))
        print(f"warmed up: {name}", flush=True)
    for r in range(rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        for c in levels:
            for mode in order:
                run = asyncio.run(drive(targets[mode], c, per_client * c, tokens))
                runs.setdefault((c, mode), []).append(run)
                print(
                    f"round {r + 1}  C={c:<4} {mode:<7} {run.rate:7.1f} tok/s  "
                    f"ttft p50 {pct(run.ttft, 0.5) * 1000:6.0f} ms  p99 {pct(run.ttft, 0.99) * 1000:6.0f} ms",
                    flush=True,
                )
    return runs


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    mid = fmt(statistics.median(values))
    return mid if len(values) == 1 else f"{mid} ({fmt(min(values))}–{fmt(max(values))})"


def table(runs: dict[tuple[int, str], list[Run]], levels: list[int]) -> str:
    rows = [
        "| C | mode | tokens/s | ratio to direct | TTFT p50 ms | TTFT p99 ms | added p50 ms | added p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in levels:
        direct = runs[(c, "direct")]
        for mode in MODES:
            mine = runs[(c, mode)]
            p50 = [pct(x.ttft, 0.5) * 1000 for x in mine]
            p99 = [pct(x.ttft, 0.99) * 1000 for x in mine]
            cells = [str(c), mode, spread([x.rate for x in mine], lambda v: f"{v:.0f}")]
            if mode == "direct":
                cells += ["1", spread(p50, _ms), spread(p99, _ms), "", ""]
            else:  # paired by round: each ratio and difference against the same round's direct
                ratio = [m.rate / d.rate for m, d in zip(mine, direct, strict=True)]
                add50 = [a - pct(d.ttft, 0.5) * 1000 for a, d in zip(p50, direct, strict=True)]
                add99 = [a - pct(d.ttft, 0.99) * 1000 for a, d in zip(p99, direct, strict=True)]
                cells += [
                    spread(ratio, lambda v: f"{v:.2f}"),
                    spread(p50, _ms),
                    spread(p99, _ms),
                    spread(add50, _ms),
                    spread(add99, _ms),
                ]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _ms(v: float) -> str:
    return f"{v:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", type=Path, default=Path(".venv-vllm/bin/python"))
    parser.add_argument("--vllm-model", type=Path, default=Path(".venv-vllm/model"))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens of each request")
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if PgServer.find() is None:
        sys.exit(
            "PostgreSQL is not installed (the fleet mode needs it): apt-get install postgresql"
        )
    levels = sorted(args.concurrency)
    with tempfile.TemporaryDirectory(prefix="leeway-bench-upstream-") as tmp:
        root = Path(tmp)
        vllm = VllmServer(
            args.vllm_python.absolute(),
            args.vllm_model.absolute(),
            root / "vllm.log",
            max_num_seqs=max(levels),
            log_requests=False,
        )
        started = time.monotonic()
        vllm.start()
        print(f"vLLM ready in {time.monotonic() - started:.0f} s", flush=True)
        try:
            with targets(vllm, root, max(levels)) as reach:
                runs = measure(reach, levels, args.rounds, args.requests_per_client, args.tokens)
        finally:
            vllm.stop()
    print(
        f"\n{args.rounds} round(s); {args.requests_per_client} requests per client, "
        f"max_tokens {args.tokens}, vLLM --max-num-seqs {max(levels)}; median (min–max)\n"
    )
    print(table(runs, levels))


if __name__ == "__main__":
    main()
