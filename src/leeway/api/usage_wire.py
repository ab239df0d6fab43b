"""The usage and costs APIs' objects, in OpenAI's shapes: a ``page`` of ``bucket`` objects, each with
its ``results`` (``organization.usage.completions.result``, ``organization.costs.result``).

Leeway's additions: a tenant is OpenAI's project (``project_id``); usage may also be grouped by
``completion_window`` (and ``surface``, ``batch_id``); a cost's ``line_item`` is one model, window
and kind of token (``"<model>, <window>, input_tokens"``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from leeway.errors import InvalidRequest
from leeway.usage import UsageRow

# OpenAI's group_by names (and Leeway's) → the store's dimensions
USAGE_GROUPS = {
    "project_id": "tenant",
    "api_key_id": "key_id",
    "model": "model",
    "batch": "batch",
    "completion_window": "completion_window",
    "surface": "surface",
    "batch_id": "batch_id",
}
COST_GROUPS = {"project_id": "tenant", "api_key_id": "key_id", "line_item": "line_item"}
_NO_USERS = ("user_id", "service_tier", "api_source")  # OpenAI's, which Leeway does not have


def unsupported_group(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"group_by {name!r} is not available: Leeway has no users, tiers or API sources; group "
        "by completion_window for the window a request ran in.",
        param="group_by",
    )


def is_unsupported(name: str) -> bool:
    return name in _NO_USERS


def page(
    starts: Sequence[int],
    width: int,
    results: dict[int, list[dict[str, Any]]],
    next_start: int | None,
) -> dict[str, Any]:
    """Every bucket in ``starts`` (empty ones too, as OpenAI answers), then where the next page
    starts."""
    return {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": start,
                "end_time": start + width,
                "results": results.get(start, []),
            }
            for start in starts
        ],
        "has_more": next_start is not None,
        "next_page": None if next_start is None else encode_page(next_start),
    }


def encode_page(start: int) -> str:
    return base64.urlsafe_b64encode(f"bucket:{start}".encode()).decode()


def decode_page(cursor: str) -> int:
    try:
        kind, _, start = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind == "bucket":
            return int(start)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequest(
        f"page {cursor!r} is not a cursor this API gave (a response's next_page).", param="page"
    )


def usage_result(row: UsageRow) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "input_cached_tokens": 0,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": row.requests,
        "project_id": row.tenant,
        "user_id": None,
        "api_key_id": row.key_id or None,
        "model": row.model,
        "batch": row.batch,
        "service_tier": None,
        "completion_window": row.completion_window,
        **({"surface": row.surface} if row.surface is not None else {}),
        **({"batch_id": row.batch_id or None} if row.batch_id is not None else {}),
    }


def cost_results(
    rows: Iterable[UsageRow], by_item: bool, wanted: Collection[str] | None
) -> list[dict[str, Any]]:
    """One bucket's costs from rows grouped by model and window (and the groups asked for): a
    result per line item (each model, window and kind of token) when grouped by line item, else
    per group, summed over the line items (those ``wanted``, if named)."""
    items: list[tuple[UsageRow, str, float, int]] = [
        (r, f"{r.model}, {r.completion_window}, {kind}", amount, tokens)
        for r in rows
        for kind, amount, tokens in (
            ("input_tokens", r.input_cost, r.input_tokens),
            ("output_tokens", r.output_cost, r.output_tokens),
        )
    ]
    items = [i for i in items if wanted is None or i[1] in wanted]
    if by_item:
        return [
            {**_cost(r.tenant, r.key_id, amount), "line_item": item, "quantity": tokens}
            for r, item, amount, tokens in items
        ]
    groups: dict[tuple[str | None, str | None], float] = {}
    for r, _, amount, _ in items:
        groups[r.tenant, r.key_id] = groups.get((r.tenant, r.key_id), 0.0) + amount
    return [_cost(tenant, key_id, amount) for (tenant, key_id), amount in groups.items()]


def _cost(tenant: str | None, key_id: str | None, amount: float) -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": amount, "currency": "usd"},
        "line_item": None,
        "project_id": tenant,
        "api_key_id": key_id or None,
        "quantity": None,
        "quantity_unit": "tokens",
    }
