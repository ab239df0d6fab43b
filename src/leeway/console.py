"""The operator's commands, on the store the configuration names (any process may be serving it):

    leeway keys create --tenant T [--name N] [--expires-in 30d] [--admin]
    leeway keys list [--tenant T] [--active]
    leeway keys revoke ID
    leeway usage [--tenant T] [--since 7d] [--by model,window,day]

A new key is printed once, alone on stdout (so ``KEY=$(leeway keys create …)`` works), its id on
stderr. A revoked key is refused by every serving process within a second."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from leeway.app import store_from
from leeway.errors import ConfigError
from leeway.keys import ApiKey, issue
from leeway.settings import Settings
from leeway.store import SqlStore
from leeway.usage import DAY, HOUR, MINUTE, UsageQuery, UsageRow, floor

T = TypeVar("T")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
# --by names → the store's dimensions; a time name picks the buckets' width
_BY = {
    "tenant": "tenant",
    "key": "key_id",
    "model": "model",
    "window": "completion_window",
    "surface": "surface",
    "batch": "batch_id",
}
_TIMES = {"minute": MINUTE, "hour": HOUR, "day": DAY}


def add_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> Any:
    """``keys create|list|revoke`` and ``usage`` (``commands``: the main parser's subparsers);
    returns the ``keys`` actions, for more to be added."""
    keys = commands.add_parser("keys", help="manage API keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--tenant", default="default", help="the tenant (project) it acts for")
    create.add_argument("--name", default="", help="a name to recognise it by")
    create.add_argument("--expires-in", help="a lifetime such as 30d, 12h or 90m (default: none)")
    create.add_argument("--admin", action="store_true", help="may use the admin routes")
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", help="list keys, revoked ones too")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--active", action="store_true", help="only keys not revoked")
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", help="revoke a key: refused everywhere within 1 s")
    revoke.add_argument("id", help="the key's id (key_…)")
    revoke.set_defaults(run=_revoke)
    usage = commands.add_parser("usage", help="print usage and cost per tenant, model, window…")
    usage.add_argument("--tenant", help="only this tenant")
    usage.add_argument("--since", default="7d", help="how far back, such as 7d or 12h (default 7d)")
    usage.add_argument(
        "--by",
        default="tenant,model,window",
        help=f"rows per these, comma-separated: {', '.join([*_BY, *_TIMES])}",
    )
    usage.set_defaults(run=_usage)
    for sub in (create, listing, revoke, usage):
        common(sub)
    return actions


def duration(text: str, flag: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` in seconds."""
    if (m := _DURATION.match(text.strip())) is None or float(m[1]) <= 0:
        raise ConfigError(
            f"{flag} must be a duration such as 30d, 12h, 90m or 45s, not {text!r}.", param=flag
        )
    return float(m[1]) * _UNITS[m[2]]


def _on_store(settings: Settings, work: Callable[[SqlStore], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        store = store_from(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _create(args: argparse.Namespace, settings: Settings) -> None:
    now = time.time()
    life = None if args.expires_in is None else duration(args.expires_in, "--expires-in")
    expires = None if life is None else now + life
    issued = issue(args.tenant, now, name=args.name, admin=args.admin, expires_at=expires)
    _on_store(settings, lambda store: store.add_key(issued.key, issued.value))
    print(issued.value, flush=True)
    kind = "admin key" if args.admin else "key"
    until = f", expires {_when(expires)}" if expires else ""
    print(f"{issued.key.id}: {kind} of tenant '{args.tenant}'{until}", file=sys.stderr)


def _list(args: argparse.Namespace, settings: Settings) -> None:
    async def every(store: SqlStore) -> list[ApiKey]:
        found: list[ApiKey] = []
        while page := await store.list_keys(
            1000,
            tenant=args.tenant,
            include_revoked=not args.active,
            after=found[-1].id if found else None,
        ):
            found += page
        return found

    keys = _on_store(settings, every)
    head = ["ID", "NAME", "TENANT", "KEY", "CREATED", "LAST USED", "EXPIRES", "REVOKED", "ADMIN"]
    rows = [
        [k.id, k.name, k.tenant, k.redacted, *_times(k), "yes" if k.admin else ""] for k in keys
    ]
    print(table(head, rows))


def _revoke(args: argparse.Namespace, settings: Settings) -> None:
    key = _on_store(settings, lambda store: store.revoke_key(args.id, time.time()))
    if key is None:
        raise ConfigError(f"No key with id {args.id!r} (`leeway keys list` shows them).")
    print(f"revoked {key.id} (tenant '{key.tenant}', {key.redacted})")


def _usage(args: argparse.Namespace, settings: Settings) -> None:
    names = [n.strip() for n in args.by.split(",") if n.strip()]
    if unknown := [n for n in names if n not in _BY and n not in _TIMES]:
        raise ConfigError(f"--by takes {', '.join([*_BY, *_TIMES])}, not {unknown[0]!r}.")
    width = min((_TIMES[n] for n in names if n in _TIMES), default=DAY)
    now = time.time()
    start = floor(now - duration(args.since, "--since"), width)
    query = UsageQuery(
        width=width,
        start=start,
        end=floor(now, width) + width,
        group_by=frozenset(_BY[n] for n in names if n in _BY),
        tenants=None if args.tenant is None else [args.tenant],
    )
    rows = _on_store(settings, lambda store: store.usage(query))
    timed = any(n in _TIMES for n in names)
    print(f"usage since {_when(start)} (UTC)")
    print(usage_table(rows, [n for n in names if n in _BY], timed))


def usage_table(rows: Sequence[UsageRow], by: Sequence[str], timed: bool) -> str:
    """Rows per bucket (if ``timed``) and per the ``by`` names, with a total line."""
    sums: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        key = ((_when(r.start),) if timed else ()) + tuple(_value(r, n) for n in by)
        got = sums.setdefault(key, [0, 0, 0, 0.0])
        for i, v in enumerate((r.requests, r.input_tokens, r.output_tokens, r.cost)):
            got[i] += v
    head = (["BUCKET"] if timed else []) + [n.upper() for n in by]
    head += ["REQUESTS", "INPUT TOKENS", "OUTPUT TOKENS", "COST (USD)"]
    body = [[*key, *_amounts(v)] for key, v in sorted(sums.items())]
    total = [sum(v[i] for v in sums.values()) for i in range(4)]
    lead = ["TOTAL"] + [""] * (len(head) - 5)
    return table(head, [*body, [*lead, *_amounts(total)]])


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, head)), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _times(key: ApiKey) -> list[str]:
    return [_when(t) for t in (key.created_at, key.last_used_at, key.expires_at, key.revoked_at)]


def _value(row: UsageRow, name: str) -> str:
    value = getattr(row, _BY[name])
    return value if value else "-"


def _amounts(v: Sequence[float]) -> list[str]:
    return [f"{int(v[0]):,}", f"{int(v[1]):,}", f"{int(v[2]):,}", f"{v[3]:.6f}"]


def _when(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))
