"""What one client can cost everyone else (issue: hardening), against `leeway serve` on the fake engine.

stops   Tenant B's 4-token request (the fake engine at 1 ms a token), alone and while tenant A (a
        process of its own) keeps a 256-token Messages request generating with the largest stop list
        allowed (64 stops of 256 characters, each sharing its start with the fake text: the worst
        case for holding text back); and, for reference, while A's same request has no stops. The
        fake engine runs the same StopMatcher as llama.cpp's. Target: B with A's stops ≤ 2× B alone.
memory  100 responses with the largest fields allowed (10 MiB instructions, 128 tools of 1 MiB in all,
        a 256 KiB output schema, a 64-character user, 16 metadata pairs), each read back:
        the server's RSS growth. Target: ≤ 150 MB.
slow    The server started under an open-file limit of 1,024; then 1,100 connections trickle their
        headers a byte a second. Legitimate requests (GET /v1/models) are sent every half second:
        how many were answered, and how long the slowest took. Target: answered again within the
        header deadline (10 s by default).

    .venv/bin/python bench/hardening.py [stops|memory|slow ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import string
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.server import LeewayServer  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
FAKE = f"""
[[models]]
id = "{MODEL}"
engine = "fake"
parallel = 16
fake_tokens = 256
fake_delay = 0.001
"""


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- stops ---------------------------------------------------------------------------------------


def worst_stops() -> list[str]:
    """64 stops of 256 characters that all begin like the fake engine's words ("fake12 ") and
    never match: every token leaves text that might begin a stop, to be held back and checked."""
    letters = string.ascii_letters
    return [f"fake{i} " + letters[i % 52] * (256 - len(f"fake{i} ")) for i in range(64)]


async def b_latency(url: str, key: str, n: int) -> float:
    """Tenant B's median latency over ``n`` sequential 4-token requests."""
    times = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=600) as c:
        for _ in range(n):
            start = time.perf_counter()
            body = {"model": MODEL, "input": "hi", "max_output_tokens": 4}
            r = await c.post(f"{url}/responses", json=body)
            assert r.status_code == 200, r.text
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def tenant_a(url: str, key: str, stops: list[str] | None, stop: Event) -> None:
    """Tenant A, in a process of its own: one 256-token Messages request after another."""
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.Client(headers=headers, timeout=600) as c:
        while not stop.is_set():
            body: dict[str, object] = {
                "model": MODEL,
                "max_tokens": 256,
                "messages": [{"role": "user", "content": "go on"}],
            }
            if stops is not None:
                body["stop_sequences"] = stops
            r = c.post(f"{url.removesuffix('/v1')}/v1/messages", json=body)
            assert r.status_code == 200, r.text


def with_a(url: str, a_key: str, b_key: str, stops: list[str] | None) -> float:
    """B's latency while A keeps a request of 256 tokens (with ``stops``) generating."""
    stop = multiprocessing.Event()
    a = multiprocessing.Process(target=tenant_a, args=(url, a_key, stops, stop))
    a.start()
    time.sleep(1)
    try:
        return asyncio.run(b_latency(url, b_key, 40))
    finally:
        stop.set()
        a.join()


def bench_stops(repeat: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lw = LeewayServer(Path(tmp), FAKE).start()
        try:
            a_key, b_key = lw.new_key("tenant-a"), lw.new_key("tenant-b")
            for _ in range(repeat):
                alone = asyncio.run(b_latency(lw.base_url, b_key, 40))
                plain = with_a(lw.base_url, a_key, b_key, None)
                stops = with_a(lw.base_url, a_key, b_key, worst_stops())
                rows.append((alone, plain, stops))
        finally:
            lw.stop()
    print("\nstops: tenant B's 4-token request (median of 40), ms; A: a 256-token Messages request")
    print("in flight, with 64 stops x 256 chars or none")
    print(
        f"{'B alone':>9} {'A no stops':>11} {'A 64 stops':>11} {'ratio vs alone':>15} {'vs no stops':>12}"
    )
    for alone, plain, stops in rows:
        print(
            f"{alone * 1e3:>9.1f} {plain * 1e3:>11.1f} {stops * 1e3:>11.1f} "
            f"{stops / alone:>15.2f} {stops / plain:>12.2f}"
        )


# -- memory --------------------------------------------------------------------------------------


def largest_body(i: int) -> dict[str, object]:
    """A Responses create with every echoed field at its bound: 10 MiB of instructions, 128 tools
    of 1 MiB together, a 256 KiB output schema, a 64-character user, 16 metadata pairs."""
    each = 1024 * 1024 // 128 - 1400  # a tool's JSON, less its description and framing
    tools = [
        {
            "type": "function",
            "name": f"tool_{t}",
            "description": "d" * 1024,
            "parameters": {"type": "object", "description": "s" * each},
        }
        for t in range(128)
    ]
    schema = {"type": "object", "description": "f" * (256 * 1024 - 100)}
    return {
        "model": MODEL,
        "input": "hi",
        "instructions": "i" * (10 * 1024 * 1024),
        "user": "u" * 64,
        "metadata": {f"k{j:02d}" + "k" * 60: f"{i}" + "v" * 500 for j in range(16)},
        "tools": tools,
        "tool_choice": "none",
        "text": {"format": {"type": "json_schema", "name": "out", "schema": schema}},
        "max_output_tokens": 4,
    }


def bench_memory() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lw = LeewayServer(Path(tmp) / "lw", FAKE).start()
        try:
            assert lw.proc is not None
            headers = {"Authorization": f"Bearer {lw.key}"}
            with httpx.Client(base_url=lw.base_url, headers=headers, timeout=600) as c:
                c.post("/responses", json={"model": MODEL, "input": "warm up"})
                before = rss_mb(lw.proc.pid)
                ids = []
                for i in range(100):
                    r = c.post("/responses", json=largest_body(i))
                    assert r.status_code == 200, r.text[:300]
                    ids.append(r.json()["id"])
                read = sum(len(c.get(f"/responses/{rid}").content) for rid in ids)
                time.sleep(1)
                after, peak = rss_mb(lw.proc.pid), rss_mb(lw.proc.pid, "VmHWM")
        finally:
            lw.stop()
    print(
        f"\nmemory: 100 responses of {read / 100 / 2**20:.1f} MiB "
        f"each read back; RSS {before:.0f} → {after:.0f} MB (growth {after - before:.0f} MB, "
        f"peak {peak:.0f} MB)"
    )


# -- slow ----------------------------------------------------------------------------------------


async def trickle(port: int, stop: asyncio.Event) -> None:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        for byte in b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000:
            if stop.is_set() or writer.is_closing():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)
    except OSError:
        pass
    finally:
        writer.close()


async def attack(
    lw: LeewayServer, connections: int, seconds: float
) -> list[tuple[float, float, int]]:
    """(when, latency, status) of legitimate requests while ``connections`` trickle."""
    stop = asyncio.Event()
    tricklers = [asyncio.create_task(trickle(lw.port, stop)) for _ in range(connections)]
    await asyncio.sleep(2)  # every trickler has connected and started
    seen = []
    start = time.monotonic()
    headers = {"Authorization": f"Bearer {lw.key}"}
    async with httpx.AsyncClient(
        headers=headers, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
    ) as c:
        while time.monotonic() - start < seconds:
            sent = time.monotonic()
            try:
                status = (await c.get(f"{lw.base_url}/models")).status_code
            except httpx.HTTPError:
                status = 0
            seen.append((sent - start, time.monotonic() - sent, status))
            await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tricklers)
    return seen


def bench_slow(connections: int, seconds: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with tempfile.TemporaryDirectory() as tmp:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # the server inherits this
        lw = LeewayServer(Path(tmp), FAKE).start()
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attacker needs more
        try:
            seen = asyncio.run(attack(lw, connections, seconds))
        finally:
            lw.stop()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    ok = [s for s in seen if s[2] == 200]
    print(
        f"\nslow: {connections} connections trickling headers at a server limited to 1,024 open "
        f"files; a legitimate request every 0.5 s for {seconds:.0f} s"
    )
    print(f"{'requests':>9} {'answered 200':>13} {'other':>6} {'slowest ms':>11} {'median ms':>10}")
    lat = [s[1] * 1e3 for s in ok] or [float("nan")]
    print(
        f"{len(seen):>9} {len(ok):>13} {len(seen) - len(ok):>6} {max(lat):>11.0f} "
        f"{statistics.median(lat):>10.0f}"
    )
    if len(ok) < len(seen):
        print("not answered 200 at (s):", [round(s[0], 1) for s in seen if s[2] != 200])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="*", default=["stops", "memory", "slow"])
    parser.add_argument("--repeat", type=int, default=3, help="stops: rounds to show the spread")
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if "stops" in args.which:
        bench_stops(args.repeat)
    if "memory" in args.which:
        bench_memory()
    if "slow" in args.which:
        bench_slow(args.connections, args.seconds)


if __name__ == "__main__":
    main()
