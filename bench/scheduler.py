"""Scheduling policies compared on a simulated fleet: leeway vs fcfs vs strict, same workload.

Two scenarios on the ``h100-8b`` preset with 100 engines:

  mixed-90      90% of fleet capacity (10% asap, 20% priority, 40% standard, 30% flex by tokens)
                plus 100,000 flex requests dropped at t=0.
  overload-120  120% of capacity for 10 simulated minutes, then 60%.

Prints the comparison table per scenario and whether each of Leeway's targets is met.

    PYTHONPATH=src .venv/bin/python bench/scheduler.py [--engines 100] [--scenarios mixed-90 ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from leeway.jobs import Window
from leeway.scheduler.policy import PolicyKind
from leeway.sim.engine_model import H100_8B
from leeway.sim.report import Summary, summarize, table
from leeway.sim.runner import simulate
from leeway.sim.workload import Drop, Lengths, Phase, Workload, generate

DAY = 86_400.0
OUT = Lengths(
    200, 0.6, 1_024
)  # output tokens: fewer, longer requests than the default keep it quick


@dataclass(frozen=True)
class Target:
    name: str
    met: Callable[[Summary], bool]


SCENARIOS: dict[str, tuple[Workload, list[Target]]] = {
    "mixed-90": (
        Workload((Phase(300, 0.9),), drops=(Drop(Window.FLEX, 100_000),), output=OUT, seed=1),
        [
            Target("priority SLO >= 99%", lambda s: s.row(Window.PRIORITY).attained >= 0.99),
            Target("standard SLO >= 99%", lambda s: s.row(Window.STANDARD).attained >= 0.99),
            Target("asap p99 wait <= 1 s", lambda s: s.row(Window.ASAP).wait_p99 <= 1.0),
            Target("utilization >= 95% in backlog", lambda s: s.utilization >= 0.95),
            Target("flex batch done < 24 h", lambda s: (s.batch_done or 0.0) < DAY),
        ],
    ),
    "overload-120": (
        Workload((Phase(600, 1.2), Phase(240, 0.6)), output=OUT, seed=2),
        [
            Target("priority SLO >= 95%", lambda s: s.row(Window.PRIORITY).attained >= 0.95),
            Target(
                "flex absorbs: standard SLO >= 95%",
                lambda s: s.row(Window.STANDARD).attained >= 0.95,
            ),
            Target("flex done < 24 h", lambda s: s.row(Window.FLEX).attained >= 1.0),
        ],
    ),
}


def run(scenario: str, kind: str, engines: int) -> tuple[Summary, float, int]:
    workload, _ = SCENARIOS[scenario]
    began = time.perf_counter()
    arrivals = generate(workload, H100_8B.throughput(workload.prompt_per_output) * engines)
    out = simulate(workload, H100_8B, engines, kind, arrivals=arrivals)
    return summarize(out), time.perf_counter() - began, len(arrivals)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--engines", type=int, default=100)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--workers", type=int, default=2, help="processes (one policy run each)")
    args = p.parse_args()
    kinds = [k.value for k in PolicyKind]
    jobs = [(s, k) for s in args.scenarios for k in kinds]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(run, s, k, args.engines) for s, k in jobs]
        results = {job: f.result() for job, f in zip(jobs, futures, strict=True)}
    for scenario in args.scenarios:
        summaries = [results[scenario, k][0] for k in kinds]
        n = results[scenario, kinds[0]][2]
        took = ", ".join(f"{k} {results[scenario, k][1]:.0f}s" for k in kinds)
        print(f"\n== {scenario}: {n:,} requests, {args.engines} x {H100_8B.name} ({took}) ==")
        print(table(summaries))
        print(f"\n{'target':<36}" + "".join(f"{k:>8}" for k in kinds))
        for target in SCENARIOS[scenario][1]:
            marks = "".join(f"{'yes' if target.met(s) else 'NO':>8}" for s in summaries)
            print(f"{target.name:<36}{marks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
