"""``GET /v1/responses/{id}/input_items``: the items a response was made from, in OpenAI's list
object (``data``, ``first_id``, ``last_id``, ``has_more``): newest first unless ``order=asc``,
``limit`` 1 to 100 (20), ``after`` the id of the item the page follows. A response continued from
another (``previous_response_id``) lists the whole conversation it was given, earlier turns
included; its ``instructions`` are not an item. Item ids are made from the response's id and the
item's place, so they are the same on every read."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from leeway.errors import InvalidRequest
from leeway.jobs import Job, Message
from leeway.structured import ToolCall, ToolKind


def input_items(job: Job) -> list[dict[str, Any]]:
    """Every input item of the response, oldest first."""
    messages = job.messages[1:] if job.instructions is not None else job.messages
    key = job.id.removeprefix("resp_")
    items: list[dict[str, Any]] = []
    for m in messages:
        for item in _items(m):
            prefix = {"message": "msg_", "function_call": "fc_", "custom_tool_call": "ctc_"}
            item["id"] = f"{prefix.get(item['type'], 'fco_')}{key}_{len(items)}"
            items.append(item)
    return items


def _items(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": m.call_id,
                "output": m.content,
                "status": "completed",
            }
        ]
    out = []
    if m.content or not m.calls:
        kind = "output_text" if m.role == "assistant" else "input_text"
        part: dict[str, Any] = {"type": kind, "text": m.content}
        if m.role == "assistant":
            part["annotations"] = []
        out.append({"type": "message", "role": m.role, "status": "completed", "content": [part]})
    return out + [_call(c) for c in m.calls]


def _call(call: ToolCall) -> dict[str, Any]:
    if call.kind is ToolKind.CUSTOM:
        return {
            "type": "custom_tool_call",
            "call_id": call.id,
            "name": call.name,
            "input": call.arguments,
        }
    return {
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }


def page(items: list[dict[str, Any]], query: QueryParams) -> dict[str, Any]:
    """One page of ``items`` as the query asks (``order``, ``limit``, ``after``)."""
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"order must be 'asc' or 'desc', not {order!r}.", param="order")
    limit = query.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise InvalidRequest(
            f"limit must be an integer from 1 to 100, not {limit!r}.", param="limit"
        )
    ordered = items if order == "asc" else items[::-1]
    if (after := query.get("after")) is not None:
        at = next((i for i, item in enumerate(ordered) if item["id"] == after), None)
        if at is None:
            raise InvalidRequest(
                f"No input item with id {after!r} in this response.", param="after"
            )
        ordered = ordered[at + 1 :]
    data = ordered[: int(limit)]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > len(data),
    }
