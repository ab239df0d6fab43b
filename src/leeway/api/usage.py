"""``GET /v1/organization/usage/completions`` and ``GET /v1/organization/costs``, in OpenAI's shapes
and with its query parameters. An admin key sees every tenant (OpenAI's projects); a tenant's key
sees only its own, through the same routes. Buckets are aligned to UTC minutes, hours or days: the
first one holds ``start_time`` (rounded down to its bucket); every bucket of the range is listed,
empty ones too, ``limit`` to a page, then ``next_page``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import usage_wire
from leeway.api.auth import Authenticator, Caller
from leeway.api.create import json_response
from leeway.api.params import Params
from leeway.errors import InvalidRequest, PermissionDenied
from leeway.jobs import Window
from leeway.store import UsageStore
from leeway.usage import DAY, WIDTHS, UsageQuery, UsageRow, floor

# bucket width → (default limit, most)
_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
_COST_LIMIT = (7, 180)
_SHARED = (
    *("start_time", "end_time", "bucket_width", "group_by", "limit", "page", "project_ids"),
    *("api_key_ids", "user_ids"),
)
_USAGE_PARAMS = (*_SHARED, "models", "batch", "completion_windows")
_COST_PARAMS = (*_SHARED, "line_items")
_EPOCH_END = 2**40  # no time is later than this


@dataclass(frozen=True, slots=True)
class Buckets:
    """One page of buckets: their starts, and where the next page starts (None: the last)."""

    width: int
    starts: list[int]
    next_start: int | None


class UsageApi:
    def __init__(
        self, auth: Authenticator, usage: UsageStore, clock: Callable[[], float] = time.time
    ) -> None:
        self._auth, self._usage, self._clock = auth, usage, clock

    def routes(self) -> list[Route]:
        return [
            Route("/v1/organization/usage/completions", self.completions, methods=["GET"]),
            Route("/v1/organization/costs", self.costs, methods=["GET"]),
        ]

    async def completions(self, request: Request) -> Response:
        caller = await self._auth.caller(request)
        q = Params(request.query_params, _USAGE_PARAMS)
        width = q.choice("bucket_width", WIDTHS, "1d")
        buckets = self._buckets(q, WIDTHS[width], *_LIMITS[width])
        query = self._query(caller, q, buckets, _groups(q, usage_wire.USAGE_GROUPS))
        query = replace(
            query,
            models=q.names("models"),
            windows=q.names("completion_windows", [w.value for w in Window]),
            batch=q.flag("batch"),
        )
        results: dict[int, list[dict[str, Any]]] = {}
        for row in await self._usage.usage(query):
            results.setdefault(row.start, []).append(usage_wire.usage_result(row))
        return json_response(
            usage_wire.page(buckets.starts, buckets.width, results, buckets.next_start)
        )

    async def costs(self, request: Request) -> Response:
        caller = await self._auth.caller(request)
        q = Params(request.query_params, _COST_PARAMS)
        q.choice("bucket_width", ("1d",), "1d")
        buckets = self._buckets(q, DAY, *_COST_LIMIT)
        groups = _groups(q, usage_wire.COST_GROUPS)
        by_item, wanted = "line_item" in groups, q.names("line_items", commas=False)
        groups = (groups - {"line_item"}) | {"model", "completion_window"}
        by_start: dict[int, list[UsageRow]] = {}
        for row in await self._usage.usage(self._query(caller, q, buckets, groups)):
            by_start.setdefault(row.start, []).append(row)
        results = {
            start: usage_wire.cost_results(rows, by_item, wanted)
            for start, rows in by_start.items()
        }
        return json_response(
            usage_wire.page(buckets.starts, buckets.width, results, buckets.next_start)
        )

    def _buckets(self, q: Params, width: int, default: int, most: int) -> Buckets:
        now = self._clock()
        start = q.maybe_whole("start_time", lo=0, hi=_EPOCH_END)
        if start is None:
            raise InvalidRequest("Missing required parameter: 'start_time'.", param="start_time")
        if start > now:
            raise InvalidRequest(
                f"start_time ({start}) is in the future (now is {int(now)}).", param="start_time"
            )
        end = q.maybe_whole("end_time", lo=0, hi=_EPOCH_END)
        if end is not None and end <= start:
            raise InvalidRequest(
                f"end_time ({end}) must be after start_time ({start}).", param="end_time"
            )
        end = end if end is not None else floor(now, width) + width
        limit = q.whole("limit", default, lo=1, hi=most)
        first = floor(start, width)
        if (cursor := q.text("page")) is not None:
            first = usage_wire.decode_page(cursor)
            if first % width or not floor(start, width) <= first < end:
                raise InvalidRequest(
                    f"page {cursor!r} does not belong to this range and bucket width.",
                    param="page",
                )
        last = min(end, first + limit * width)
        starts = list(range(first, last, width))
        return Buckets(width, starts, last if last < end else None)

    def _query(
        self, caller: Caller, q: Params, buckets: Buckets, groups: frozenset[str]
    ) -> UsageQuery:
        if q.names("user_ids") is not None:
            raise InvalidRequest("Leeway has no users: leave user_ids out.", param="user_ids")
        first = buckets.starts[0]
        return UsageQuery(
            width=buckets.width,
            start=first,
            end=first + len(buckets.starts) * buckets.width,
            group_by=groups,
            tenants=_tenants(caller, q.names("project_ids")),
            key_ids=q.names("api_key_ids"),
        )


def _groups(q: Params, names: dict[str, str]) -> frozenset[str]:
    asked = q.names("group_by", [*names, "user_id", "service_tier", "api_source"]) or []
    for name in asked:
        if usage_wire.is_unsupported(name):
            raise usage_wire.unsupported_group(name)
    return frozenset(names[n] for n in asked)


def _tenants(caller: Caller, asked: list[str] | None) -> list[str] | None:
    """The tenants a caller may see: an admin any (None: all), a tenant's key only its own."""
    if caller.admin:
        return asked
    if asked is not None and set(asked) != {caller.tenant}:
        raise PermissionDenied(
            f"This key sees only its own project's usage ('{caller.tenant}'); an admin key sees "
            "every project.",
            param="project_ids",
        )
    return [caller.tenant]
