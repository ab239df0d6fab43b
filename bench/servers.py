"""The same app under each ASGI server considered for slow-client protection, through
bench/gateway.py's client (N background creates at concurrency C, then one poll of each):

    leeway     `leeway serve`: uvicorn (httptools) with leeway.server's head and body deadlines,
               connection cap and body budget
    uvicorn    uvicorn (httptools) alone, as `leeway serve` ran before
    hypercorn  hypercorn (h11, asyncio)                       [if installed]
    granian    granian (Rust, one worker, asyncio loop)       [if installed]

    .venv/bin/python bench/servers.py [--requests 5000] [--concurrency 200] [--repeat 1]
    (pip install hypercorn granian to include them: they are not dependencies)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gateway import drive  # noqa: E402
from tests.e2e.server import free_port  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
CONFIG = f'[[models]]\nid = "{MODEL}"\nengine = "fake"\n'
APP = "bench.served_app:app"  # build_app from LEEWAY_CONFIG and LEEWAY_DATA_DIR


def command(server: str, port: int, data: Path) -> list[str]:
    py = sys.executable
    if server == "leeway":
        return [
            py,
            "-m",
            "leeway",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--config",
            str(data / "c.toml"),
        ]
    if server == "uvicorn":
        return [
            py,
            "-m",
            "uvicorn",
            APP,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if server == "hypercorn":
        return [py, "-m", "hypercorn", APP, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    return [
        py,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "asyncio",
        "--log-level",
        "warning",
        APP,
    ]


def run(server: str, requests: int, concurrency: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "c.toml").write_text(CONFIG)
        env = {**os.environ, "LEEWAY_CONFIG": str(data / "c.toml"), "LEEWAY_DATA_DIR": str(data)}
        key = subprocess.run(
            [
                sys.executable,
                "-m",
                "leeway",
                "keys",
                "create",
                "--data-dir",
                str(data),
                "--config",
                str(data / "c.toml"),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
        port = free_port()
        log = (data / "server.log").open("wb")
        proc = subprocess.Popen(
            command(server, port, data), cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            r = asyncio.run(drive(url + "/v1", key, MODEL, requests, concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return (
        f"{server:>10} {r.creates_per_s:>10.0f} {r.polls_per_s:>9.0f} {r.p50_ms:>7.1f} "
        f"{r.p99_ms:>7.1f} {r.errors:>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    servers = [
        s
        for s in ("leeway", "uvicorn", "hypercorn", "granian")
        if s in ("leeway", "uvicorn") or importlib.util.find_spec(s)
    ]
    rows = [run(s, args.requests, args.concurrency) for _ in range(args.repeat) for s in servers]
    print(
        f"\n{args.requests:,} background creates at concurrency {args.concurrency}, then a poll of each"
    )
    print(
        f"{'server':>10} {'creates/s':>10} {'polls/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
