"""``leeway load``: replay a workload against a running server and report each window's
attainment, turn times and time to first token; ``--sim`` sets the simulator's prediction beside
it; ``--capacity`` finds the highest load at which priority and standard keep 99%.

    leeway load --base-url http://127.0.0.1:8000/v1 --api-key lw-… --model M --seconds 300 \\
        --load 0.9 --mix asap=0.1,priority=0.2,standard=0.4,flex=0.3 --drain 600 [--sim] [--json]

``--load X`` is a share of the server's capacity, measured first by a short calibration run
(``--calibrate`` seconds; the server's token counters in ``/metrics`` where it has them); ``--rate
R`` is requests/s and needs no calibration. Progress goes to stderr; the table to stdout, or with
``--json`` the same as JSON on stdout (and the table on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leeway.errors import LeewayError
from leeway.load import plan as plans
from leeway.load.capacity import Capacity, calibrate, highest_load
from leeway.load.client import Client, make_client
from leeway.load.measurement import measure
from leeway.load.scrape import Scraper
from leeway.load.stats import Report
from leeway.load.table import as_json
from leeway.sim.workload import Phase, prefix_keys
from leeway.windows import DEFAULT_TARGETS


def _positive(kind: type[float] | type[int], zero: bool = False) -> Any:
    """An argparse type: a number of ``kind`` above 0 (or at least 0), else a usage error."""

    def read(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            name = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'0 or more' if zero else 'above 0'}")
        return value

    return read


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="leeway load", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    env = os.environ.get
    p.add_argument("--base-url", default=env("LEEWAY_BASE_URL", "http://127.0.0.1:8000/v1"))
    p.add_argument(
        "--api-key",
        action="append",
        help="repeat for several tenants' keys (default: $LEEWAY_API_KEY)",
    )
    p.add_argument("--workload", type=Path, help="a TOML workload file (flags override it)")
    p.add_argument("--model")
    p.add_argument("--seconds", type=_positive(float), help="seconds of arrivals (default 60)")
    load = p.add_mutually_exclusive_group()
    load.add_argument(
        "--load", type=_positive(float), help="a share of the measured capacity (default 1)"
    )
    load.add_argument("--rate", type=_positive(float), help="requests/s")
    p.add_argument("--mix", help="shares of output tokens: asap=0.1,priority=0.2,…")
    p.add_argument("--prompt-tokens", metavar="MEDIAN[,SIGMA[,CAP]]")
    p.add_argument("--output-tokens", metavar="MEDIAN[,SIGMA[,CAP]]")
    p.add_argument("--tenants", type=_positive(int))
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--drain",
        type=_positive(float, zero=True),
        help="seconds to wait after the arrivals (default 600)",
    )
    p.add_argument("--targets", help="turn-time targets, e.g. priority=20,standard=60 (default: "
                   "the server's, from its /metrics)")  # fmt: skip
    p.add_argument("--calibrate", type=_positive(float), default=30.0, help="calibration seconds")
    p.add_argument(
        "--capacity-tokens", type=_positive(float), help="known capacity (output tok/s): skip it"
    )
    p.add_argument("--capacity", action="store_true", help="bisect for the highest load that "
                   "keeps priority and standard ≥ 99%% (each step one run of --seconds)")  # fmt: skip
    p.add_argument(
        "--steps", type=_positive(int), default=4, help="--capacity: runs of the bisection"
    )
    p.add_argument("--sim", action="store_true", help="the simulator's prediction beside it")
    p.add_argument(
        "--connections", type=_positive(int), default=1000, help="the client's connections"
    )
    p.add_argument(
        "--client",
        choices=["sdk", "aiohttp"],
        default="sdk",
        help="sdk: the official openai SDK on aiohttp (default); aiohttp: bare requests, ~10× "
        "fewer CPU seconds a request, for rates one process cannot offer through the SDK",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    keys = args.api_key or [k for k in [os.environ.get("LEEWAY_API_KEY")] if k]
    if not keys:
        sys.exit("leeway load: give --api-key (or set LEEWAY_API_KEY)")
    try:
        plan = plans.read_plan(args.workload, _flags(args))
        out = asyncio.run(_run(args, plan, keys))
    except LeewayError as e:
        sys.exit(f"leeway load: {e.message}")
    text, data = out
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)
    return 0


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "seconds": args.seconds,
        "load": args.load,
        "rate": args.rate,
        "mix": plans.pairs(args.mix, "--mix") if args.mix else None,
        "prompt": plans.lengths(args.prompt_tokens, "--prompt-tokens")
        if args.prompt_tokens
        else None,
        "output": plans.lengths(args.output_tokens, "--output-tokens")
        if args.output_tokens
        else None,
        "tenants": args.tenants,
        "seed": args.seed,
        "drain": args.drain,
        "targets": plans.pairs(args.targets, "--targets") if args.targets else None,
    }


async def _run(
    args: argparse.Namespace, plan: plans.Plan, keys: list[str]
) -> tuple[str, dict[str, Any]]:
    scraper = Scraper(args.base_url.rstrip("/").removesuffix("/v1"))
    client = make_client(
        args.client,
        args.base_url,
        keys,
        plan.model,
        prefixes=prefix_keys(plan.workload),
        timeout=plan.seconds + plan.drain + 60,
        connections=args.connections,
        seed=plan.workload.seed,
    )
    try:
        warm = await client.warm()
        if warm.error is not None:
            raise LeewayError(f"the server refused a first request: {warm.error}")
        server = await scraper.read()
        targets = {**DEFAULT_TARGETS, **(server.targets if server else {}), **plan.targets}
        capacity = None
        if plan.rate is None:
            capacity = await _capacity(args, plan, client, scraper)
        if args.capacity:
            text, data = await _bisect(args, plan, client, scraper, capacity, targets)
        else:
            outcome = await measure(
                client, scraper, plan, targets, capacity=capacity, sim=args.sim,
                progress=not args.quiet,
            )  # fmt: skip
            text, data = outcome.text(), outcome.json()
        return _with_capacity(text, capacity), {**data, "capacity": _capacity_json(capacity)}
    finally:
        await client.close()
        await scraper.close()


async def _capacity(
    args: argparse.Namespace, plan: plans.Plan, client: Client, scraper: Scraper
) -> Capacity:
    if args.capacity_tokens:
        return Capacity(args.capacity_tokens, "given (--capacity-tokens)", [])
    print(f"calibrating for {args.calibrate:g} s…", file=sys.stderr)
    return await calibrate(client, plan.workload, scraper, seconds=args.calibrate, drain=plan.drain)


async def _bisect(
    args: argparse.Namespace,
    plan: plans.Plan,
    client: Client,
    scraper: Scraper,
    capacity: Capacity | None,
    targets: dict[Any, float],
) -> tuple[str, dict[str, Any]]:
    async def run(load: float) -> Report:
        outcome = await measure(
            client, scraper, plan, targets, capacity=capacity,
            phases=(Phase(plan.seconds, load),), progress=not args.quiet, label=f"load {load:.3f}",
        )  # fmt: skip
        print(f"load {load:.3f}: {_attained(outcome.measured)}", file=sys.stderr)
        return outcome.measured

    best, steps = await highest_load(run, 0.3, 1.2, args.steps)
    lines = ["load      met  " + "  ".join(f"{w:>9}" for w in ("priority", "standard"))]
    for s in steps:
        lines.append(f"{s.load:<8.3f}  {'yes' if s.met else 'no ':<3}  {_attained(s.report)}")
    verdict = (
        f"highest load keeping priority and standard ≥ 99%: {best:.3f} of capacity"
        if best is not None
        else f"no load tried (the lowest: {min(s.load for s in steps):.3f}) kept priority and "
        "standard ≥ 99%"
    )
    data = {
        "highest_load": best,
        "steps": [as_json(s.report, load=s.load, met=s.met) for s in steps],
    }
    return "\n".join([*lines, verdict]), data


def _attained(r: Report) -> str:
    cells = []
    for w in ("priority", "standard"):
        row = next((x for x in r.windows if x.window == w), None)
        cells.append(f"{row.attained:>9.1%}" if row and row.attained is not None else f"{'-':>9}")
    return "  ".join(cells)


def _with_capacity(text: str, capacity: Capacity | None) -> str:
    if capacity is None:
        return text
    return f"capacity: {capacity.tokens_per_second:.1f} output tok/s ({capacity.source})\n{text}"


def _capacity_json(capacity: Capacity | None) -> dict[str, Any] | None:
    if capacity is None:
        return None
    return {"tokens_per_second": capacity.tokens_per_second, "source": capacity.source}
