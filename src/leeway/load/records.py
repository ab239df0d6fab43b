"""One row per replayed request: what was asked (``Request``) and what happened (``Record``). Times
are seconds since the run's start on the client's monotonic clock."""

from __future__ import annotations

from dataclasses import dataclass

from leeway.jobs import Window
from leeway.sim.workload import Arrivals


@dataclass(frozen=True, slots=True)
class Request:
    index: int
    at: float  # when it is due
    window: Window
    prompt_tokens: int  # drawn (the text is about this long)
    output_tokens: int  # drawn: its max_output_tokens
    tenant: int
    prefix: int  # index of its system prompt


@dataclass(slots=True)
class Record:
    request: Request
    sent: float | None = None  # the client began sending it
    accepted: float | None = None  # the server answered (its first event)
    first: float | None = None  # its first output text
    done: float | None = None  # its final event
    input_tokens: int | None = None  # as the server counted them
    output_tokens: int | None = None
    error: str | None = None  # its kind (``http 429``, ``failed: engine_error``, ``unfinished``)

    @property
    def turn(self) -> float | None:
        """Sent to final (the server's arrival-to-final, give or take the network)."""
        if self.error is not None or self.done is None or self.sent is None:
            return None
        return self.done - self.sent

    @property
    def ttft(self) -> float | None:
        return self.first - self.sent if self.first is not None and self.sent is not None else None

    @property
    def lag(self) -> float | None:
        """How late the client sent it: the generator's own delay."""
        return None if self.sent is None else self.sent - self.request.at


def requests(arrivals: Arrivals) -> list[Request]:
    return [
        Request(
            i,
            arrivals.time[i],
            arrivals.window[i],
            arrivals.prompt[i],
            arrivals.output[i],
            arrivals.tenant[i],
            arrivals.prefix[i],
        )
        for i in range(len(arrivals))
    ]
