"""How much a server can take: a short calibration run, and the bisection behind ``--capacity``.

Calibration keeps ``concurrency`` requests in flight (twice the server's sequences, read from its
``/metrics``, else 64), drawn from the workload's own prompt and output lengths (capacity in output
tokens/s depends on them), all ``standard``, for ``seconds``. Capacity is the output tokens/s over
the last three quarters of it: from the server's token counters when it reports them (Leeway's
``/metrics``), else from the tokens of the requests that finished in that span (coarser). Then it
waits for what is still running, so the next run starts on an idle server.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from leeway.jobs import Window
from leeway.load.client import Client
from leeway.load.records import Record, Request
from leeway.load.scrape import Sample, Scraper, window_of
from leeway.load.stats import Report
from leeway.sim.workload import Workload

FALLBACK_CONCURRENCY = 64
MET = 0.99  # priority and standard attainment a load must keep to count as within capacity


@dataclass(frozen=True, slots=True)
class Capacity:
    tokens_per_second: float
    source: str  # how it was measured, in words
    samples: list[Sample]


async def calibrate(
    client: Client,
    workload: Workload,
    scraper: Scraper,
    *,
    seconds: float,
    concurrency: int | None = None,
    drain: float = 600.0,
) -> Capacity:
    first = await scraper.read()
    sequences = sum(e.sequences for e in first.engines.values()) if first else 0
    concurrency = concurrency or (2 * sequences if sequences else FALLBACK_CONCURRENCY)
    rng = random.Random(workload.seed + 7)
    start = client.now()
    warm, end = start + seconds / 4, start + seconds
    done: list[Record] = []
    numbers = itertools.count(1)

    async def worker() -> None:
        while client.now() < end:
            prompt, output = workload.prompt.draw(rng), workload.output.draw(rng)
            request = Request(-next(numbers), 0.0, Window.STANDARD, prompt, output, 0, 0)
            done.append(await client.send(request))

    before = len(scraper.samples)
    scraper.start()
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warm - client.now())
    span = [await scraper.read()]
    await asyncio.sleep(end - client.now())
    span.append(await scraper.read())
    _, server_rate = window_of([s for s in span if s is not None])
    await asyncio.wait(workers, timeout=drain)
    await scraper.stop()
    samples = scraper.samples[before:]
    how = f"{seconds:g} s at {concurrency} in flight"
    if server_rate is not None:
        return Capacity(server_rate, f"calibration, {how}, server's token counters", samples)
    tokens = sum(r.output_tokens or 0 for r in done if r.done is not None and warm <= r.done < end)
    rate = tokens / (end - warm)
    return Capacity(rate, f"calibration, {how}, tokens of requests finished", samples)


@dataclass(frozen=True, slots=True)
class Step:
    load: float
    met: bool
    report: Report


def meets(report: Report) -> bool:
    """Priority and standard attainment at least ``MET`` (a window without requests meets it)."""
    return all(
        (row := report.window(w)) is None or (row.attained or 0.0) >= MET
        for w in (Window.PRIORITY, Window.STANDARD)
    )


async def highest_load(
    run: Callable[[float], Awaitable[Report]], low: float, high: float, steps: int
) -> tuple[float | None, list[Step]]:
    """Bisect between ``low`` and ``high`` (shares of capacity) for the highest load that
    ``meets``; each step is one run. None if no load tried met it."""
    tried: list[Step] = []
    for _ in range(steps):
        load = (low + high) / 2
        report = await run(load)
        tried.append(Step(load, meets(report), report))
        low, high = (load, high) if tried[-1].met else (low, load)
    best = max((s.load for s in tried if s.met), default=None)
    return best, tried
