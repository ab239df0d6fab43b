"""The prices a process bills at: each model's configured per-window prices (``[[models]]``
``prices.<window> = { input, output }``, USD per million tokens), looked up by the store when a job
becomes final, so a job is billed at the prices configured at that moment. A window without a price
bills nothing (its tokens are still metered)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leeway.catalog import ModelConfig, Price
from leeway.jobs import Window

FREE = Price(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[tuple[str, Window], Price] = field(default_factory=dict)

    @staticmethod
    def of(models: Iterable[ModelConfig]) -> PriceTable:
        return PriceTable({(m.id, w): p for m in models for w, p in m.prices.items()})

    def price(self, model: str, window: Window) -> Price:
        return self.prices.get((model, window), FREE)

    def params(self) -> dict[str, Any]:
        """The table as query parameters (lists), for statements that price many jobs at once."""
        rows = list(self.prices.items())
        return {
            "price_models": [model for (model, _), _ in rows],
            "price_windows": [window.value for (_, window), _ in rows],
            "input_prices": [float(p.input) for _, p in rows],
            "output_prices": [float(p.output) for _, p in rows],
        }
