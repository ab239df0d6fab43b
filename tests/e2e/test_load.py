"""``leeway load`` against a real ``leeway serve`` on the fake engine: the table and the JSON carry
exactly the requests the workload draws (the same seed drawn again here), every one finished."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from leeway.jobs import Window
from leeway.load.plan import read_plan
from leeway.sim.workload import generate
from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

MIX = "asap=0.1,priority=0.2,standard=0.4,flex=0.3"
FLAGS = {
    "model": MODEL,
    "seconds": 3.0,
    "seed": 3,
    "output": {"median": 6, "sigma": 0, "cap": 6},
    "prompt": {"median": 60, "sigma": 0.5, "cap": 300},
}


def _load(server: LeewayServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leeway", "load", "--base-url", server.base_url,
         "--api-key", server.key, "--model", MODEL, "--seconds", "3", "--seed", "3",
         "--output-tokens", "6,0,6", "--prompt-tokens", "60,0.5,300", "--mix", MIX, "--drain", "60", "--quiet", *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _expected(tokens_per_second: float | None, **flags: float) -> dict[str, int]:
    plan = read_plan(None, {**FLAGS, **flags})
    arrivals = generate(plan.workload, plan.tokens_per_second(tokens_per_second))
    return {w.value: n for w, n in Counter(arrivals.window).items()}


def test_the_table_counts_every_request_of_the_workload(fake: LeewayServer):
    done = _load(fake, "--rate", "12")
    assert done.returncode == 0, done.stderr
    expected = _expected(None, rate=12)
    assert sum(expected.values()) > 20 and set(expected) == {w.value for w in Window}
    rows = {}
    for line in done.stdout.splitlines():
        cells = line.split()
        if cells and cells[0] in expected:
            rows[cells[0]] = (int(cells[1]), int(cells[2]))
    assert rows == {w: (n, n) for w, n in expected.items()}  # requests, all done
    assert "errors: none" in done.stdout
    assert f"arrivals: {sum(expected.values())} requests over 3 s" in done.stdout


def test_json_with_a_calibrated_load_and_the_twin(fake: LeewayServer):
    done = _load(fake, "--load", "0.3", "--calibrate", "3", "--json", "--sim")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    capacity = data["capacity"]
    assert capacity["tokens_per_second"] > 0 and "server's token counters" in capacity["source"]
    expected = _expected(capacity["tokens_per_second"], load=0.3)
    got = {w["window"]: (w["requests"], w["finished"]) for w in data["windows"]}
    assert got == {w: (n, n) for w, n in expected.items()}
    assert data["overall"]["errors"] == {} and data["overall"]["output_tokens"] == 6 * sum(
        expected.values()
    )
    assert data["overall"]["utilization"] > 0
    twin = {w["window"]: w["requests"] for w in data["twin"]["windows"]}
    assert twin == expected and data["twin"]["policy"] == "leeway"
    assert {g["window"] for g in data["gaps"]} == set(expected)
    assert "the twin:" in done.stderr  # the table goes to stderr with --json
