"""Finishes grouped into one statement: every ``finish`` that arrives while the previous group is
being written joins the next one (one round trip, one commit, one run of the statement triggers
for the lot), as SQLite's writer groups its commits. A caller hears back once its group committed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg

from leeway.store.postgres_pool import Pools

_MAX_GROUP = 256
_COLUMNS = (
    *("id", "token", "status", "output_text", "finish", "stop_sequence", "piece_sizes"),
    *("output_calls", "input_tokens", "output_tokens", "error", "now", "input_price"),
    *("output_price", "output_reasoning", "reasoning_tokens"),
)


class FinishGroups:
    def __init__(self, db: Pools) -> None:
        self._db = db
        self._writing: set[asyncio.Task[None]] = set()
        self._waiting: dict[
            asyncio.AbstractEventLoop, list[tuple[Mapping[str, Any], asyncio.Future[Any]]]
        ] = {}

    async def finish(self, params: Mapping[str, Any]) -> asyncpg.Record | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[asyncpg.Record | None] = loop.create_future()
        waiting = self._waiting.setdefault(loop, [])
        waiting.append((params, future))
        if len(waiting) == 1:  # the first of a group starts its write: others join till it runs
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # a task of its own: a caller cancelled while waiting does not stop the others' write
        task = loop.create_task(self._write(loop))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, loop: asyncio.AbstractEventLoop) -> None:
        await asyncio.sleep(0)
        group, self._waiting[loop] = (
            self._waiting[loop][:_MAX_GROUP],
            self._waiting[loop][_MAX_GROUP:],
        )
        if self._waiting[loop]:
            self._start(loop)
        arrays = {c: [p[c] for p, _ in group] for c in _COLUMNS}
        try:
            rows = await self._db.rows("finish_many", arrays)
        except Exception as e:  # noqa: BLE001 - handed to every caller in the group
            for _, future in group:
                if not future.done():
                    future.set_exception(e)
            return
        held = {(r["id"], r["held_token"]): r for r in rows}  # a stale token: None
        for params, future in group:
            if not future.done():
                future.set_result(held.get((params["id"], params["token"])))
