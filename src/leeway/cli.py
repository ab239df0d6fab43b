"""``leeway serve``, ``run``, ``keys``, ``usage`` and ``sim``: thin over the same objects the server
uses (the operator's commands are in ``leeway.console``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from leeway import console
from leeway import settings as config
from leeway.api.auth import create_key
from leeway.app import build_app, store_from
from leeway.catalog import LOCAL_KINDS
from leeway.errors import LeewayError
from leeway.settings import Settings


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:  # the simulator has its own flags: hand them over untouched
        from leeway.sim.__main__ import main as simulate

        sys.exit(simulate(argv[1:]))
    if argv[:1] == ["load"]:  # a client of any server: its own flags, no server settings
        from leeway.load.command import main as load

        sys.exit(load(argv[1:]))
    args = _parser().parse_args(argv)
    try:
        settings = config.load(
            args.config,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=args.data_dir,
        )
        if getattr(args, "engine", None):
            settings = config.with_engine(settings, args.engine)
        args.run(args, settings)
    except LeewayError as e:
        sys.exit(f"leeway: {e.message}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leeway", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (and run the dispatcher)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument(
        "--engine",
        choices=LOCAL_KINDS,
        help="serve every configured model with this engine",
    )
    serve.add_argument(
        "--role",
        choices=["all", "api", "dispatcher"],
        default="all",
        help="all (default): API and dispatcher in one process; api: answer requests only (other "
        "processes dispatch); dispatcher: run the engines only (plus /health and /metrics); "
        "processes in any roles share one store (PostgreSQL across machines)",
    )
    serve.set_defaults(run=_serve)

    run = commands.add_parser(
        "run", help="submit a JSONL file of Responses requests, poll, write results (resumable)"
    )
    run.add_argument("input", type=Path, help="JSONL: Responses bodies, or {custom_id, params}")
    run.add_argument("--out", type=Path, required=True, help="results JSONL (appended, resumable)")
    run.add_argument("--model", help="model for lines that name none")
    run.add_argument("--window", help="completion window for every request (e.g. flex)")
    run.add_argument("--concurrency", type=int, default=200, help="requests in flight at most")
    run.add_argument("--poll-seconds", type=float, default=1.0)
    run.add_argument(
        "--base-url", default=os.environ.get("LEEWAY_BASE_URL", "http://127.0.0.1:8000/v1")
    )
    run.add_argument(
        "--api-key",
        default=os.environ.get("LEEWAY_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        help="default: $LEEWAY_API_KEY",
    )
    run.set_defaults(run=_run_file, data_dir=None, config=None)

    key_commands = console.add_commands(commands, _common)
    secret = key_commands.add_parser(
        "webhook-secret",
        help="print a tenant's webhook signing secret (whsec_…), created if it has none",
    )
    secret.add_argument("--tenant", default="default", help="the tenant whose deliveries it signs")
    secret.add_argument(
        "--rotate",
        action="store_true",
        help="make a new secret; the old one keeps signing for [webhooks] secret_grace_seconds",
    )
    secret.set_defaults(run=_webhook_secret)

    commands.add_parser(
        "load",
        add_help=False,
        help="replay a workload against a running server: each window's attainment, turn times, "
        "TTFT; --sim: the simulator's prediction beside it (leeway load --help)",
    )
    commands.add_parser(
        "sim",
        add_help=False,
        help="simulate a fleet and compare scheduling policies (leeway sim --help)",
    )

    for sub in (serve, secret):
        _common(sub)
    return parser


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--data-dir", type=Path, help="where the database lives (default .leeway)")
    sub.add_argument("--config", type=Path, help="a TOML settings file")


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    from leeway.server import serve

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    key = asyncio.run(_first_key(settings)) if args.role != "dispatcher" else None
    if key is not None:
        print(
            f"No API key existed, so an admin key was created for tenant 'default' (it may also "
            f"manage tenants, keys and usage). It is shown only once:\n\n    {key}\n",
            flush=True,
        )
    serve(build_app(settings, role=args.role), settings)


async def _first_key(settings: Settings) -> str | None:
    store = store_from(settings)
    try:
        if await store.count_keys():
            return None
        return await create_key(store, "default", admin=True)
    finally:
        await store.close()


def _run_file(args: argparse.Namespace, _: Settings) -> None:
    from openai import AsyncOpenAI

    from leeway.bulk import BulkRun

    if not args.api_key:
        sys.exit("leeway run: give --api-key (or set LEEWAY_API_KEY)")

    async def run() -> int:
        async with AsyncOpenAI(base_url=args.base_url, api_key=args.api_key) as client:
            bulk = BulkRun(
                client,
                args.input,
                args.out,
                model=args.model,
                window=args.window,
                concurrency=args.concurrency,
                poll_seconds=args.poll_seconds,
            )
            return await bulk.run()

    written = asyncio.run(run())
    print(f"{written} results in {args.out}", file=sys.stderr)


def _webhook_secret(args: argparse.Namespace, settings: Settings) -> None:
    """The secret deliveries are signed with now (newest first if a rotation is in its grace
    period: every listed secret verifies)."""

    async def secrets() -> list[str]:
        store = store_from(settings)
        outbox, now = store, time.time()
        try:
            if args.rotate:
                await outbox.rotate_secret(args.tenant, now, settings.webhooks.secret_grace_seconds)
            return await outbox.secrets(args.tenant, now)
        finally:
            await store.close()

    current, *older = asyncio.run(secrets())
    print(current)
    if older:
        grace = settings.webhooks.secret_grace_seconds
        print(
            f"({len(older)} older secret(s) still sign deliveries, for up to {grace:g} s after "
            "their rotation)",
            file=sys.stderr,
        )
