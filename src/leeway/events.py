"""In-process channel of job progress, keyed by job id: text deltas while a job runs, then the job in
its final state. The dispatcher publishes; blocking requests and streams subscribe.

A subscriber's queue is unbounded and filled without waiting, so one that falls behind or goes away
never slows the engine. Nothing here is needed for correctness: the store is the truth, and
subscribers re-read it when told nothing for a while (another process may have finished the job).

The dispatcher publishes from its own thread and loop; a subscriber's queue lives on the loop that
subscribed, and every update reaches it through that loop, in the order it was published. Each delta
carries its number among the job's pieces (``seq``, earlier runs' pieces included): a job may be
relayed from the store as well (``leeway.api.relay``: it runs in another process, or moves between
processes), and a subscriber passes on each piece once and in order, whichever source it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

from leeway.jobs import Job

Update = str | Job  # a text delta, or the job once final (always the last update)
_Queued = tuple[int, str] | Job  # a delta with its seq, or the final job


class Subscription:
    def __init__(self, events: JobEvents, job_id: str) -> None:
        self._events, self.job_id = events, job_id
        self.queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def put(self, update: _Queued) -> None:
        """From any thread: queue ``update`` on the subscriber's loop (if it still runs)."""
        with contextlib.suppress(RuntimeError):  # closed: nobody is left to read it
            self._loop.call_soon_threadsafe(self.queue.put_nowait, update)

    async def updates(
        self,
        recheck: Callable[[], Awaitable[Job | None]],
        seconds: float = 2.0,
        start: int | None = None,
    ) -> AsyncIterator[Update]:
        """Deltas, then the final job. ``recheck`` reads the store when nothing came for ``seconds``
        and returns the job if it is final. ``start``: the seq of the first piece the reader lacks
        (None: from the first that comes); a piece already passed on is dropped, one that comes
        early waits for those before it (the final job ends the stream with the whole text)."""
        early: dict[int, str] = {}
        try:
            while True:
                try:
                    async with asyncio.timeout(seconds):
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
                if start is None:
                    start = seq
                if seq >= start:
                    early[seq] = text
                while start in early:
                    yield early.pop(start)
                    start += 1
        finally:
            self.close()

    def close(self) -> None:
        self._events.unsubscribe(self)


class JobEvents:
    def __init__(self) -> None:
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)
        # subscribers come and go on the API's thread, the dispatcher publishes on its own
        self._lock = threading.Lock()

    def subscribe(self, job_id: str) -> Subscription:
        """Called on the loop that will read the updates."""
        sub = Subscription(self, job_id)
        with self._lock:
            self._subs[job_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.job_id]

    def watched(self, job_id: str) -> bool:
        return job_id in self._subs

    def publish_delta(self, job_id: str, text: str, seq: int) -> None:
        """``text`` is the job's piece number ``seq`` (from 0)."""
        with self._lock:
            for sub in self._subs.get(job_id, ()):
                sub.put((seq, text))

    def publish_final(self, job: Job) -> None:
        """The last update: the job's subscriptions end here (even one whose reader went away
        without closing it)."""
        with self._lock:
            for sub in self._subs.pop(job.id, ()):
                sub.put(job)
