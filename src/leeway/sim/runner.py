"""The discrete-event loop: arrivals and finishes drive the policy, engines advance analytically.

Between two events an engine's batch is fixed, so every running sequence gains one token per step
of ``step_time(batch)`` seconds. Each engine counts the steps it has done (fractional); a sequence
started at step s with r tokens to go finishes at step s + r, so an engine keeps its sequences in a
heap by finishing step and the fleet keeps one event per engine (its next finish) in a heap, stamped
with a version so a superseded one is skipped. A start adds its prefill time, during which the
engine decodes nothing. Nothing here is per token or per engine per event.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace

from leeway.scheduler.decisions import Decisions
from leeway.scheduler.policy import PolicyConfig, PolicyKind, QueuedJob, make_policy
from leeway.sim.engine_model import EngineModel
from leeway.sim.workload import Arrivals, Workload, generate, prefix_keys


class _Engine:
    __slots__ = ("dirty", "n", "running", "stall_end", "steps", "t_ref", "version")

    def __init__(self) -> None:
        self.steps = self.t_ref = self.stall_end = 0.0
        self.n = self.version = 0
        self.dirty = False
        self.running: list[tuple[float, int, int]] = []  # (finishing step, job, run number)


@dataclass(slots=True)
class Outcome:
    """Per job (same rows as ``arrivals``): first start, finish; and fleet-wide counters."""

    policy: str
    arrivals: Arrivals
    deadline: list[float]
    started: list[float]
    finished: list[float]
    capacity: int  # sequences, fleet-wide
    busy: float = 0.0  # sequence-seconds in use while a backlog existed
    backlog_seconds: float = 0.0
    end: float = 0.0
    preemptions: int = 0
    completions: int = 0  # finish events (a job finishing twice would count twice)
    decoded: int = 0  # output tokens the engines produced, over all runs
    reported_late: int = 0


class Simulation:
    def __init__(
        self,
        workload: Workload,
        model: EngineModel,
        engines: int,
        kind: PolicyKind | str,
        config: PolicyConfig | None = None,
        arrivals: Arrivals | None = None,
    ) -> None:
        config = config or PolicyConfig()
        if config.output_estimate is None:  # a server that has run a while has observed it
            config = replace(config, output_estimate=workload.output.mean)
        self.config = config
        self.model = model
        ratio = workload.prompt_per_output
        if arrivals is None:
            arrivals = generate(workload, model.throughput(ratio) * engines)
        self.arrivals = arrivals
        self.policy = make_policy(kind, self.config)
        self.engines = [_Engine() for _ in range(engines)]
        self._engine_index: dict[str, int] = {}
        for e in range(engines):
            self.policy.add_engine(model.spec(f"e{e}", ratio))
            self._engine_index[f"e{e}"] = e
        n = len(arrivals)
        targets = self.config.targets
        self.out = Outcome(
            str(kind),
            arrivals,
            [t + targets[w] for t, w in zip(arrivals.time, arrivals.window, strict=True)],
            [-1.0] * n,
            [-1.0] * n,
            engines * model.capacity,
        )
        self._prefixes = prefix_keys(workload)
        self._tenants = [f"tenant{k}" for k in range(workload.tenants)]
        self._max_output = workload.output.cap
        self._generated = [0] * n  # tokens kept from preempted runs
        self._run = [0] * n  # run number: a preempted run's finish is stale
        self._run_start = [0.0] * n  # engine step at which the current run began
        self._run_engine = [0] * n
        self._events: list[tuple[float, int, int]] = []  # (time, engine, version)
        self._dirty: list[int] = []
        self._inflight = 0

    def run(self) -> Outcome:
        arr, out, events = self.arrivals, self.out, self._events
        times, n, i = arr.time, len(arr), 0
        last, backlog = 0.0, False
        while i < n or events:
            if events and (i >= n or events[0][0] <= times[i]):
                t, e, version = heapq.heappop(events)
                if version != self.engines[e].version:
                    continue
                self._account(t - last, backlog)
                self._finish(e, t)
            else:
                t = times[i]
                self._account(t - last, backlog)
                self._apply(self.policy.submit(self._job(i), t), t)
                i += 1
            last = t
            self._reschedule()
            backlog = self.policy.waiting > 0
        out.end = last
        return out

    def _account(self, dt: float, backlog: bool) -> None:
        if backlog:
            self.out.busy += self._inflight * dt
            self.out.backlog_seconds += dt

    def _job(self, i: int) -> QueuedJob:
        arr = self.arrivals
        return QueuedJob(
            str(i),
            arr.window[i],
            arr.time[i],
            self.out.deadline[i],
            arr.prompt[i],
            arr.limit[i] if arr.limit else self._max_output,
            self._prefixes[arr.prefix[i]],
            self._tenants[arr.tenant[i]],
            self._generated[i],
        )

    def _apply(self, decisions: Decisions, t: float) -> None:
        if not decisions:
            return
        index = self._engine_index
        for p in decisions.preempts:
            self._preempt(int(p.job_id), index[p.engine_id], t)
        for s in decisions.starts:
            self._start(int(s.job_id), index[s.engine_id], t)
        self.out.reported_late += len(decisions.late)

    def _advance(self, eng: _Engine, t: float) -> None:
        since = eng.t_ref if eng.t_ref > eng.stall_end else eng.stall_end
        if t > since and eng.n:
            model = self.model
            eng.steps += (t - since) / (model.step_base + model.step_per_sequence * eng.n)
        eng.t_ref = t

    def _start(self, i: int, e: int, t: float) -> None:
        eng = self.engines[e]
        self._advance(eng, t)
        kept = self._generated[i]
        eng.n += 1
        begin = eng.stall_end if eng.stall_end > t else t
        eng.stall_end = begin + self.model.prefill_per_token * (self.arrivals.prompt[i] + kept)
        heapq.heappush(eng.running, (eng.steps + self.arrivals.output[i] - kept, i, self._run[i]))
        self._run_start[i], self._run_engine[i] = eng.steps, e
        if self.out.started[i] < 0:
            self.out.started[i] = t
        self._inflight += 1
        self._touch(e)

    def _preempt(self, i: int, e: int, t: float) -> None:
        eng = self.engines[e]
        self._advance(eng, t)
        done = int(eng.steps - self._run_start[i])
        kept = min(self._generated[i] + max(done, 0), self.arrivals.output[i] - 1)
        self.out.decoded += kept - self._generated[i]
        self._generated[i] = kept
        self._run[i] += 1
        eng.n -= 1
        self._inflight -= 1
        self.out.preemptions += 1
        self._touch(e)
        self.policy.enqueue(self._job(i), t)

    def _finish(self, e: int, t: float) -> None:
        eng = self.engines[e]
        self._advance(eng, t)
        running, run = eng.running, self._run
        if running and running[0][0] > eng.steps and running[0][2] == run[running[0][1]]:
            eng.steps = running[0][0]  # float rounding: the event was for this one
        while running and running[0][0] <= eng.steps + 1e-6:
            _, i, number = heapq.heappop(running)
            if number != run[i]:
                continue
            eng.n -= 1
            self._inflight -= 1
            self.out.finished[i] = t
            self.out.completions += 1
            self.out.decoded += self.arrivals.output[i] - self._generated[i]
            self._apply(self.policy.release(str(i), t, self.arrivals.output[i]), t)
        self._touch(e)

    def _touch(self, e: int) -> None:
        eng = self.engines[e]
        if not eng.dirty:
            eng.dirty = True
            self._dirty.append(e)

    def _reschedule(self) -> None:
        model, run = self.model, self._run
        for e in self._dirty:
            eng = self.engines[e]
            eng.dirty = False
            eng.version += 1
            running = eng.running
            while running and running[0][2] != run[running[0][1]]:
                heapq.heappop(running)
            if running:
                since = eng.t_ref if eng.t_ref > eng.stall_end else eng.stall_end
                step = model.step_base + model.step_per_sequence * eng.n
                at = since + max(running[0][0] - eng.steps, 0.0) * step
                heapq.heappush(self._events, (at, e, eng.version))
        self._dirty.clear()


def simulate(
    workload: Workload,
    model: EngineModel,
    engines: int,
    kind: PolicyKind | str,
    config: PolicyConfig | None = None,
    arrivals: Arrivals | None = None,
) -> Outcome:
    return Simulation(workload, model, engines, kind, config, arrivals).run()
