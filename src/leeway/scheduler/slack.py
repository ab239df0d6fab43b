"""The Leeway policy, kept between calls: asap now, then least slack first, flex in the gaps.

Queues (each a heap or deque of entries; an entry that left a queue some other way is skipped when it
surfaces, so nothing is ever searched):

- ``asap``: arrival order. Starts on any free sequence, else takes the place of the running job that
  loses least: a flex job with the most slack, else the standard job with the most slack. Asap and
  priority work is never preempted.
- ``urgent``: priority, standard, and flex whose slack fell under ``flex_aging``; least slack first.
  Slack = deadline - now - predicted service; ``now`` is common to all, so the heap is keyed by the
  latest start time (deadline - service) and never re-sorted. Slack is compared in bands of
  ``tie_share`` of the window's target; inside a band tenants take turns (a tenant's n-th job in the
  band goes after every other tenant's (n-1)-th), so one tenant's 20,000 jobs cannot starve another's.
- ``late``: jobs found unable to meet their deadline, in the order found. They run after every job
  that still can (so a lost cause does not drag others past theirs), before unaged flex, and are
  reported once in ``Decisions.late``.
- ``flex``: least slack first, same bands; only on an engine with more free sequences than its
  reserve, unless the hour is off-peak. Moves to ``urgent`` when its slack falls under ``flex_aging``.

A job that shares a prompt prefix goes to the engine that last took that prefix, and fills the free
sequences left there with queued jobs of the same prefix that may run now.

While asap or priority work runs on an engine, standard and flex jobs start there only below
``urgent_share`` of its sequences (``PolicyConfig``): every running sequence gets one token a step,
and on an engine whose step grows with each sequence (a CPU), fewer sequences decode faster each,
at little cost in throughput. The urgent work then finishes sooner; what waits keeps its place.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

from leeway.jobs import Window
from leeway.scheduler.decisions import NOTHING, Decisions, Recorder, Start
from leeway.scheduler.fleet import Fleet
from leeway.scheduler.service import ServiceModel
from leeway.scheduler.snapshot import EngineSpec, PolicyConfig, QueuedJob, RunningJob

QUEUED, RUNNING, GONE = 0, 1, 2
_URGENT, _LATE, _FLEX = 0, 1, 2  # the queue an entry came from
# Entries a fill sets aside for want of room beside urgent work before it stops looking: a priority
# job behind more of them waits for the next fill (the urgent work's release), so a long queue is
# not walked on every fill.
_HOLD_LIMIT = 64


# (slack band, tenant turn, latest start, seq, entry)
_Item = tuple[float, int, float, int, "_Entry"]


class _Entry:
    __slots__ = ("engine", "item", "job", "latest", "state")

    def __init__(self, job: QueuedJob, latest: float) -> None:
        self.job, self.latest = job, latest
        self.state, self.engine = QUEUED, -1
        self.item: _Item | None = None  # its place in the urgent or flex heap


_Victim = tuple[float, int, _Entry]  # (-latest start, seq, entry): most slack on top


class SlackPolicy:
    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self.fleet = Fleet()
        self.service = ServiceModel(self.config.output_estimate)
        self.waiting = 0  # queued jobs
        self._entries: dict[str, _Entry] = {}
        self._asap: deque[_Entry] = deque()
        self._urgent: list[_Item] = []
        self._late: deque[_Entry] = deque()
        self._flex: list[_Item] = []
        self._turns: dict[tuple[bool, float, str], int] = {}
        self._victims: dict[Window, list[_Victim]] = {Window.FLEX: [], Window.STANDARD: []}
        self._running = {Window.FLEX: 0, Window.STANDARD: 0}
        self._urgent_on: list[int] = []  # asap and priority jobs running, per engine
        self._room: list[int] = []  # sequences standard and flex may fill beside them, per engine
        self._mates: dict[str, deque[_Entry]] = {}
        self._seq = 0
        targets = self.config.targets
        q = self.config.tie_quantum
        self._band = {w: q(w) for w in targets}
        self._band[Window.FLEX] = q(Window.STANDARD)  # aged flex competes in standard's bands
        self._flex_band = q(Window.FLEX)

    # -- the interface (see policy.Policy) -------------------------------------------------------

    def add_engine(self, spec: EngineSpec) -> None:
        self.fleet.add(spec.id, spec.capacity, self.config.flex_reserve)
        self.service.add_engine(spec)
        self._urgent_on.append(0)
        self._room.append(max(1, math.ceil(spec.capacity * self.config.urgent_share - 1e-9)))

    def occupy(self, job: RunningJob, engine_id: str, now: float) -> None:
        """Register a job already running (when building from a snapshot)."""
        stub = QueuedJob(job.id, job.window, now, job.deadline, 0, job.generated, None)
        entry = _Entry(stub, job.deadline - self.service.decode_seconds(job.remaining))
        self._entries[job.id] = entry
        self._run(entry, self.fleet.index(engine_id))

    def enqueue(self, job: QueuedJob, now: float) -> None:
        old = self._entries.get(job.id)
        if old is not None and old.state != GONE:
            raise ValueError(f"job {job.id!r} is already queued or running")
        entry = _Entry(job, self.service.latest_start(job))
        self._entries[job.id] = entry
        self.waiting += 1
        window = job.window
        if window is Window.ASAP:
            self._asap.append(entry)
        elif window is Window.FLEX and entry.latest - now >= self.config.flex_aging:
            self._push(self._flex, entry, self._flex_band, True)
        else:
            self._push(self._urgent, entry, self._band[window], False)
        if job.prefix is not None:
            mates = self._mates.get(job.prefix)
            if mates is None:
                mates = self._mates[job.prefix] = deque()
            while mates and mates[0].state != QUEUED:
                mates.popleft()
            mates.append(entry)

    def submit(self, job: QueuedJob, now: float) -> Decisions:
        if self.waiting == 0:  # nothing queued ahead: start it now if it may run now
            spare = job.window is Window.FLEX and not self._off_peak(now)
            e = self.fleet.choose(job.prefix, spare)
            if e >= 0 and job.id not in self._entries and self._fits(e, job.window):
                entry = _Entry(job, self.service.latest_start(job))
                self._entries[job.id] = entry
                self._run(entry, e)
                late = (job.id,) if entry.latest < now and job.window is not Window.ASAP else ()
                return Decisions((Start(job.id, self.fleet.ids[e]),), (), late)
        self.enqueue(job, now)
        return self.fill(now)

    def release(self, job_id: str, now: float, output_tokens: int | None = None) -> Decisions:
        """``job_id`` finished (or failed) and freed its sequence; fill it."""
        entry = self._entries.pop(job_id, None)
        if entry is None or entry.state != RUNNING:
            raise ValueError(f"job {job_id!r} is not running")
        self._stop(entry)
        if output_tokens is not None:
            self.service.observe(output_tokens)
        return self.fill(now) if self.waiting else NOTHING

    def fill(self, now: float) -> Decisions:
        """Start work on free sequences (preempting for asap if need be), most urgent first."""
        rec = Recorder()
        if self._flex:
            self._age(now)
        if self._asap:
            self._start_asap(rec)
        fleet, off_peak = self.fleet, None
        held: list[tuple[int, _Entry]] = []  # (queue, entry): no room beside urgent work now
        while self.waiting > 0 and fleet.roomiest() >= 0:
            entry = self._next_urgent(now, rec)
            source = _URGENT
            if entry is None and (entry := self._next_late()) is not None:
                source = _LATE
            spare = False
            if entry is None:
                if off_peak is None:
                    off_peak = self._off_peak(now)
                spare = not off_peak
                entry = self._peek_flex()
                if entry is None or (e := fleet.choose(entry.job.prefix, spare)) < 0:
                    break
                heapq.heappop(self._flex)
                source = _FLEX
            else:
                e = fleet.choose(entry.job.prefix)
            if not self._fits(e, entry.job.window):
                held.append((source, entry))
                if len(held) == _HOLD_LIMIT:
                    break
                continue
            self._begin(entry, e, rec)
            self._gather(entry.job.prefix, e, now, spare, rec)
        for source, entry in reversed(held):  # back in their places
            if source == _LATE or entry.item is None:
                self._late.appendleft(entry)
            else:
                heapq.heappush(self._flex if source == _FLEX else self._urgent, entry.item)
        return rec.decisions()

    def _fits(self, e: int, window: Window) -> bool:
        """May a job of ``window`` start on engine ``e`` (see ``urgent_share``)?"""
        if window is Window.ASAP or window is Window.PRIORITY or not self._urgent_on[e]:
            return True
        fleet = self.fleet
        return fleet.capacity[e] - fleet.free[e] < self._room[e]

    def _off_peak(self, now: float) -> bool:
        return bool(self.config.off_peak_hours) and self.config.is_off_peak(now)

    # -- queues ------------------------------------------------------------------------------------

    def _push(self, heap: list[_Item], entry: _Entry, band: float, flex: bool) -> None:
        level = (entry.latest // band) * band
        key = (flex, level, entry.job.tenant)
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        self._seq += 1
        entry.item = (level, turn, entry.latest, self._seq, entry)
        heapq.heappush(heap, entry.item)

    def _age(self, now: float) -> None:
        horizon = now + self.config.flex_aging
        flex = self._flex
        while flex and flex[0][0] < horizon:
            entry = heapq.heappop(flex)[-1]
            if entry.state == QUEUED:
                self._push(self._urgent, entry, self._band[Window.FLEX], False)

    def _next_urgent(self, now: float, rec: Recorder) -> _Entry | None:
        urgent = self._urgent
        while urgent:
            entry = heapq.heappop(urgent)[-1]
            if entry.state != QUEUED:
                continue
            if entry.latest < now:
                self._late.append(entry)
                rec.miss(entry.job.id)
                continue
            return entry
        return None

    def _next_late(self) -> _Entry | None:
        late = self._late
        while late:
            entry = late.popleft()
            if entry.state == QUEUED:
                return entry
        return None

    def _peek_flex(self) -> _Entry | None:
        flex = self._flex
        while flex and flex[0][-1].state != QUEUED:
            heapq.heappop(flex)
        return flex[0][-1] if flex else None

    def _gather(self, prefix: str | None, e: int, now: float, spare: bool, rec: Recorder) -> None:
        """Fill engine ``e``'s free sequences with queued jobs sharing ``prefix`` that may run now."""
        fleet = self.fleet
        if prefix is None or fleet.free[e] == 0 or not (mates := self._mates.get(prefix)):
            return
        while mates and fleet.free[e] > 0:
            mate = mates[0]
            if mate.state != QUEUED:
                mates.popleft()
                continue
            window = mate.job.window
            if window is Window.FLEX:
                if spare and fleet.free[e] <= fleet.reserve[e]:
                    return
            elif window is Window.ASAP or mate.latest < now:
                return
            if not self._fits(e, window):
                return
            mates.popleft()
            self._begin(mate, e, rec)

    # -- running jobs --------------------------------------------------------------------------------

    def _begin(self, entry: _Entry, e: int, rec: Recorder) -> None:
        self.waiting -= 1
        self._run(entry, e)
        rec.start(entry.job.id, self.fleet.ids[e])

    def _run(self, entry: _Entry, e: int) -> None:
        entry.state, entry.engine = RUNNING, e
        self.fleet.take(e)
        window = entry.job.window
        if window is Window.ASAP or window is Window.PRIORITY:
            self._urgent_on[e] += 1
        elif window is Window.FLEX or window is Window.STANDARD:
            self._running[window] += 1
            victims = self._victims[window]
            self._seq += 1
            heapq.heappush(victims, (-entry.latest, self._seq, entry))
            if len(victims) > 2 * self._running[window] + 64:
                victims[:] = [v for v in victims if v[-1].state == RUNNING]
                heapq.heapify(victims)

    def _stop(self, entry: _Entry) -> None:
        entry.state = GONE
        window = entry.job.window
        if window is Window.ASAP or window is Window.PRIORITY:
            self._urgent_on[entry.engine] -= 1
        elif window is Window.FLEX or window is Window.STANDARD:
            self._running[window] -= 1
        self.fleet.give(entry.engine)

    def _start_asap(self, rec: Recorder) -> None:
        asap = self._asap
        while asap:
            entry = asap[0]
            if entry.state != QUEUED:
                asap.popleft()
                continue
            e = self.fleet.choose(entry.job.prefix)
            if e < 0:
                victim = self._victim()
                if victim is None:
                    return  # every sequence runs asap or priority work: wait for one to finish
                e = victim.engine
                self._stop(victim)
                del self._entries[victim.job.id]
                rec.preempt(victim.job.id, self.fleet.ids[e])
            asap.popleft()
            self._begin(entry, e, rec)

    def _victim(self) -> _Entry | None:
        """The running job that loses least by yielding: the flex or standard job with the most
        slack. Unaged flex always has more slack than any standard job, so flex goes first."""
        flex, standard = self._top(Window.FLEX), self._top(Window.STANDARD)
        if flex is not None and (standard is None or flex.latest >= standard.latest):
            chosen = Window.FLEX
        elif standard is not None:
            chosen = Window.STANDARD
        else:
            return None
        return heapq.heappop(self._victims[chosen])[-1]

    def _top(self, window: Window) -> _Entry | None:
        victims = self._victims[window]
        while victims and victims[0][-1].state != RUNNING:
            heapq.heappop(victims)
        return victims[0][-1] if victims else None
