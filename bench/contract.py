"""The windows contract on this machine's real engine, once per policy in the same run.

The default model (SmolLM2-135M-Instruct on the CPU) on --engine (llama.cpp, the issue's) at
--parallel sequences (32), behind
`leeway serve` with the demo's window targets (priority 20 s, standard 60 s), takes N minutes of a
mixed workload (10% asap, 20% priority, 40% standard, 30% flex, by output tokens) at --load (0.9)
of its measured capacity, then a drain. Each round, in order:

  engine    the same engine alone, no server: `parallel` generate() calls kept in flight through
            the Engine protocol; output tokens/s: the baseline
  capacity  a calibration run against the server (leeway policy): output tokens/s, saturated
  policy    per --policies, a fresh server with `policy = P` replays the same arrivals; its report,
            and the simulator's twin fitted to that server's /metrics

Printed: per policy the figures (median and range over --rounds), each policy's table with its
twin beside it, and the issue's targets checked: leeway keeps priority and standard ≥ 99%, finishes
all flex by the end of the drain, and delivers ≥ 0.9× the engine alone at capacity; fcfs and strict
are worse on priority attainment or asap time to first token; the twin is within 15% of each
window's p50 turn time and 2 points of its attainment.

    .venv/bin/python bench/contract.py [--minutes 10] [--load 0.9] [--rounds 1]
        [--engine llamacpp|openvino] [--parallel 32] [--urgent-share 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

from leeway import settings as config
from leeway.engines import Engine
from leeway.engines.build import build_engines
from leeway.jobs import Job, Message, Sampling, Surface, Window, new_id
from leeway.load.capacity import Capacity, calibrate
from leeway.load.client import SdkClient
from leeway.load.measurement import Outcome, measure
from leeway.load.plan import Plan, read_plan
from leeway.load.prompts import system_prompt, user_text
from leeway.load.scrape import Scraper
from leeway.load.twin import gaps
from leeway.sim.workload import Workload, prefix_keys
from leeway.windows import DEFAULT_TARGETS

T = TypeVar("T")
TARGETS = {Window.PRIORITY: 20.0, Window.STANDARD: 60.0}
# The engine: SmolLM2 on llama.cpp (Q4_1) at 32 sequences (--engine, --parallel change it).
# Short replies: at 32 sequences llama.cpp gives each ~6 tokens/s, so a 20 s priority target holds
# ~100 tokens with room to queue. Prompts stay well inside the 2048-token context.
PROMPT = {"median": 96, "sigma": 0.5, "cap": 512}
OUTPUT = {"median": 32, "sigma": 0.5, "cap": 128}
TWIN_TURN, TWIN_POINTS, MET = 0.15, 2.0, 0.99


@dataclass(frozen=True)
class Setup:
    model: str
    engine: str  # the engine kind: llamacpp, openvino
    parallel: int
    urgent_share: float = 1.0


@dataclass
class Round:
    engine_alone: float  # output tokens/s
    capacity: Capacity
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="of arrivals, per policy")
    p.add_argument("--load", type=float, default=0.9, help="share of the measured capacity")
    p.add_argument("--drain", type=float, default=180.0, help="seconds after the arrivals, at most")
    p.add_argument("--policies", nargs="+", default=["leeway", "fcfs", "strict"])
    p.add_argument("--calibrate", type=float, default=60.0, help="calibration seconds")
    p.add_argument("--engine-seconds", type=float, default=60.0, help="engine-alone seconds")
    p.add_argument("--rounds", type=int, default=1, help="repeat everything; ranges are shown")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=["llamacpp", "openvino"], default="llamacpp")
    p.add_argument("--parallel", type=int, default=32, help="sequences the engine decodes")
    p.add_argument(
        "--urgent-share",
        type=float,
        default=1.0,
        help="the server's urgent_share: standard and flex fill only this share of the sequences "
        "while asap or priority work runs (1: no limit, the default)",
    )
    args = p.parse_args()
    model = config.DEFAULT_MODEL
    plan = read_plan(
        None,
        {"model": model, "seconds": args.minutes * 60, "load": args.load, "prompt": PROMPT,
         "output": OUTPUT, "drain": args.drain, "seed": args.seed,
         "targets": {w.value: s for w, s in TARGETS.items()}},
    )  # fmt: skip
    setup = Setup(model, args.engine, args.parallel, args.urgent_share)
    rounds = [_round(args, plan, setup, n) for n in range(args.rounds)]
    print(_summary(args, plan, rounds))


def _round(args: argparse.Namespace, plan: Plan, setup: Setup, n: int) -> Round:
    _say(f"round {n + 1}: the engine alone for {args.engine_seconds:g} s")
    alone = asyncio.run(engine_alone(plan.workload, args.engine_seconds, setup))
    with tempfile.TemporaryDirectory() as tmp:
        _say(f"round {n + 1}: calibrating the server for {args.calibrate:g} s")
        capacity = _served(
            Path(tmp, "calibration"), "leeway", setup, lambda s: _calibrate(s, plan, args.calibrate)
        )
        _say(f"round {n + 1}: capacity {capacity.tokens_per_second:.1f} tok/s")
        done = Round(alone, capacity)
        for policy in args.policies:
            _say(f"round {n + 1}: {policy}, {args.minutes:g} min at {args.load:g} of capacity")
            done.outcomes[policy] = _served(
                Path(tmp, policy), policy, setup, lambda s, p=policy: _replay(s, plan, capacity, p)
            )
            _say(done.outcomes[policy].text())
    return done


async def engine_alone(workload: Workload, seconds: float, setup: Setup) -> float:
    """Output tokens/s of the engine of ``setup`` with ``parallel`` jobs always in
    flight (closed loop), counted as they stream over the last three quarters of ``seconds``;
    then the jobs still running are stopped."""
    settings = config.load(None, env={})
    models = tuple(
        replace(m, parallel=setup.parallel, engine=setup.engine) for m in settings.models
    )
    built = build_engines(replace(settings, models=models))
    engine = next(e for e in built if e.model == setup.model)
    await engine.start()
    loop = asyncio.get_running_loop()
    warm = loop.time() + seconds / 4
    rng, prefixes, counted = random.Random(11), prefix_keys(workload), 0

    async def keep_one_running() -> None:
        nonlocal counted
        while True:
            had = 0
            job = _job(engine, workload, rng, prefixes)
            async with contextlib.aclosing(engine.generate(job)) as chunks:
                async for chunk in chunks:
                    if loop.time() >= warm:
                        counted += chunk.tokens - had
                    had = chunk.tokens

    workers = [asyncio.create_task(keep_one_running()) for _ in range(engine.parallel)]
    try:
        await asyncio.sleep(seconds)
        measured = counted / (loop.time() - warm)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await engine.close()
    return measured


def _job(engine: Engine, workload: Workload, rng: random.Random, prefixes: list[str]) -> Job:
    """A job as the server would make it of a replayed request (system prompt, user text)."""
    messages = (
        Message("system", system_prompt(prefixes[rng.randrange(len(prefixes))])),
        Message("user", user_text(workload.prompt.draw(rng), rng)),
    )
    now = time.time()
    return Job(
        new_id("resp_"), "bench", Surface.RESPONSES, engine.model, messages,
        Sampling(workload.output.draw(rng)), Window.ASAP, None, now, now,
        engine.count_tokens(messages),
    )  # fmt: skip


def _served(
    where: Path, policy: str, setup: Setup, work: Callable[[LeewayServer], Awaitable[T]]
) -> T:
    config_text = (
        f'policy = "{policy}"\nurgent_share = {setup.urgent_share:g}\n[window_targets]\n'
        + "".join(f"{w.value} = {s:g}\n" for w, s in TARGETS.items())
        + f'[[models]]\nid = "{setup.model}"\nengine = "{setup.engine}"\n'
        + f"parallel = {setup.parallel}\n"
    )
    server = LeewayServer(where, config_text).start(timeout=300)
    try:
        return asyncio.run(work(server))
    finally:
        server.stop()


def _client(server: LeewayServer, plan: Plan) -> tuple[SdkClient, Scraper]:
    client = SdkClient(
        server.base_url,
        [server.key],
        plan.model,
        prefixes=prefix_keys(plan.workload),
        timeout=plan.seconds + plan.drain + 120,
        seed=plan.workload.seed,
    )
    return client, Scraper(f"http://127.0.0.1:{server.port}")


async def _calibrate(server: LeewayServer, plan: Plan, seconds: float) -> Capacity:
    client, scraper = _client(server, plan)
    try:
        await client.warm()
        return await calibrate(client, plan.workload, scraper, seconds=seconds, drain=plan.drain)
    finally:
        await client.close()
        await scraper.close()


async def _replay(server: LeewayServer, plan: Plan, capacity: Capacity, policy: str) -> Outcome:
    client, scraper = _client(server, plan)
    try:
        await client.warm()
        targets = {**DEFAULT_TARGETS, **TARGETS}
        return await measure(
            client, scraper, plan, targets, capacity=capacity, sim=True, label=policy
        )
    finally:
        await client.close()
        await scraper.close()


# -- the summary --------------------------------------------------------------------------------


def _summary(args: argparse.Namespace, plan: Plan, rounds: list[Round]) -> str:
    w = plan.workload
    lines = [
        "",
        f"{config.DEFAULT_MODEL} on {args.engine}, {args.parallel} sequences (urgent_share "
        f"{args.urgent_share:g}); {args.minutes:g} min at "
        f"{args.load:g} of capacity, drain ≤ {args.drain:g} s; targets priority "
        f"{TARGETS[Window.PRIORITY]:g} s, standard {TARGETS[Window.STANDARD]:g} s; prompt "
        f"~{w.prompt.median:g}, output ~{w.output.median:g} tokens; {len(rounds)} round(s): "
        "median (min–max)",
        f"engine alone {_spread([r.engine_alone for r in rounds], '.1f')} tok/s; through Leeway "
        f"at capacity {_spread([r.capacity.tokens_per_second for r in rounds], '.1f')} tok/s = "
        f"{_spread([r.capacity.tokens_per_second / r.engine_alone for r in rounds], '.2f')}×",
        "",
        f"{'policy':<7} {'priority':>16} {'standard':>16} {'flex done':>10} "
        f"{'asap TTFT p50':>16} {'out tok/s':>16} {'× alone':>14}",
    ]
    for policy in args.policies:
        outs = [(r, r.outcomes[policy]) for r in rounds]
        lines.append(
            f"{policy:<7} {_spread([_att(o, Window.PRIORITY) for _, o in outs], '.1%'):>16} "
            f"{_spread([_att(o, Window.STANDARD) for _, o in outs], '.1%'):>16} "
            f"{_spread([_flex_done(o) for _, o in outs], '.0%'):>10} "
            f"{_spread([_ttft(o) for _, o in outs], '.2f'):>16} "
            f"{_spread([o.measured.overall.tokens_per_second for _, o in outs], '.1f'):>16} "
            f"{_spread([o.measured.overall.tokens_per_second / r.engine_alone for r, o in outs], '.2f'):>14}"
        )
    lines += ["", "checks (each round):", *_checks(args, rounds)]
    return "\n".join(lines)


def _checks(args: argparse.Namespace, rounds: list[Round]) -> list[str]:
    out = []
    for n, r in enumerate(rounds, 1):
        lw = r.outcomes.get("leeway")
        if lw is not None:
            ratio = r.capacity.tokens_per_second / r.engine_alone
            out.append(
                f"  {n} leeway: priority ≥ 99% {_yes(_att(lw, Window.PRIORITY) >= MET)}, standard "
                f"≥ 99% {_yes(_att(lw, Window.STANDARD) >= MET)}, flex all done "
                f"{_yes(_flex_done(lw) == 1)}, capacity ≥ 0.9× the engine alone {_yes(ratio >= 0.9)}"
                f" ({ratio:.2f}×)"
            )
            for policy in ("fcfs", "strict"):
                if (o := r.outcomes.get(policy)) is not None:
                    worse = _att(o, Window.PRIORITY) < _att(lw, Window.PRIORITY) - 0.01 or (
                        _ttft(o) > 1.5 * _ttft(lw)
                    )
                    out.append(
                        f"  {n} {policy}: worse on priority attainment or asap TTFT "
                        f"{_yes(worse)} ({_att(o, Window.PRIORITY):.1%} vs "
                        f"{_att(lw, Window.PRIORITY):.1%}; {_ttft(o):.2f} s vs {_ttft(lw):.2f} s)"
                    )
        for policy, o in r.outcomes.items():
            out.append(f"  {n} twin of {policy}: {_twin_check(o)}")
    return out


def _twin_check(o: Outcome) -> str:
    if o.predicted is None:
        return o.why_no_twin or "none"
    cells, ok = [], True
    for g in gaps(o.measured, o.predicted):
        share, points = g.turn_p50_share, g.attained_points
        good = (share is not None and abs(share) <= TWIN_TURN) and (
            points is not None and abs(points) <= TWIN_POINTS
        )
        ok &= good
        cells.append(f"{g.window} p50 {_signed(share, 100, '%')} att {_signed(points, 1, ' pt')}")
    return f"within 15% and 2 points {_yes(ok)}: " + "; ".join(cells)


def _att(o: Outcome, window: Window) -> float:
    row = o.measured.window(window)
    return row.attained if row is not None and row.attained is not None else float("nan")


def _ttft(o: Outcome) -> float:
    row = o.measured.window(Window.ASAP)
    return row.ttft_p50 if row is not None and row.ttft_p50 is not None else float("nan")


def _flex_done(o: Outcome) -> float:
    row = o.measured.window(Window.FLEX)
    return row.finished / row.requests if row is not None and row.requests else float("nan")


def _spread(values: Sequence[float], fmt: str) -> str:
    mid = format(statistics.median(values), fmt)
    if len(values) < 2:
        return mid
    return f"{mid} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _signed(x: float | None, k: float, unit: str) -> str:
    return "-" if x is None else f"{x * k:+.1f}{unit}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
