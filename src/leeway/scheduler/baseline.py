"""Baseline policies to compare Leeway's against, with the same interface.

``fcfs``: one queue in arrival order, no preemption, no reserve (what vLLM does by default).
``strict``: window order (asap, priority, standard, flex), then arrival; no slack, no preemption.
"""

from __future__ import annotations

import heapq

from leeway.scheduler.decisions import NOTHING, Decisions, Recorder
from leeway.scheduler.fleet import Fleet
from leeway.scheduler.snapshot import EngineSpec, PolicyConfig, QueuedJob, RunningJob

_Item = tuple[int, float, int, QueuedJob]  # (window rank or 0, arrival, seq, job)


class FcfsPolicy:
    by_window = False

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self.fleet = Fleet()
        self.waiting = 0
        self._queue: list[_Item] = []
        self._running: dict[str, int] = {}  # job id -> engine index
        self._seq = 0

    def add_engine(self, spec: EngineSpec) -> None:
        self.fleet.add(spec.id, spec.capacity)

    def occupy(self, job: RunningJob, engine_id: str, now: float) -> None:
        e = self.fleet.index(engine_id)
        self.fleet.take(e)
        self._running[job.id] = e

    def enqueue(self, job: QueuedJob, now: float) -> None:
        if job.id in self._running:
            raise ValueError(f"job {job.id!r} is already running")
        self._seq += 1
        rank = job.window.rank if self.by_window else 0
        heapq.heappush(self._queue, (rank, job.arrival, self._seq, job))
        self.waiting += 1

    def submit(self, job: QueuedJob, now: float) -> Decisions:
        self.enqueue(job, now)
        return self.fill(now)

    def release(self, job_id: str, now: float, output_tokens: int | None = None) -> Decisions:
        e = self._running.pop(job_id, None)
        if e is None:
            raise ValueError(f"job {job_id!r} is not running")
        self.fleet.give(e)
        return self.fill(now)

    def fill(self, now: float) -> Decisions:
        if not self._queue:
            return NOTHING
        rec, fleet, queue = Recorder(), self.fleet, self._queue
        while queue and (e := fleet.roomiest()) >= 0:
            job = heapq.heappop(queue)[-1]
            fleet.take(e)
            self._running[job.id] = e
            self.waiting -= 1
            rec.start(job.id, fleet.ids[e])
        return rec.decisions()


class StrictPolicy(FcfsPolicy):
    by_window = True
