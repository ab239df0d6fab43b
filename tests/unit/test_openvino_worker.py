"""The decode process reports every request that is over, even when it is over with nothing left to
read: a request OpenVINO finished, never admitted or dropped by itself must not wait forever
(pipeline and handles are stand-ins here; the real pipeline runs in tests/integration)."""

from __future__ import annotations

from typing import Any

import openvino_genai as ovg

from leeway.engines.openvino_worker import _step

Status = ovg.GenerationStatus


class Conn:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        self.sent.append(message)


class Pipe:
    def step(self) -> None:
        pass


class Handle:
    def __init__(self, status: Any, readable: list[int] | None = None) -> None:
        self.status, self.readable = status, readable

    def can_read(self) -> bool:
        return self.readable is not None

    def read(self) -> dict[int, Any]:
        class Output:
            generated_ids = self.readable
            finish_reason = ovg.GenerationFinishReason.NONE

        return {0: Output()}

    def get_status(self) -> Any:
        return self.status


def test_a_request_over_with_nothing_to_read_is_reported_and_forgotten():
    handles: dict[int, Any] = {
        1: Handle(Status.RUNNING, [5, 6]),  # tokens, still going
        2: Handle(Status.RUNNING),  # nothing new this step
        3: Handle(Status.FINISHED),  # its last tokens were read a step ago
        4: Handle(Status.IGNORED),  # its prompt never fitted
        5: Handle(Status.CANCEL),  # dropped by the pipeline itself
    }
    conn = Conn()
    _step(conn, Pipe(), handles)  # type: ignore[arg-type]
    assert conn.sent == [
        ("tokens", [(1, [5, 6], ""), (3, [], "stop"), (4, [], "ignored"), (5, [], "dropped")])
    ]
    assert set(handles) == {1, 2}  # the ones still running
