"""The SQLite store's connections: a reader per thread, and one writer thread that commits in groups.

Every write that arrives while the previous commit is syncing joins the next transaction (each in its
own savepoint, so one failing write does not undo the others). A caller hears back only after its
write is committed and synced.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from leeway.store.queries import migrations

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]
Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]

_MAX_GROUP = 2048  # writes in one transaction at most


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in migrations("sqlite"):
        if number > version:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")


class Reader:
    """Read connections, one per thread that reads (the dispatcher reads on its own thread while
    the API reads on the server's): a connection must not run two statements from two threads at
    once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []

    def execute(self, sql: str, params: Any = (), /) -> sqlite3.Cursor:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self._path)
            with self._lock:
                self._opened.append(conn)
        return conn.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


class GroupWriter:
    """One thread, one connection; runs queued writes in shared transactions."""

    def __init__(self, path: Path, at_start: Write | None = None) -> None:
        """``at_start``: a write run once, in a transaction of its own, after the migrations."""
        self._conn = connect(path)
        migrate(self._conn)
        if at_start is not None:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                at_start(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        self._queue: queue.SimpleQueue[tuple[Write, asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="leeway-sqlite-writer", daemon=True)
        self._thread.start()

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            group = [item]
            while len(group) < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(nxt)
            self._commit(group)

    def _commit(self, group: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        outcomes: list[Outcome] = []
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for fn, future in group:
                self._conn.execute("SAVEPOINT w")
                try:
                    outcomes.append((future, fn(self._conn), None))
                    self._conn.execute("RELEASE w")
                except Exception as e:  # noqa: BLE001 - handed to the caller that wrote it
                    self._conn.execute("ROLLBACK TO w")
                    self._conn.execute("RELEASE w")
                    outcomes.append((future, None, e))
            self._conn.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - the whole group failed: tell every caller
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            outcomes = [(future, None, e) for _, future in group]
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:  # writers on several loops (the API's, the dispatcher's)
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a loop that has closed waits for nothing
                loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list[Outcome]) -> None:
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
