"""`leeway serve --role api` and `--role dispatcher` as separate processes sharing one store: every
API process answers for every job, and a dispatcher killed mid-run loses and duplicates nothing."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

# Short leases, so a killed dispatcher's claims expire quickly; a slow engine, so work is running
# when it is killed.
CONFIG = f"""
lease_seconds = 1.5
poll_seconds = 0.1

[[models]]
id = "{MODEL}"
parallel = 8
fake_tokens = 5
fake_delay = 0.05
"""


class Processes:
    """API and dispatcher processes on one data dir (one SQLite file), each with its own log."""

    def __init__(self, root: Path) -> None:
        self.root, self.shared = root, root / "shared"
        self.all: list[LeewayServer] = []

    def start(self, role: str) -> LeewayServer:
        own = self.root / f"{role}-{len(self.all)}"
        args = ("--engine", "fake", "--role", role, "--data-dir", str(self.shared))
        server = LeewayServer(own, CONFIG, args)
        self.all.append(server)
        return server.start()

    def stop(self) -> None:
        for server in self.all:
            server.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        p.stop()


def test_two_api_and_two_dispatcher_processes_run_every_job_exactly_once(processes: Processes):
    first = processes.start("api")
    second = processes.start("api")
    second.key = first.key  # the key the first API process created lives in the shared store
    dispatchers = [processes.start("dispatcher"), processes.start("dispatcher")]
    assert httpx.get(f"http://127.0.0.1:{dispatchers[0].port}/health").status_code == 200
    assert httpx.get(f"{dispatchers[0].base_url}/models").status_code == 404  # no API there

    clients = [
        OpenAI(base_url=s.base_url, api_key=first.key, max_retries=0) for s in (first, second)
    ]
    ids = [
        clients[i % 2].responses.create(model=MODEL, input=f"job {i}", background=True).id
        for i in range(300)
    ]
    db = sqlite3.connect(processes.shared / "leeway.db")

    def wait_until_completed(count: int) -> None:
        deadline = time.monotonic() + 60
        query = "SELECT count(*) FROM jobs WHERE status = 'completed'"
        while db.execute(query).fetchone()[0] < count and time.monotonic() < deadline:
            time.sleep(0.05)

    wait_until_completed(60)
    dispatchers[0].crash()  # kill -9 in the middle of the run, with work claimed
    wait_until_completed(300)
    for rid in ids:
        a, b = clients[0].responses.retrieve(rid), clients[1].responses.retrieve(rid)
        assert a.status == "completed", (rid, a.status)
        assert a.model_dump() == b.model_dump()  # both API processes return the same object
        assert a.output_text.strip() == "fake fake1 fake2 fake3 fake4"
        assert a.usage is not None and a.usage.output_tokens == 5  # counted once

    rows = db.execute("SELECT count(*), count(DISTINCT id) FROM jobs WHERE status='completed'")
    assert rows.fetchone() == (300, 300)
    reclaimed = db.execute("SELECT count(*) FROM jobs WHERE attempts > 1").fetchone()[0]
    db.close()
    assert reclaimed > 0  # the killed dispatcher held work, and the survivor ran it again
