"""Billing in Prometheus' text format, beside the runtime's metrics on ``GET /metrics``: requests,
tokens and cost per tenant, model and window, as counters.

They are read from the store's roll-up at each scrape, so they are exact, survive restarts and
agree with the usage API; every process sharing a store reports the same totals (aggregate them
with ``max``, not ``sum``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from leeway.store import UsageStore
from leeway.usage import Total

_LABELS = ["tenant", "model", "window"]


class _Totals(Collector):
    def __init__(self, totals: Sequence[Total]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "leeway_billed_requests", "Jobs that reached a final state", labels=_LABELS
        )
        tokens = CounterMetricFamily(
            "leeway_billed_tokens", "Tokens billed", labels=[*_LABELS, "kind"]
        )
        cost = CounterMetricFamily("leeway_billed_cost_usd", "Cost billed (USD)", labels=_LABELS)
        for t in self._totals:
            labels = [t.tenant, t.model, t.completion_window]
            requests.add_metric(labels, t.requests)
            tokens.add_metric([*labels, "input"], t.input_tokens)
            tokens.add_metric([*labels, "output"], t.output_tokens)
            cost.add_metric(labels, t.cost)
        yield from (requests, tokens, cost)


async def render(usage: UsageStore) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Totals(await usage.usage_totals()))
    return generate_latest(registry)
