"""`leeway run` against `leeway serve --engine fake`: killed half-way and restarted, it writes every
result exactly once and submits nothing twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.server import LeewayServer

N = 300
CONFIG = """
[[models]]
id = "fake-model"
engine = "fake"
parallel = 4
fake_tokens = 3
fake_delay = 0.005
"""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_killed_run_resumes_without_duplicates(tmp_path: Path):
    source = tmp_path / "input.jsonl"
    items = [
        {"custom_id": f"item-{i}", "params": {"input": f"hello {i}", "max_output_tokens": 3}}
        for i in range(N - 1)
    ]
    items.append({"custom_id": "bad", "params": {"input": "x", "temperature": 9}})  # rejected: 400
    source.write_text("".join(json.dumps(i) + "\n" for i in items))
    out, accepted = tmp_path / "out.jsonl", tmp_path / "out.jsonl.accepted"
    server = LeewayServer(tmp_path / "server", CONFIG).start()
    try:
        cmd = [
            sys.executable,
            "-m",
            "leeway",
            "run",
            str(source),
            "--out",
            str(out),
            "--model",
            "fake-model",
            "--window",
            "flex",
            "--poll-seconds",
            "0.05",
            "--base-url",
            server.base_url,
            "--api-key",
            server.key,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        first = subprocess.Popen(
            [*cmd, "--concurrency", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            if len(lines(out)) >= 10:
                break
            time.sleep(0.02)
        first.kill()  # SIGKILL: no clean-up of any kind
        first.wait()
        before = lines(out)
        assert len(before) >= 10 and len(lines(accepted)) < N  # killed half-way through
        subprocess.run(
            [*cmd, "--concurrency", "16"], env=env, check=True, timeout=120, capture_output=True
        )
    finally:
        server.stop()

    after = lines(out)
    assert after[: len(before)] == before  # nothing written before was rewritten
    results = [json.loads(line) for line in after]
    assert sorted(r["custom_id"] for r in results) == sorted(i["custom_id"] for i in items)
    by_id = {r["custom_id"]: r for r in results}
    assert by_id["bad"]["status"] == "rejected" and by_id["bad"]["error"]["param"] == "temperature"
    assert all(r["status"] == "completed" for cid, r in by_id.items() if cid != "bad")
    assert by_id["item-7"]["response"]["metadata"] == {"completion_window": "flex"}
    with sqlite3.connect(tmp_path / "server" / "leeway.db") as db:
        (jobs,) = db.execute("SELECT count(*) FROM jobs").fetchone()
    assert jobs == N - 1  # every accepted request was submitted once, the rejected one never
