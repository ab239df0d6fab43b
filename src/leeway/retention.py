"""How long the service remembers what it must: idempotency keys are kept ``idempotency_hours``
(72 by default), then pruned by age in the store, once at start-up and then every ``every`` seconds.

The pruner is its own task beside the dispatcher, so scheduling is untouched by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from leeway.store import Jobs

log = logging.getLogger(__name__)


class KeyPruner:
    def __init__(
        self,
        store: Jobs,
        hours: float,
        *,
        every: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._keep, self._every, self._clock = store, hours * 3600.0, every, clock
        self._task: asyncio.Task[None] | None = None

    async def prune(self) -> int:
        """Forget keys older than the retention period; how many were forgotten."""
        return await self._store.prune_keys(before=self._clock() - self._keep)

    async def start(self) -> None:
        """Prune now, then keep pruning in the background."""
        await self.prune()
        self._task = asyncio.create_task(self._loop(), name="leeway-key-pruner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                if count := await self.prune():
                    log.info("forgot %d idempotency keys", count)
            except Exception:  # a failed prune is retried next time; it must not end the loop
                log.exception("pruning idempotency keys failed")
