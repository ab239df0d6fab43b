"""How long the service remembers what it must: idempotency keys are kept ``idempotency_hours``
(72 by default), then pruned by age in the store, once at start-up and then every ``every`` seconds.

The pruner is its own task beside the dispatcher, so scheduling is untouched by it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from leeway.periodic import Periodic
from leeway.store import Jobs

log = logging.getLogger(__name__)


class KeyPruner(Periodic):
    def __init__(
        self,
        store: Jobs,
        hours: float,
        *,
        every: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("leeway-key-pruner", every)
        self._store, self._keep, self._clock = store, hours * 3600.0, clock

    async def prune(self) -> int:
        """Forget keys older than the retention period; how many were forgotten."""
        return await self._store.prune_keys(before=self._clock() - self._keep)

    async def start(self) -> None:
        """Prune now, then keep pruning in the background."""
        await self.prune()
        await super().start()

    async def tick(self) -> None:
        if count := await self.prune():
            log.info("forgot %d idempotency keys", count)
