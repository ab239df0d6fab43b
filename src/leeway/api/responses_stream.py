"""The Responses surface's stream: ``response.*`` events, from ``response.created`` to the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leeway.api import structure
from leeway.api.responses_tools import message_item
from leeway.api.sse import frame
from leeway.jobs import Job, Status

Render = Callable[[Job], dict[str, Any]]


class ResponseStream:
    """Responses events: created, in_progress, the message item's text deltas, then the outcome.
    A background response says ``response.queued`` after created, and ``response.in_progress``
    only once it runs (it is running or done when the stream starts, or its first text came): the
    events are numbered the same live and replayed. A job that may call tools opens its message
    only once text that is not a call arrives, and its calls follow as function_call /
    custom_tool_call items when it ends."""

    def __init__(self, job: Job, render: Render, after: int = -1) -> None:
        """``render``: the response object as the surface renders it. ``after``: events up to
        this sequence number were seen already and are skipped."""
        self._job, self._render, self._seq, self._after = job, render, 0, after
        self._item = "msg_" + job.id.removeprefix("resp_")
        self._text_first = not structure.calling(job)  # one that may call tools opens on text
        self._opened = self._begun = False
        self._sent: list[str] = []

    def _event(self, kind: str, **fields: Any) -> bytes:
        seq = self._seq
        self._seq += 1
        if seq <= self._after:
            return b""
        return frame({"type": kind, "sequence_number": seq, **fields}, kind)

    def _where(self) -> dict[str, Any]:
        return {"item_id": self._item, "output_index": 0, "content_index": 0}

    def start(self) -> list[bytes]:
        created = self._render(self._job)
        events = [self._event("response.created", response=created)]
        if self._job.background:
            events.append(self._event("response.queued", response={**created, "status": "queued"}))
            if self._job.status is Status.QUEUED:
                return events
        return events + self._begin(created)

    def _begin(self, shown: dict[str, Any] | None = None) -> list[bytes]:
        """``response.in_progress`` (and the message opened, if text comes first)."""
        self._begun = True
        shown = shown if shown is not None else self._render(self._job)
        return [
            self._event("response.in_progress", response={**shown, "status": "in_progress"}),
            *(self._open() if self._text_first else []),
        ]

    def _open(self) -> list[bytes]:
        self._opened = True
        return [
            self._event(
                "response.output_item.added",
                output_index=0,
                item=message_item(self._job, None, "in_progress"),
            ),
            self._event(
                "response.content_part.added",
                **self._where(),
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]

    def delta(self, text: str) -> list[bytes]:
        if not text:
            return []
        opening = [] if self._begun else self._begin()
        opening += [] if self._opened else self._open()
        self._sent.append(text)
        return [
            *opening,
            self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[]),
        ]

    def end(self, job: Job) -> list[bytes]:
        final = self._render(job)
        if job.output is None:
            return [self._event("response.failed", response=final)]
        items = final["output"]
        events = [] if self._begun else self._begin()
        # in the order they streamed: the message (output 0), its calls, then an upstream's
        # reasoning, known only now (the final response lists it first, as its output does)
        streamed = sorted(items, key=lambda i: {"message": 0, "reasoning": 2}.get(i["type"], 1))
        for index, item in enumerate(streamed):
            if item["type"] == "message":
                events += self._close_message(item)
            elif item["type"] == "reasoning":
                events += self._reasoning(index, item)
            else:
                events += self._call(index, item)
        outcome = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return [*events, self._event(outcome, response=final)]

    def _close_message(self, item: dict[str, Any]) -> list[bytes]:
        part = item["content"][0]
        events = [] if self._opened else self._open()
        sent = "".join(self._sent)
        if len(part["text"]) > len(sent):  # held back as a possible call, and it was not one
            rest = part["text"][len(sent) :]
            events.append(
                self._event("response.output_text.delta", **self._where(), delta=rest, logprobs=[])
            )
        return [
            *events,
            self._event(
                "response.output_text.done", **self._where(), text=part["text"], logprobs=[]
            ),
            self._event("response.content_part.done", **self._where(), part=part),
            self._event("response.output_item.done", output_index=0, item=item),
        ]

    def _reasoning(self, index: int, item: dict[str, Any]) -> list[bytes]:
        """An upstream's reasoning: known when the reply ends, so sent whole then."""
        where = {"item_id": item["id"], "output_index": index}
        events = [
            self._event(
                "response.output_item.added",
                output_index=index,
                item={**item, "summary": [], "content": []},
            )
        ]
        for i, part in enumerate(item["summary"]):
            events += [
                self._event(
                    "response.reasoning_summary_part.added",
                    **where,
                    summary_index=i,
                    part={"type": "summary_text", "text": ""},
                ),
                self._event(
                    "response.reasoning_summary_text.delta",
                    **where,
                    summary_index=i,
                    delta=part["text"],
                ),
                self._event(
                    "response.reasoning_summary_text.done",
                    **where,
                    summary_index=i,
                    text=part["text"],
                ),
                self._event(
                    "response.reasoning_summary_part.done", **where, summary_index=i, part=part
                ),
            ]
        for i, part in enumerate(item["content"]):
            events += [
                self._event(
                    "response.reasoning_text.delta", **where, content_index=i, delta=part["text"]
                ),
                self._event(
                    "response.reasoning_text.done", **where, content_index=i, text=part["text"]
                ),
            ]
        return [*events, self._event("response.output_item.done", output_index=index, item=item)]

    def _call(self, index: int, item: dict[str, Any]) -> list[bytes]:
        where = {"item_id": item["id"], "output_index": index}
        custom = item["type"] == "custom_tool_call"
        value = item["input"] if custom else item["arguments"]
        kind = "response.custom_tool_call_input" if custom else "response.function_call_arguments"
        started = (
            {**item, "input": ""} if custom else {**item, "arguments": "", "status": "in_progress"}
        )
        done = {"input": value} if custom else {"arguments": value}
        return [
            self._event("response.output_item.added", output_index=index, item=started),
            self._event(f"{kind}.delta", **where, delta=value),
            self._event(f"{kind}.done", **where, **done),
            self._event("response.output_item.done", output_index=index, item=item),
        ]
