"""The dialect boundary: what the one store (``leeway.store.SqlStore``) needs of a database.

The store knows *which* named query to run and with what; a driver knows *how*, on its dialect
(``sqlite``, ``postgres``). Both dialects ship the same query names (``sql/<dialect>/*.sql``) taking
the same parameters: a list parameter is an array on PostgreSQL and JSON text on SQLite, which its
driver binds. Besides running queries, a driver offers the hooks where the dialects really differ:

- ``transaction(body)``: one transaction around ``body``, an async function of ``Queries`` that
  awaits nothing but them (SQLite runs it on its one writer thread, inside a group commit;
  PostgreSQL on a pooled connection);
- ``stage(rows)``: a batch's items written in bulk and unseen until the batch's commit (SQLite: its
  group writer, items queued but unseen; PostgreSQL: COPY, items 'staged');
- ``finish(params)``: a job's final state (PostgreSQL groups concurrent finishes into one
  statement; SQLite's writer groups commits anyway);
- ``listen(on_queued)``: call back whenever any process queues work of a model (PostgreSQL:
  LISTEN/NOTIFY; SQLite: nothing to listen to, dispatchers poll).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Params = Mapping[str, Any]
NO_PARAMS: Params = {}


class Queries(Protocol):
    """Named queries, run by name with their parameters."""

    async def rows(self, name: str, params: Params = NO_PARAMS) -> list[Any]:
        """Every row the query returns (a row reads by column name and by position)."""

    async def row(self, name: str, params: Params = NO_PARAMS) -> Any | None:
        """The first row, or None."""

    async def run(self, name: str, params: Params = NO_PARAMS) -> int:
        """How many rows the statement changed."""


class Driver(Queries, Protocol):
    dialect: str

    async def transaction(self, body: Callable[[Queries], Coroutine[Any, Any, T]]) -> T:
        """Run ``body`` in one transaction: committed if it returns, rolled back if it raises."""

    async def stage(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write batch items (``job_row`` plus ``batch_index``) unseen until their batch commits."""

    async def finish(self, params: Params) -> Any | None:
        """Run ``finish``: the job's row after it, or None if the lease is no longer held."""

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        """Call ``on_queued(model)`` on the caller's loop whenever work of ``model`` becomes queued
        in any process (where the dialect can tell; else never)."""

    async def close(self) -> None: ...


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, without an event loop: a transaction body
    on SQLite's writer thread, whose queries complete at once."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a transaction body may await only its own queries")
