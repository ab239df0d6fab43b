"""Usage and cost, metered: the questions asked of the store's roll-up and the rows it answers with.

When a job becomes final the store adds its tokens and cost to three buckets (1 minute, 1 hour and
1 day, UTC) per tenant, model, window, key, surface and batch, in the same transaction. Questions
are then answered from those buckets, whatever the number of jobs: a range of one bucket width,
some filters, and the dimensions to group by (every other one summed over).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

MINUTE, HOUR, DAY = 60, 3600, 86400
WIDTHS = {"1m": MINUTE, "1h": HOUR, "1d": DAY}
# What rows may be grouped by: a tenant (OpenAI's project), the key, the model, the window, the
# surface, whether the job was in a batch, and which batch.
DIMENSIONS = ("tenant", "key_id", "model", "completion_window", "surface", "batch", "batch_id")


@dataclass(frozen=True, slots=True)
class UsageQuery:
    width: int  # MINUTE, HOUR or DAY
    start: int  # inclusive, a multiple of width
    end: int  # exclusive
    group_by: frozenset[str] = frozenset()  # of DIMENSIONS
    tenants: Sequence[str] | None = None  # None: every tenant
    key_ids: Sequence[str] | None = None
    models: Sequence[str] | None = None
    windows: Sequence[str] | None = None
    batch: bool | None = None  # True: batch items only; False: none; None: both


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One bucket's sums for one group (a dimension not grouped by is None)."""

    start: int
    requests: int
    input_tokens: int
    output_tokens: int
    input_cost: float  # USD
    output_cost: float
    tenant: str | None = None
    key_id: str | None = None
    model: str | None = None
    completion_window: str | None = None
    surface: str | None = None
    batch: bool | None = None
    batch_id: str | None = None

    @property
    def cost(self) -> float:
        return self.input_cost + self.output_cost


@dataclass(frozen=True, slots=True)
class Total:
    """Everything billed so far to one tenant, model and window (the metrics' counters)."""

    tenant: str
    model: str
    completion_window: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float


def floor(at: float, width: int) -> int:
    """The start of the bucket of ``width`` seconds holding ``at`` (UTC-aligned)."""
    return int(at // width) * width


def month_start(at: float) -> int:
    """The first second of ``at``'s calendar month, UTC (a budget's period)."""
    day = dt.datetime.fromtimestamp(at, dt.UTC)
    return int(day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())
