"""In-process notice of jobs reaching their final state, keyed by job id.

The dispatcher publishes; a blocking request waits. A waiter that gives up (timeout, disconnect)
leaves nothing behind. Nothing here is needed for correctness: the store is the truth, and waiters
re-read it; this only saves them polling.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from leeway.jobs import Job


class JobEvents:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[Job]]] = defaultdict(set)

    async def wait_final(self, job_id: str, seconds: float) -> Job | None:
        """The job once final, or None if it did not become final (here) within ``seconds``."""
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        waiters = self._waiters[job_id]
        waiters.add(future)
        try:
            async with asyncio.timeout(seconds):
                return await future
        except TimeoutError:
            return None
        finally:
            waiters.discard(future)
            if not waiters and self._waiters.get(job_id) is waiters:
                del self._waiters[job_id]

    def publish_final(self, job: Job) -> None:
        for future in self._waiters.pop(job.id, ()):
            if not future.done():
                future.set_result(job)
