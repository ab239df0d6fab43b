"""Streaming jobs that run in other processes: one poller per API process reads, in one query, the
pieces that dispatchers appended to the store (``Store.append_deltas``) for every job followed here,
and publishes them to ``JobEvents`` with their numbers, so each subscriber passes each piece on once
and in order, whether it came from here or from a dispatcher in this process. A followed job that
turns final is published final (its text is then whole in the job row): streams end without
waiting for their recheck of the store.

It runs on the API's loop; ``follow`` is called there too. A job stops being followed once it is
final, gone, or nobody here watches it any more.
"""

from __future__ import annotations

import logging
import sys

from leeway.events import JobEvents
from leeway.jobs import Job, split
from leeway.periodic import Periodic
from leeway.store import Store

log = logging.getLogger(__name__)


class Relay(Periodic):
    def __init__(self, store: Store, events: JobEvents, seconds: float = 0.1) -> None:
        super().__init__("leeway-relay", seconds)
        self._store, self._events = store, events
        self._followed: dict[str, tuple[Job, int]] = {}  # job id -> (job, next seq to read)

    def follow(self, job: Job, start: int | None) -> None:
        """Relay ``job``'s pieces from number ``start`` on (None: none, a blocking request waits
        only for the final job), then the final job, to its subscribers here, who must have
        subscribed already. Does nothing until started."""
        if not self.running:
            return
        start = sys.maxsize if start is None else start
        held = self._followed.get(job.id)
        self._followed[job.id] = (job, start if held is None else min(held[1], start))

    async def tick(self) -> None:
        """Read and publish what the followed jobs stored since the last poll."""
        for job_id in [j for j in self._followed if not self._events.watched(j)]:
            del self._followed[job_id]
        if not self._followed:
            return
        after = {job_id: seq for job_id, (_, seq) in self._followed.items()}
        found = await self._store.deltas(after)
        for job_id, asked in after.items():
            held = self._followed.get(job_id)
            if held is None:
                continue
            job, seq = held
            got = found.get(job_id)
            if got is None:  # deleted: its subscribers find out on their recheck
                del self._followed[job_id]
                continue
            for n, text in got.pieces:
                self._events.publish_delta(job_id, text, n)
            after_these = got.pieces[-1][0] + 1 if got.pieces else asked
            if got.status.is_final:
                del self._followed[job_id]
                if (final := await self._store.get(job.tenant, job_id)) is not None:
                    self._last_pieces(final, min(seq, after_these))
                    self._events.publish_final(final)
            elif seq == asked:  # else a follower that came meanwhile needs earlier pieces
                self._followed[job_id] = (job, after_these)

    def _last_pieces(self, final: Job, start: int) -> None:
        """The pieces not stored before the job finished, as they were streamed (so the stream is
        the one a replay of the final job gives, event for event)."""
        if final.output is not None:
            pieces = split(final.output.text, final.output.deltas)
            for n in range(start, len(pieces)):
                self._events.publish_delta(final.id, pieces[n], n)
