"""*Usage and cost*: per day over a chosen range (at most a year), grouped by window, model or
tenant (a tenant's key: its own only), drawn as stacked bar charts with a totals table, and the same
rows as CSV. Read from the store's daily usage roll-up, so a range costs the same however many jobs
it holds; costs are the ones ``GET /v1/organization/costs`` reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from leeway.api.dashboard.render import HEADERS, page
from leeway.api.dashboard.sessions import Viewer
from leeway.api.params import Params
from leeway.errors import InvalidRequest
from leeway.store import UsageStore
from leeway.usage import DAY, UsageQuery, UsageRow, floor

GROUPS = {"window": "completion_window", "model": "model", "tenant": "tenant"}
MOST_DAYS = 366
DEFAULT_DAYS = 7


@dataclass
class Sums:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def add(self, row: UsageRow) -> None:
        self.requests += row.requests
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        self.cost += row.cost


@dataclass
class Report:
    """The usage of a range of days, per group."""

    by: str
    days: list[int]  # each day's start
    rows: list[UsageRow]
    totals: dict[str, Sums] = field(default_factory=dict)  # per group
    total: Sums = field(default_factory=Sums)

    def __post_init__(self) -> None:
        for row in self.rows:
            self.totals.setdefault(label(row, self.by), Sums()).add(row)
            self.total.add(row)

    def chart(self, value: Callable[[UsageRow], float]) -> dict[str, object]:
        """Chart.js data: a label per day, a dataset per group."""
        index = {start: i for i, start in enumerate(self.days)}
        series: dict[str, list[float]] = {g: [0.0] * len(self.days) for g in sorted(self.totals)}
        for row in self.rows:
            series[label(row, self.by)][index[row.start]] += value(row)
        return {
            "labels": [day(d) for d in self.days],
            "datasets": [{"label": g, "data": data} for g, data in series.items()],
        }


def label(row: UsageRow, by: str) -> str:
    return str(getattr(row, GROUPS[by]) or "—")


def day(start: float) -> str:
    return dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%d")


class UsagePages:
    def __init__(self, store: UsageStore, clock: Callable[[], float] = time.time) -> None:
        self._store, self._clock = store, clock

    async def page(self, request: Request, viewer: Viewer) -> Response:
        report = await self._report(request, viewer)
        charts = {
            "cost": report.chart(lambda r: round(r.cost, 9)),
            "tokens": report.chart(lambda r: r.input_tokens + r.output_tokens),
        }
        return page(
            "usage.html",
            viewer,
            report=report,
            start=day(report.days[0]),
            end=day(report.days[-1]),
            groups=list(GROUPS),
            charts=json.dumps(charts).replace("<", "\\u003c"),  # safe inside <script>
            query=request.url.query,
        )

    async def csv(self, request: Request, viewer: Viewer) -> Response:
        report = await self._report(request, viewer)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["day", report.by, "requests", "input_tokens", "output_tokens", "cost_usd"])
        for row in report.rows:
            writer.writerow(
                [
                    day(row.start),
                    label(row, report.by),
                    row.requests,
                    row.input_tokens,
                    row.output_tokens,
                    f"{row.cost:.9f}",
                ]
            )
        name = f"leeway-usage-{day(report.days[0])}-{day(report.days[-1])}-by-{report.by}.csv"
        headers = {**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
        return Response(out.getvalue(), media_type="text/csv", headers=headers)

    async def _report(self, request: Request, viewer: Viewer) -> Report:
        q = Params(request.query_params, ("from", "to", "by"))
        by = q.choice("by", tuple(GROUPS), "window")
        today = floor(self._clock(), DAY)
        end = _date(q.text("to"), "to", today)
        start = _date(q.text("from"), "from", end - (DEFAULT_DAYS - 1) * DAY)
        if start > end:
            raise InvalidRequest(f"from ({day(start)}) is after to ({day(end)}).", param="from")
        if (end - start) // DAY >= MOST_DAYS:
            raise InvalidRequest(f"A range is at most {MOST_DAYS} days.", param="from")
        query = UsageQuery(
            width=DAY,
            start=start,
            end=end + DAY,
            group_by=frozenset({GROUPS[by]}),
            tenants=None if viewer.tenant is None else [viewer.tenant],
        )
        rows = await self._store.usage(query)
        return Report(by, list(range(start, end + DAY, DAY)), rows)


def _date(text: str | None, name: str, default: int) -> int:
    if not text:
        return default
    try:
        parsed = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise InvalidRequest(
            f"{name} must be a date, YYYY-MM-DD (got {text!r}).", param=name
        ) from None
    return int(parsed.timestamp())
