"""A job's text as a numbered log of pieces: who writes it, and how anyone follows it.

Words: an engine yields *chunks*; each chunk's text is one *piece* of its job's log, numbered
(``seq``) from 0 over every run of the job (a run that resumes after yielding its engine goes on
where the last left off); the lengths of a job's pieces are its *piece sizes*, stored with its
output (and with its partial text when it yields), so its stream can be replayed event for event.

- **Writing.** The dispatcher ``begin``\\s a run with the pieces earlier runs made, ``append``\\s a
  piece per chunk and ``end``\\s the run (with the final job, or without: it yielded). This
  process's ``PieceLog`` holds the pieces of the runs here. When other processes may share the
  store, a ``Publisher`` appends every run's new pieces to the store in one write a flush.
- **Reading.** ``follow(job, start)`` gives a job's pieces from number ``start`` on, then the job
  once final, wherever it runs: from this process's log while it runs here, else from the store
  (its stored output or partial text, then the pieces a ``Relay`` reads from the store as another
  process appends them). A follower passes each piece on once and in order, whichever path it came
  by, and reads the store when told nothing for a while (the job may have finished elsewhere).

The log is written on the dispatcher's loop and read from others: its lock and the hand-over of
each update to a follower's loop are the only cross-thread steps, and they are here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from leeway.jobs import Job
from leeway.periodic import Periodic
from leeway.store import Claim, Jobs, Sharing

log = logging.getLogger(__name__)

Update = str | Job  # a piece of text, or the job once final (always the last update)
_Queued = tuple[int, str] | Job  # a piece with its number, or the final job
RECHECK_SECONDS = 2.0


def split(text: str, sizes: tuple[int, ...]) -> list[str]:
    """``text`` cut into pieces of ``sizes``; what follows them is no piece (a tail a run held back
    when it yielded)."""
    pieces, at = [], 0
    for size in sizes:
        pieces.append(text[at : at + size])
        at += size
    return pieces


class Follower:
    """One reader of one job: updates reach its queue through its own loop, in order."""

    def __init__(self, log: PieceLog, job_id: str) -> None:
        self._log, self.job_id = log, job_id
        self.queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def put(self, update: _Queued) -> None:
        """From any thread: queue ``update`` on the follower's loop (if it still runs)."""
        with contextlib.suppress(RuntimeError):  # closed: nobody is left to read it
            self._loop.call_soon_threadsafe(self.queue.put_nowait, update)

    async def updates(
        self, recheck: Callable[[], Awaitable[Job | None]], start: int | None
    ) -> AsyncIterator[Update]:
        """Pieces from number ``start`` on (None: from the first that comes), then the final job.
        A piece passed on already is dropped; one that comes early waits for those before it.
        ``recheck`` reads the store when nothing came for a while: the job, if final."""
        early: dict[int, str] = {}
        try:
            while True:
                try:
                    async with asyncio.timeout(RECHECK_SECONDS):
                        update = await self.queue.get()
                except TimeoutError:
                    if (final := await recheck()) is not None:
                        yield final
                        return
                    continue
                if isinstance(update, Job):
                    yield update
                    return
                seq, text = update
                start = seq if start is None else start
                if seq >= start:
                    early[seq] = text
                while start in early:
                    yield early.pop(start)
                    start += 1
        finally:
            self.close()

    def close(self) -> None:
        self._log.unsubscribe(self)


@dataclass(eq=False)
class _Run:
    claim: Claim
    pieces: list[str]  # every piece so far, earlier runs' included
    stored: int = 0  # pieces in the store already (when publishing), from the first


@dataclass
class PieceLog:
    """This process's log: the pieces of the runs here, and who follows which job."""

    _runs: dict[str, _Run] = field(default_factory=dict)
    _followers: dict[str, set[Follower]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- written by the dispatcher, on its loop -------------------------------------------------

    def begin(self, claim: Claim) -> list[str]:
        """A run of ``claim``'s job starts here; returns the pieces its earlier runs made."""
        job = claim.job
        earlier = split(job.partial_text, job.partial_piece_sizes)
        with self._lock:
            self._runs[job.id] = _Run(claim, list(earlier))
        return earlier

    def append(self, job_id: str, text: str) -> None:
        """The run's next piece, passed to every follower of the job."""
        with self._lock:
            run = self._runs[job_id]
            run.pieces.append(text)
            for follower in self._followers.get(job_id, ()):
                follower.put((len(run.pieces) - 1, text))

    def pieces(self, job_id: str) -> list[str] | None:
        """The pieces so far of a job running here (or yielding: until its progress is stored);
        None if it does not run here."""
        with self._lock:
            run = self._runs.get(job_id)
            return list(run.pieces) if run is not None else None

    def end(self, job_id: str, final: Job | None = None) -> None:
        """The run is over: with the job ``final`` (its followers get it and are done), or
        without (it yielded and its progress is stored: later runs go on from there)."""
        with self._lock:
            self._runs.pop(job_id, None)
            if final is not None:
                self._publish_final(final)

    def unstored(self) -> list[tuple[Claim, int, list[str]]]:
        """The runs here with pieces not yet in the store: (claim, number of the first, them)."""
        with self._lock:
            return [
                (r.claim, r.stored, r.pieces[r.stored :])
                for r in self._runs.values()
                if len(r.pieces) > r.stored
            ]

    def stored(self, job_id: str, upto: int) -> None:
        """The store holds the job's pieces below number ``upto``."""
        with self._lock:
            if (run := self._runs.get(job_id)) is not None:
                run.stored = max(run.stored, upto)

    # -- read by followers, on theirs ----------------------------------------------------------

    def subscribe(self, job_id: str) -> tuple[Follower, list[str] | None]:
        """Follow ``job_id`` from now on, and take the pieces it has so far if it runs here (every
        piece is in one or the other, never in neither)."""
        follower = Follower(self, job_id)
        with self._lock:
            self._followers.setdefault(job_id, set()).add(follower)
            run = self._runs.get(job_id)
            return follower, list(run.pieces) if run is not None else None

    def unsubscribe(self, follower: Follower) -> None:
        with self._lock:
            followers = self._followers.get(follower.job_id)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._followers[follower.job_id]

    def followed(self, job_id: str) -> bool:
        return job_id in self._followers

    def publish(self, job_id: str, seq: int, text: str) -> None:
        """Piece ``seq`` of a job that runs elsewhere, to its followers here."""
        with self._lock:
            for follower in self._followers.get(job_id, ()):
                follower.put((seq, text))

    def publish_final(self, job: Job) -> None:
        """The job, final (finished elsewhere, or cancelled): its followers here are done."""
        with self._lock:
            self._publish_final(job)

    def _publish_final(self, job: Job) -> None:
        for follower in self._followers.pop(job.id, ()):
            follower.put(job)


class Following:
    """A job followed: iterate for its updates; ``aclose`` lets go of it (iterated or not)."""

    def __init__(self, follower: Follower, updates: AsyncGenerator[Update, None]) -> None:
        self._follower, self._updates = follower, updates

    def __aiter__(self) -> Following:
        return self

    async def __anext__(self) -> Update:
        return await self._updates.__anext__()

    async def aclose(self) -> None:
        self._follower.close()
        await self._updates.aclose()


def follow(job: Job, start: int | None, log: PieceLog, store: Jobs, relay: Relay) -> Following:
    """``job``'s pieces from number ``start`` on (None: none, only the final job), then the job
    once final, wherever it runs. Subscribed at once: a job created after this call misses
    nothing."""
    follower, here = log.subscribe(job.id)
    return Following(follower, _follow(job, start, follower, here, store, relay))


async def _follow(
    job: Job,
    start: int | None,
    follower: Follower,
    here: list[str] | None,
    store: Jobs,
    relay: Relay,
) -> AsyncGenerator[Update, None]:
    async def final() -> Job | None:
        current = await store.get(job.tenant, job.id)
        return current if current is not None and current.status.is_final else None

    try:
        if here is None:  # not running here: what the store holds, then what others store
            current = await store.get(job.tenant, job.id)
            if current is None:
                return
            if current.status.is_final:
                if start is not None and current.output is not None:
                    sizes = current.output.piece_sizes
                    for piece in split(current.output.text, sizes)[start:]:
                        yield piece
                yield current
                return
            here = split(current.partial_text, current.partial_piece_sizes)
            relay.follow(job, None if start is None else max(start, len(here)))
        if start is not None:
            for piece in here[start:]:
                yield piece
            start = max(start, len(here))
        async for update in follower.updates(final, start):
            if start is not None or isinstance(update, Job):
                yield update
    finally:
        follower.close()


class Publisher(Periodic):
    """Appends every run's new pieces to the store in one write a flush, on the dispatcher's loop:
    a slow store makes pieces wait for the next write, never the engines (the write runs beside
    them). Only a run still holding its job's lease stores anything."""

    def __init__(self, log: PieceLog, store: Sharing, seconds: float = 0.05) -> None:
        super().__init__("leeway-pieces-publisher", seconds)
        self._log, self._store = log, store

    async def tick(self) -> None:
        runs = self._log.unstored()
        if not runs:
            return
        stored = await self._store.append_pieces(runs)
        for claim, first, pieces in runs:
            if claim.job.id in stored:
                self._log.stored(claim.job.id, first + len(pieces))


class Relay(Periodic):
    """Reads, in one query, the pieces other processes stored for every job followed here whose run
    is elsewhere, and passes them to the job's followers with their numbers; a followed job that
    turns final is passed on final (its text whole in its row: streams end without waiting for
    their recheck). Runs on the followers' loop; a job stops being followed once it is final, gone,
    or nobody here follows it. Not started (a process alone on its store): relays nothing."""

    def __init__(self, log: PieceLog, store: Jobs, sharing: Sharing, seconds: float = 0.1):
        super().__init__("leeway-relay", seconds)
        self._log, self._store, self._sharing = log, store, sharing
        self._followed: dict[str, tuple[Job, int]] = {}  # job id -> (job, next seq to read)

    def follow(self, job: Job, start: int | None) -> None:
        """Relay ``job``'s pieces from number ``start`` on (None: none, only the final job)."""
        if not self.running:
            return
        start = sys.maxsize if start is None else start
        held = self._followed.get(job.id)
        self._followed[job.id] = (job, start if held is None else min(held[1], start))

    async def tick(self) -> None:
        for job_id in [j for j in self._followed if not self._log.followed(j)]:
            del self._followed[job_id]
        if not self._followed:
            return
        after = {job_id: seq for job_id, (_, seq) in self._followed.items()}
        found = await self._sharing.pieces(after)
        for job_id, asked in after.items():
            if (held := self._followed.get(job_id)) is None:
                continue
            job, seq = held
            if (got := found.get(job_id)) is None:  # deleted: its followers see on their recheck
                del self._followed[job_id]
                continue
            for n, text in got.pieces:
                self._log.publish(job_id, n, text)
            after_these = got.pieces[-1][0] + 1 if got.pieces else asked
            if got.status.is_final:
                del self._followed[job_id]
                if (final := await self._store.get(job.tenant, job_id)) is not None:
                    self._last_pieces(final, min(seq, after_these))
                    self._log.publish_final(final)
            elif seq == asked:  # else a follower that came meanwhile needs earlier pieces
                self._followed[job_id] = (job, after_these)

    def _last_pieces(self, final: Job, start: int) -> None:
        """The pieces not stored before the job finished, as they were streamed (so the stream is
        the one a replay of the final job gives, event for event)."""
        if final.output is not None:
            pieces = split(final.output.text, final.output.piece_sizes)
            for n in range(start, len(pieces)):
                self._log.publish(final.id, n, pieces[n])
