"""The embedded store: one SQLite file in WAL mode, ``synchronous=FULL``.

All writes go through one writer thread that commits in groups: every write that arrives while the
previous commit is syncing joins the next transaction (each in its own savepoint, so one failing write
does not undo the others). A caller hears back only after its write is committed and synced, so a
client is never told "accepted" for a job that a crash could lose, and durability costs one sync per
group instead of one per request. Reads use a separate connection and never wait for the writer.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from leeway.errors import IdempotencyMismatch
from leeway.jobs import Job, JobError, Window
from leeway.store import Claim, IdempotencyKey, Result
from leeway.store.queries import load_queries, migrations
from leeway.store.rows import error_json, job_row, result_row, row_job
from leeway.store.sqlite_outbox import SqliteOutbox

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]

Q = load_queries("sqlite")
_MAX_GROUP = 2048  # writes in one transaction at most
_EXHAUSTED = JobError("attempts_exhausted", "The job was claimed too many times without finishing.")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in migrations("sqlite"):
        if number > version:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")


class _GroupWriter:
    """One thread, one connection; runs queued writes in shared transactions."""

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)
        _migrate(self._conn)
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
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
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
        loop = group[0][1].get_loop()
        loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


class _Taken(Exception):  # a signal inside the writer, never seen outside this module
    def __init__(self, row: sqlite3.Row) -> None:
        super().__init__("idempotency key taken")
        self.row = row


def _holder(row: sqlite3.Row, idempotency: IdempotencyKey) -> Job:
    if row["key_fingerprint"] != idempotency.fingerprint:
        raise IdempotencyMismatch(_MISMATCH.format(key=idempotency.key))
    return row_job(row)


_MISMATCH = (
    "The Idempotency-Key '{key}' was already used with a different request (another body or "
    "another endpoint). Use a new key for a new request, or resend exactly the same request."
)


class SqliteStore:
    """Implements ``Store`` and ``KeyStore`` on one SQLite file."""

    def __init__(self, path: Path, *, lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _GroupWriter(path)
        self._reader = _connect(path)
        self._lease = lease_seconds
        self._max_attempts = max_attempts

    async def create(self, job: Job, idempotency: IdempotencyKey | None = None) -> Job:
        row = job_row(job)
        if idempotency is None:
            await self._writer.write(lambda c: c.execute(Q["insert_job"], row))
            return job
        key = {"tenant": job.tenant, "key": idempotency.key}
        reservation = {**key, "fingerprint": idempotency.fingerprint, "job_id": job.id}

        def insert(c: sqlite3.Connection) -> None:
            c.execute(Q["insert_job"], row)
            if c.execute(
                Q["insert_idempotency_key"], {**reservation, "now": job.created_at}
            ).rowcount:
                return
            # The key is taken (UNIQUE (tenant, key)): raising rolls this write's savepoint back,
            # so the job just inserted is undone, and hands the holder to the caller.
            raise _Taken(c.execute(Q["idempotency_holder"], key).fetchone())

        try:
            await self._writer.write(insert)
        except _Taken as taken:
            return _holder(taken.row, idempotency)
        return job

    async def held(self, tenant: str, idempotency: IdempotencyKey) -> Job | None:
        params = {"tenant": tenant, "key": idempotency.key}
        row = self._reader.execute(Q["idempotency_holder"], params).fetchone()
        return _holder(row, idempotency) if row else None

    async def prune_keys(self, before: float) -> int:
        query = Q["prune_idempotency_keys"]
        count = await self._writer.write(lambda c: c.execute(query, {"before": before}).rowcount)
        return int(count)

    async def get(self, tenant: str, job_id: str) -> Job | None:
        row = self._reader.execute(Q["get_job"], {"id": job_id, "tenant": tenant}).fetchone()
        return row_job(row) if row else None

    async def claim(self, model: str, limit: int, now: float) -> list[Claim]:
        return await self._lease_jobs("claim", {"model": model, "limit": limit}, now)

    async def claim_ids(self, model: str, ids: list[str], now: float) -> list[Claim]:
        if not ids:
            return []
        return await self._lease_jobs(
            "claim_ids", {"model": model, "ids": orjson.dumps(ids).decode()}, now
        )

    async def _lease_jobs(self, query: str, params: dict[str, Any], now: float) -> list[Claim]:
        token = secrets.token_hex(16)
        expire = {"now": now, "max_attempts": self._max_attempts, "error": error_json(_EXHAUSTED)}
        lease = {**params, "now": now, "token": token, "expires": now + self._lease}

        def claim(c: sqlite3.Connection) -> list[sqlite3.Row]:
            c.execute(Q["expire_leases"], expire).fetchall()
            return c.execute(Q[query], lease).fetchall()

        rows = await self._writer.write(claim)
        jobs = sorted((row_job(r) for r in rows), key=lambda j: (j.window.rank, j.deadline))
        return [Claim(j, token) for j in jobs]

    async def expire(self, now: float) -> int:
        params = {"now": now, "max_attempts": self._max_attempts, "error": error_json(_EXHAUSTED)}
        return len(
            await self._writer.write(lambda c: c.execute(Q["expire_leases"], params).fetchall())
        )

    async def queued(self, model: str, limit: int, now: float) -> list[Job]:
        params = {"model": model, "limit": limit, "now": now}
        seen: dict[str, Job] = {}
        for query in ("queued_asap", "queued_ahead", "queued_late"):
            for row in self._reader.execute(Q[query], params).fetchall():
                seen.setdefault(row["id"], row_job(row))
        return list(seen.values())

    async def count_queued(self, tenant: str) -> int:
        return int(self._reader.execute(Q["count_queued"], {"tenant": tenant}).fetchone()[0])

    async def queue_depths(self) -> dict[Window, int]:
        rows = self._reader.execute(Q["queue_depths"]).fetchall()
        return {list(Window)[rank]: count for rank, count in rows}

    async def renew(self, claims: list[Claim], now: float) -> None:
        params = [{"id": c.job.id, "token": c.token, "expires": now + self._lease} for c in claims]
        if params:
            await self._writer.write(lambda c: c.executemany(Q["renew"], params))

    async def finish(self, claim: Claim, result: Result, now: float) -> Job | None:
        params = {"id": claim.job.id, "token": claim.token, "now": now, **result_row(result)}
        row = await self._writer.write(lambda c: c.execute(Q["finish"], params).fetchone())
        return row_job(row) if row else None

    async def requeue(self, claim: Claim, pieces: list[str], tokens: int) -> bool:
        sizes = orjson.dumps([len(p) for p in pieces if p]).decode()
        params = {
            "id": claim.job.id,
            "token": claim.token,
            "text": "".join(pieces),
            "tokens": tokens,
            "deltas": sizes,
        }
        return bool(await self._writer.write(lambda c: c.execute(Q["requeue"], params).rowcount))

    async def release(self, claims: list[Claim]) -> None:
        params = [{"id": c.job.id, "token": c.token} for c in claims]
        if params:
            await self._writer.write(lambda c: c.executemany(Q["release"], params))

    async def cancel(self, tenant: str, job_id: str, now: float) -> Job | None:
        params = {"id": job_id, "tenant": tenant, "now": now}

        def cancel(c: sqlite3.Connection) -> sqlite3.Row | None:
            c.execute(Q["cancel"], params)
            return c.execute(Q["get_job"], params).fetchone()  # type: ignore[no-any-return]

        row = await self._writer.write(cancel)
        return row_job(row) if row else None

    async def delete(self, tenant: str, job_id: str) -> bool:
        params = {"id": job_id, "tenant": tenant}
        count = await self._writer.write(lambda c: c.execute(Q["delete_job"], params).rowcount)
        return bool(count)

    async def add_key(self, key_hash: str, tenant: str, now: float) -> None:
        params = {"key_hash": key_hash, "tenant": tenant, "now": now}
        await self._writer.write(lambda c: c.execute(Q["insert_key"], params))

    async def tenant_for_key(self, key_hash: str) -> str | None:
        row = self._reader.execute(Q["tenant_for_key"], {"key_hash": key_hash}).fetchone()
        return row[0] if row else None

    async def count_keys(self) -> int:
        return int(self._reader.execute(Q["count_keys"]).fetchone()[0])

    def outbox(self) -> SqliteOutbox:
        """The webhook outbox in the same file, sharing this store's writer and its commits."""
        return SqliteOutbox(self._writer, self._reader)

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close)
        self._reader.close()
