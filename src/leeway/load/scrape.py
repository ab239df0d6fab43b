"""The server's ``/metrics`` (Prometheus' text format), read once a second while a replay runs.

A ``Sample`` keeps what a report and an engine fit need: per engine its sequences and its counters
(output and prompt tokens, sequence-seconds, busy seconds), the queue depth per window, the window
targets and the policy. A server without Leeway's metrics (or without ``/metrics``) gives empty
samples: the figures read from them are then left out, never guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from leeway.jobs import Window

_COUNTERS = {
    "leeway_engine_output_tokens_total": "output",
    "leeway_engine_prompt_tokens_total": "prompt",
    "leeway_engine_sequence_seconds_total": "seq_seconds",
    "leeway_engine_busy_seconds_total": "busy",
}


@dataclass(frozen=True, slots=True)
class EngineCounters:
    model: str
    sequences: int
    output: float = 0.0
    prompt: float = 0.0
    seq_seconds: float = 0.0
    busy: float = 0.0
    prefill_rate: float | None = None  # the policy's: prompt tokens/s
    decode_rate: float | None = None  # the policy's: output tokens/s per sequence


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # monotonic seconds
    engines: Mapping[str, EngineCounters] = field(default_factory=dict)
    depths: Mapping[str, float] = field(default_factory=dict)
    targets: Mapping[Window, float] = field(default_factory=dict)
    policy: str | None = None
    urgent_share: float = 1.0  # the policy's (see PolicyConfig)


def parse(text: str, at: float) -> Sample:
    values: dict[str, dict[str, float]] = {}
    models: dict[str, tuple[str, int]] = {}
    depths: dict[str, float] = {}
    targets: dict[Window, float] = {}
    policy, urgent_share = None, 1.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            engine = s.labels.get("engine")
            if s.name == "leeway_engine_sequences" and engine is not None:
                models[engine] = (s.labels.get("model", ""), int(s.value))
            elif s.name in _COUNTERS and engine is not None:
                values.setdefault(engine, {})[_COUNTERS[s.name]] = s.value
            elif s.name == "leeway_engine_prefill_tokens_per_second" and engine is not None:
                values.setdefault(engine, {})["prefill_rate"] = s.value
            elif s.name == "leeway_engine_decode_tokens_per_second" and engine is not None:
                values.setdefault(engine, {})["decode_rate"] = s.value
            elif s.name == "leeway_queue_depth":
                depths[s.labels["window"]] = s.value
            elif s.name == "leeway_window_target_seconds":
                targets[Window(s.labels["window"])] = s.value
            elif s.name == "leeway_scheduler_policy" and s.value:
                policy = s.labels["policy"]
            elif s.name == "leeway_scheduler_urgent_share":
                urgent_share = s.value
    engines = {e: EngineCounters(model, n, **values.get(e, {})) for e, (model, n) in models.items()}
    return Sample(at, engines, depths, targets, policy, urgent_share)


class Scraper:
    """Reads ``{root}/metrics`` every ``interval`` seconds into ``samples`` while running."""

    def __init__(self, root: str, interval: float = 1.0) -> None:
        self.url, self.interval = f"{root.rstrip('/')}/metrics", interval
        self.samples: list[Sample] = []
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> Sample | None:
        """One sample now, or None if the server has no metrics to give."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.get(self.url) as resp:
                if resp.status != 200:
                    return None
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        try:
            return parse(text, time.monotonic())
        except ValueError:
            return None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> Sample | None:
        """Stop reading; the last sample, read now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        last = await self.read()
        if last is not None:
            self.samples.append(last)
        return last

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    async def _loop(self) -> None:
        while True:
            sample = await self.read()
            if sample is not None:
                self.samples.append(sample)
            await asyncio.sleep(self.interval)


def window_of(samples: list[Sample], model: str | None = None) -> tuple[float | None, float | None]:
    """Utilization (time-averaged sequences in flight ÷ capacity) and output tokens/s of the
    engines (of ``model``, if given) between the first and last sample."""
    if len(samples) < 2:
        return None, None
    first, last = samples[0], samples[-1]
    seconds = last.at - first.at
    names = [e for e, c in last.engines.items() if model is None or c.model == model]
    if seconds <= 0 or not names:
        return None, None
    capacity = sum(last.engines[e].sequences for e in names)
    seq = sum(last.engines[e].seq_seconds - _get(first, e, "seq_seconds") for e in names)
    out = sum(last.engines[e].output - _get(first, e, "output") for e in names)
    return (seq / (seconds * capacity) if capacity else None), out / seconds


def _get(sample: Sample, engine: str, name: str) -> float:
    counters = sample.engines.get(engine)
    return float(getattr(counters, name)) if counters is not None else 0.0
