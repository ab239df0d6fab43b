"""``python -m leeway.sim``: simulate a fleet and compare policies on the same workload."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from leeway.jobs import Window
from leeway.scheduler.policy import PolicyKind
from leeway.sim.engine_model import PRESETS
from leeway.sim.report import summarize, table
from leeway.sim.runner import simulate
from leeway.sim.workload import Drop, Phase, Workload, generate


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="leeway sim", description=__doc__)
    p.add_argument("--preset", choices=sorted(PRESETS), default="h100-8b")
    p.add_argument("--engines", type=int, default=100)
    p.add_argument("--load", type=float, default=0.9, help="share of fleet output throughput")
    p.add_argument("--seconds", type=float, default=300.0, help="simulated seconds of arrivals")
    p.add_argument("--requests", type=int, help="instead of --seconds: about this many requests")
    p.add_argument("--flex-batch", type=int, default=0, help="flex requests dropped at t=0")
    p.add_argument("--policies", nargs="+", default=[k.value for k in PolicyKind])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    model = PRESETS[args.preset]
    drops = (Drop(Window.FLEX, args.flex_batch),) if args.flex_batch else ()
    workload = Workload((Phase(args.seconds, args.load),), drops=drops, seed=args.seed)
    fleet = model.throughput(workload.prompt_per_output) * args.engines
    if args.requests:
        rate = args.load * fleet / workload.output.mean
        seconds = max(args.requests - args.flex_batch, 0) / rate
        workload = Workload((Phase(seconds, args.load),), drops=drops, seed=args.seed)
    began = time.perf_counter()
    arrivals = generate(workload, fleet)
    print(f"{len(arrivals):,} requests generated in {time.perf_counter() - began:.1f}s")
    summaries = []
    for kind in args.policies:
        began = time.perf_counter()
        out = simulate(workload, model, args.engines, kind, arrivals=arrivals)
        took = time.perf_counter() - began
        print(f"{kind}: {len(arrivals):,} requests over {args.engines} engines in {took:.1f}s")
        summaries.append(summarize(out))
    print(table(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
