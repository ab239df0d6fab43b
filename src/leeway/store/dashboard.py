"""What the web dashboard reads and keeps: ``DashboardStore`` (part of ``SqlStore``): its sign-in
sessions (shared by every process on the store), the windows' queues and turn times, and every
tenant's batches for an admin."""

from __future__ import annotations

from typing import Any

from leeway.batches import Batch
from leeway.keys import Holder
from leeway.store.driver import Driver
from leeway.store.keys import _key
from leeway.store.operator_views import Session, WindowNow
from leeway.store.rows import row_batch


class DashboardSql:
    _db: Driver

    async def add_session(self, session: Session, token_hash: str) -> None:
        await self._db.run("prune_sessions", {"now": session.created_at})
        await self._db.run(
            "insert_session",
            {
                "token_hash": token_hash,
                "key_id": session.key_id,
                "csrf": session.csrf,
                "now": session.created_at,
                "expires_at": session.expires_at,
            },
        )

    async def session(self, token_hash: str, now: float) -> tuple[Session, Holder] | None:
        row = await self._db.row("session_holder", {"token_hash": token_hash, "now": now})
        if row is None:
            return None
        key = _key(row)
        session = Session(key.id, row["csrf"], row["session_created_at"], row["session_expires_at"])
        return session, Holder(key, row["tenant_archived_at"] is not None)

    async def end_session(self, token_hash: str) -> None:
        await self._db.run("delete_session", {"token_hash": token_hash})

    async def windows_now(self, tenant: str | None, since: float) -> dict[str, WindowNow]:
        found: dict[str, dict[str, Any]] = {}
        for r in await self._db.rows("window_counts", {"tenant": tenant}):
            found.setdefault(r["completion_window"], {})[r["status"]] = int(r["n"])
        turns = {
            r["completion_window"]: r
            for r in await self._db.rows("window_turns", {"tenant": tenant, "since": since})
        }
        now: dict[str, WindowNow] = {}
        for window in sorted(set(found) | set(turns)):
            counts, t = found.get(window, {}), turns.get(window)
            now[window] = WindowNow(
                queued=counts.get("queued", 0),
                running=counts.get("in_progress", 0),
                finished=int(t["n"]) if t else 0,
                met=int(t["met"]) if t else 0,
                p50=float(t["p50"]) if t else None,
                p95=float(t["p95"]) if t else None,
            )
        return now

    async def running_by_model(self) -> dict[str, int]:
        return {r["model"]: int(r["n"]) for r in await self._db.rows("running_by_model")}

    async def all_batches(self, limit: int, before: str | None = None) -> list[Batch]:
        rows = await self._db.rows("all_batches", {"limit": limit, "cursor": before})
        return [row_batch(r) for r in rows]

    async def find_batch(self, batch_id: str) -> Batch | None:
        row = await self._db.row("find_batch", {"id": batch_id})
        return row_batch(row) if row else None
