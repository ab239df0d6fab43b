"""*Batches*: every batch (a tenant's key: its tenant's) newest first, 50 to a page, each with a
progress bar, its counts per state and its times, and a cancel button while it runs; a batch's own
page lists its items 100 at a time (a 100,000-item batch is never rendered at once). Counts come
from the batch's row (kept by the store's trigger), so a page costs the same at any size."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from leeway.api.dashboard.render import page
from leeway.api.dashboard.sessions import PATH, Viewer, check_csrf, read_form
from leeway.api.params import Params
from leeway.batches import Batch
from leeway.errors import NotFound
from leeway.store import BatchResults, BatchStore, DashboardStore

BATCHES_PER_PAGE = 50
ITEMS_PER_PAGE = 100


class BatchData(BatchStore, BatchResults, DashboardStore, Protocol):
    pass


def running(batch: Batch) -> bool:
    return batch.finished_at is None and batch.failed_at is None


class BatchPages:
    def __init__(self, store: BatchData, clock: Callable[[], float] = time.time) -> None:
        self._store, self._clock = store, clock

    async def list(self, request: Request, viewer: Viewer) -> Response:
        before = Params(request.query_params, ("before",)).text("before")
        if viewer.tenant is None:
            found = await self._store.all_batches(BATCHES_PER_PAGE + 1, before)
        else:
            found = await self._store.list_batches(
                viewer.tenant, BATCHES_PER_PAGE + 1, before_id=before
            )
        batches = found[:BATCHES_PER_PAGE]
        older = batches[-1].id if len(found) > BATCHES_PER_PAGE else None
        return page(
            "batches.html",
            viewer,
            batches=batches,
            older=older,
            refresh=5 if any(running(b) for b in batches) else None,
        )

    async def one(self, request: Request, viewer: Viewer) -> Response:
        batch = await self._batch(request, viewer)
        q = Params(request.query_params, ("after",))
        after = q.whole("after", -1, lo=-1, hi=10**9)
        found = await self._store.item_states(batch.id, after, ITEMS_PER_PAGE + 1)
        items = found[:ITEMS_PER_PAGE]
        return page(
            "batch.html",
            viewer,
            batch=batch,
            items=items,
            next_after=items[-1].index if len(found) > ITEMS_PER_PAGE else None,
            refresh=5 if running(batch) else None,
        )

    async def cancel(self, request: Request, viewer: Viewer) -> Response:
        check_csrf(viewer, await read_form(request))
        batch = await self._batch(request, viewer)
        await self._store.cancel_batch(batch.tenant, batch.id, self._clock())
        return RedirectResponse(f"{PATH}/batches/{batch.id}", 303)

    async def _batch(self, request: Request, viewer: Viewer) -> Batch:
        batch_id = request.path_params["id"]
        if viewer.tenant is None:
            batch = await self._store.find_batch(batch_id)
        else:
            batch = await self._store.get_batch(viewer.tenant, batch_id)
        if batch is None:
            raise NotFound(f"No batch with id '{batch_id}' found.", param="id")
        return batch
