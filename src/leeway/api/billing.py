"""What a job was billed, as the surfaces show it beside ``usage``: ``cost`` (Leeway's addition)
holds the amount, the prices it was billed at (USD per million tokens, as configured when the job
became final) and the window it ran in; null until the job is final."""

from __future__ import annotations

from typing import Any

from leeway.jobs import Job


def cost(job: Job) -> dict[str, Any] | None:
    if job.cost is None:
        return None
    return {
        "value": job.cost.amount,
        "currency": "usd",
        "completion_window": job.window.value,
        "input_price": job.cost.input_price,
        "output_price": job.cost.output_price,
        "price_unit": "1M tokens",
    }
