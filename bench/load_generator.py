"""Can `leeway load` offer what it is asked to? Its submit path at given rates, per client.

For each server and client (the official SDK on aiohttp, the default; bare aiohttp) and each rate,
one replay of --seconds of Poisson arrivals (4 output tokens each, all windows) in this process:

  null    a canned streamed response from a bare aiohttp app in another process: what the client
          alone can send (the server costs little)
  fake    `leeway serve --engine fake` (instant, 4 tokens): the whole path, server included

Printed: offered, sent (the client's rate) and its ratio to offered, the client's lag (how late it
sent, p50 and p99), accepted (the server's answers per second) and finished. Sent below offered is
the client falling behind; accepted below sent is the server. The machine is shared with the
server here: on two cores the two compete.

    .venv/bin/python bench/load_generator.py [--rates 250 1000 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer, free_port

from leeway.load.client import make_client
from leeway.load.plan import read_plan
from leeway.load.records import requests
from leeway.load.replay import replay
from leeway.load.stats import report
from leeway.settings import DEFAULT_MODEL
from leeway.sim.workload import generate, prefix_keys
from leeway.windows import DEFAULT_TARGETS


def _event(kind: str, **fields: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def serve_null(port: int) -> None:
    """A server that answers every create with the same short stream (Leeway's event shapes)."""
    from aiohttp import web

    usage = {"input_tokens": 30, "output_tokens": 4, "total_tokens": 34,
             "input_tokens_details": {"cached_tokens": 0},
             "output_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
    response = {"id": "resp_null", "object": "response", "created_at": 0, "model": "m",
                "status": "completed", "output": [], "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [], "usage": usage}  # fmt: skip
    body = (
        _event("response.created", sequence_number=0, response={**response, "status": "queued"})
        + b"".join(
            _event(
                "response.output_text.delta",
                sequence_number=i + 1,
                item_id="msg",
                output_index=0,
                content_index=0,
                delta="null ",
                logprobs=[],
            )
            for i in range(4)
        )
        + _event("response.completed", sequence_number=5, response=response)
    )

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/responses", create)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def one(base_url: str, key: str, client_kind: str, rate: float, seconds: float) -> str:
    plan = read_plan(
        None,
        {"model": DEFAULT_MODEL, "seconds": seconds, "rate": rate, "drain": 60.0,
         "output": {"median": 4, "sigma": 0, "cap": 4},
         "prompt": {"median": 30, "sigma": 0.3, "cap": 60}},
    )  # fmt: skip
    client = make_client(
        client_kind, base_url, [key], DEFAULT_MODEL,
        prefixes=prefix_keys(plan.workload), timeout=seconds + 120,
    )  # fmt: skip
    try:
        await client.warm()
        reqs = requests(generate(plan.workload, plan.tokens_per_second(None)))
        done = await replay(client, reqs, drain=plan.drain, progress=False)
    finally:
        await client.close()
    o = report(done.records, DEFAULT_TARGETS, seconds).overall
    return (
        f"{client_kind:<8} {o.offered_rate:>8.0f} {o.sent_rate:>8.0f} "
        f"{o.sent_rate / o.offered_rate:>6.2f} {_ms(o.lag_p50):>8} {_ms(o.lag_p99):>8} "
        f"{o.accepted_rate:>9.0f} {o.finished:>9,}/{o.requests:,}"
    )


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rates", type=float, nargs="+", default=[250, 1000, 2000])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--clients", nargs="+", default=["sdk", "aiohttp"])
    p.add_argument("--servers", nargs="+", default=["null", "fake"])
    p.add_argument("--serve-null", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_null:
        serve_null(args.serve_null)
        return
    head = (
        f"{'client':<8} {'offered':>8} {'sent':>8} {'ratio':>6} {'lag p50':>8} {'lag p99':>8} "
        f"{'accepted':>9} {'finished':>9}   (rates per second, lag in ms)"
    )
    for server in args.servers:
        with _Server(server) as (base_url, key):
            print(f"\n{server}: {args.seconds:g} s per rate\n{head}", flush=True)
            for rate in args.rates:
                for kind in args.clients:
                    line = asyncio.run(one(base_url, key, kind, rate, args.seconds))
                    print(line, flush=True)


class _Server:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._tmp = tempfile.TemporaryDirectory()
        self._proc: subprocess.Popen[bytes] | None = None
        self._leeway: LeewayServer | None = None

    def __enter__(self) -> tuple[str, str]:
        if self.kind == "null":
            port = free_port()
            self._proc = subprocess.Popen(
                [sys.executable, __file__, "--serve-null", str(port)], stderr=subprocess.DEVNULL
            )
            _wait_for(port)
            return f"http://127.0.0.1:{port}/v1", "null"
        config = f'[[models]]\nid = "{DEFAULT_MODEL}"\nparallel = 64\nfake_tokens = 4\n'
        self._leeway = LeewayServer(Path(self._tmp.name), config, ("--engine", "fake")).start()
        return self._leeway.base_url, self._leeway.key

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
        if self._leeway is not None:
            self._leeway.stop()
        self._tmp.cleanup()


def _wait_for(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the null server never listened on {port}")


if __name__ == "__main__":
    main()
