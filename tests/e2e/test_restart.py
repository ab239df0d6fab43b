"""Kill the server (SIGKILL) in the middle of work and start it again: nothing lost, nothing run twice."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

# Short leases so the killed process's claims expire quickly; small engine so work is still queued.
CONFIG = f"""
lease_seconds = 2
poll_seconds = 0.2

[[models]]
id = "{MODEL}"
parallel = 4
context = 512
"""


def statuses(client: OpenAI, ids: list[str]) -> dict[str, object]:
    return {rid: client.responses.retrieve(rid) for rid in ids}


def test_crash_mid_work_loses_and_duplicates_nothing(tmp_path: Path):
    server = LeewayServer(tmp_path, CONFIG).start()
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
        ids = [
            client.responses.create(
                model=MODEL,
                input=f"Count to {i + 20}.",
                background=True,
                max_output_tokens=48,
                temperature=0,
            ).id
            for i in range(16)
        ]
        for _ in range(600):
            seen = statuses(client, ids)
            states = [r.status for r in seen.values()]
            if "completed" in states and "in_progress" in states and "queued" in states:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"never saw queued, running and done together: {states}")
        server.crash()
    finally:
        server.stop()

    done_before = {rid: r for rid, r in seen.items() if r.status == "completed"}
    server.start()  # same data dir, same key
    try:
        final: dict[str, object] = {}
        for _ in range(1200):
            final = statuses(client, ids)
            if all(r.status == "completed" for r in final.values()):
                break
            time.sleep(0.1)
        assert [r.status for r in final.values()] == ["completed"] * len(ids)
        for rid, before in done_before.items():  # a completed result is never recomputed
            after = final[rid]
            assert after.output_text == before.output_text
            assert after.completed_at == before.completed_at and after.usage == before.usage
    finally:
        server.stop()

    with sqlite3.connect(tmp_path / "leeway.db") as db:
        rows = db.execute("SELECT id, status, attempts FROM jobs").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)  # no job lost, none duplicated
    attempts = {r[0]: r[2] for r in rows}
    assert all(attempts[rid] == 1 for rid in done_before)
    assert max(attempts.values()) == 2  # the ones running at the crash ran once more, no more
