"""``Periodic``: a background task that does one thing every so often (prune keys, finalize batches,
relay streamed pieces). A failed round is logged and the next one comes as usual: an error never
ends the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class Periodic:
    """Subclasses define ``tick``; ``start`` runs it every ``seconds`` (first after ``seconds``,
    or at once with ``at_once``) on the running loop until ``stop``."""

    def __init__(self, name: str, seconds: float, *, at_once: bool = False) -> None:
        self._name, self._seconds, self._at_once = name, seconds, at_once
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def tick(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        if not self._at_once:
            await asyncio.sleep(self._seconds)
        while True:
            try:
                await self.tick()
            except Exception:  # retried next round; it must not end the loop
                log.exception("%s failed", self._name)
            await asyncio.sleep(self._seconds)
