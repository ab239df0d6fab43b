"""Synthetic workloads: Poisson arrivals with a window mix, load phases, and batch drops.

Load is a share of the fleet's output-token throughput (0.9 = 90%); the mix is each window's share
of the tokens. Prompt and output lengths are lognormal; the output is capped by the request's
``max_output_tokens``. Tenants are Zipf-weighted; each has a few prompt prefixes (system prompts).
A batch drop comes from one tenant and shares one prefix.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from leeway.jobs import Window


@dataclass(frozen=True, slots=True)
class Lengths:
    median: float
    sigma: float
    cap: int  # hard upper bound (for outputs: the max_output_tokens every request declares)

    @property
    def mean(self) -> float:
        return min(self.median * math.exp(self.sigma**2 / 2), float(self.cap))

    def draw(self, rng: random.Random) -> int:
        return max(1, min(self.cap, round(rng.lognormvariate(math.log(self.median), self.sigma))))


@dataclass(frozen=True, slots=True)
class Phase:
    seconds: float
    load: float


@dataclass(frozen=True, slots=True)
class Drop:
    """``count`` requests in ``window`` arriving together at ``at`` (a batch)."""

    window: Window
    count: int
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Workload:
    phases: tuple[Phase, ...]
    mix: Mapping[Window, float] = field(
        default_factory=lambda: {
            Window.ASAP: 0.1,
            Window.PRIORITY: 0.2,
            Window.STANDARD: 0.4,
            Window.FLEX: 0.3,
        }
    )
    prompt: Lengths = Lengths(300, 0.8, 4_096)
    output: Lengths = Lengths(120, 0.7, 1_024)
    drops: tuple[Drop, ...] = ()
    tenants: int = 20
    prefixes: int = 8  # per tenant
    seed: int = 0

    @property
    def prompt_per_output(self) -> float:
        return self.prompt.mean / self.output.mean


@dataclass(slots=True)
class Arrivals:
    """One row per request, in arrival order (columns, to keep a million rows small)."""

    time: list[float] = field(default_factory=list)
    window: list[Window] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    output: list[int] = field(default_factory=list)
    tenant: list[int] = field(default_factory=list)
    prefix: list[int] = field(default_factory=list)  # index into the workload's prefix keys
    batch: list[bool] = field(default_factory=list)
    # max_output_tokens per request (a replay's, as it was sent); empty: the workload's output cap
    limit: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.time)

    def add(self, t: float, w: Window, prompt: int, output: int, tenant: int, prefix: int) -> None:
        self.time.append(t)
        self.window.append(w)
        self.prompt.append(prompt)
        self.output.append(output)
        self.tenant.append(tenant)
        self.prefix.append(prefix)
        self.batch.append(False)


def generate(workload: Workload, fleet_tokens_per_s: float) -> Arrivals:
    """Draw the requests of ``workload`` for a fleet producing ``fleet_tokens_per_s`` at most."""
    rng = random.Random(workload.seed)
    windows = list(workload.mix)
    cum_mix = _cumulative([workload.mix[w] for w in windows])
    cum_tenants = _cumulative([1 / (k + 1) for k in range(workload.tenants)])
    drops = sorted(workload.drops, key=lambda d: d.at)
    out, t, start = Arrivals(), 0.0, 0.0
    for phase in workload.phases:
        rate = phase.load * fleet_tokens_per_s / workload.output.mean
        end = start + phase.seconds
        t = max(t, start)
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= end:
                t = end
                break
            while drops and drops[0].at <= t:
                _drop(out, drops.pop(0), workload, rng)
            w = windows[_pick(rng, cum_mix)]
            tenant = _pick(rng, cum_tenants)
            prefix = tenant * workload.prefixes + rng.randrange(workload.prefixes)
            out.add(t, w, workload.prompt.draw(rng), workload.output.draw(rng), tenant, prefix)
        start = end
    for drop in drops:
        _drop(out, drop, workload, rng)
    return out


def prefix_keys(workload: Workload) -> list[str]:
    """Prefix key of each prefix index; the last one is shared by batch drops."""
    keys = [f"t{k // workload.prefixes}p{k % workload.prefixes}" for k in range(_batch(workload))]
    return [*keys, "batch"]


def _drop(out: Arrivals, drop: Drop, workload: Workload, rng: random.Random) -> None:
    for _ in range(drop.count):
        out.add(drop.at, drop.window, workload.prompt.draw(rng), workload.output.draw(rng), 0, 0)
        out.prefix[-1] = _batch(workload)
        out.batch[-1] = True


def _batch(workload: Workload) -> int:
    return workload.tenants * workload.prefixes


def _cumulative(weights: list[float]) -> list[float]:
    total, acc, cum = sum(weights), 0.0, []
    for w in weights:
        acc += w / total
        cum.append(acc)
    cum[-1] = 1.0
    return cum


def _pick(rng: random.Random, cum: list[float]) -> int:
    x, i = rng.random(), 0
    while cum[i] < x:
        i += 1
    return i
