"""One replay: send each request when it is due, follow every one to its end, then wait up to
``drain`` seconds for those still going (flex included); what is still going then is stopped and
counted ``unfinished``. Progress bars (sent, done, and the server's queue) go to stderr.

The client's own lag (how late each request went out) is measured, never assumed away: when it
falls behind, the report's sent rate is below the offered one.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from leeway.load.client import Client
from leeway.load.records import Record, Request
from leeway.load.scrape import Sample, Scraper

_LEAD = 0.2  # seconds between setting up and the first arrival


@dataclass(frozen=True, slots=True)
class Replay:
    records: list[Record]
    samples: list[Sample]  # the server's metrics, a second apart, from before the first request
    ended: float  # when the drain ended, in the records' time


async def replay(
    client: Client,
    requests: Sequence[Request],
    *,
    drain: float,
    scraper: Scraper | None = None,
    progress: bool = True,
    label: str = "",
) -> Replay:
    bars = _Bars(len(requests), progress, label)
    first = len(scraper.samples) if scraper is not None else 0
    if scraper is not None:
        scraper.start()
    records = [Record(r) for r in requests]
    tasks: list[asyncio.Task[Record]] = []
    client.start = time.monotonic() + _LEAD
    i, n = 0, len(requests)
    while i < n:
        now = client.now()
        while i < n and requests[i].at <= now:
            task = asyncio.create_task(client.send(requests[i], records[i]))
            task.add_done_callback(bars.finished)
            tasks.append(task)
            i += 1
        bars.sent(i, scraper.latest if scraper is not None else None)
        if i < n:
            await asyncio.sleep(max(0.0, requests[i].at - client.now()))
    await _drain(tasks, records, drain, bars, scraper)
    ended = client.now()
    if scraper is not None:
        await scraper.stop()
    bars.close()
    samples = scraper.samples[first:] if scraper is not None else []
    return Replay(records, samples, ended)


async def _drain(
    tasks: list[asyncio.Task[Record]],
    records: Sequence[Record],
    drain: float,
    bars: _Bars,
    scraper: Scraper | None,
) -> None:
    """Wait for the tasks up to ``drain`` seconds; those still going are stopped, their records
    marked ``unfinished``."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    until = loop.time() + drain
    while pending and loop.time() < until:
        _, pending = await asyncio.wait(pending, timeout=min(1.0, until - loop.time()))
        bars.sent(len(tasks), scraper.latest if scraper is not None else None)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for record in records:
        if record.done is None and record.error is None:
            record.error = "unfinished"


class _Bars:
    """Requests sent and done, with the server's queue depths, on stderr."""

    def __init__(self, total: int, show: bool, label: str) -> None:
        prefix = f"{label} " if label else ""
        self._sent, self._done = (
            tqdm(
                total=total,
                desc=f"{prefix}{name}",
                unit="req",
                position=i,
                file=sys.stderr,
                disable=not show,
                leave=False,
                dynamic_ncols=True,
            )
            for i, name in enumerate(("sent", "done"))
        )
        self._shown = 0

    def sent(self, count: int, sample: Sample | None) -> None:
        self._sent.update(count - self._shown)
        self._shown = count
        if sample is not None and sample.depths:
            queued = {w: int(n) for w, n in sample.depths.items() if n}
            self._done.set_postfix_str(f"queued {queued or 0}", refresh=False)

    def finished(self, _: asyncio.Task[Record]) -> None:
        self._done.update(1)

    def close(self) -> None:
        self._sent.close()
        self._done.close()
