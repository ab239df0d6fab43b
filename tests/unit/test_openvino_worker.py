"""The decode process reports every request that is over, even when it is over with nothing left to
read: a request OpenVINO finished, never admitted or dropped by itself must not wait forever. A bf16
engine's f32 lane takes a few requests while the main pipeline is idle, and hands them over,
continuing, once it is not (pipelines and handles are stand-ins here; the real pipeline runs in
tests/integration)."""

from __future__ import annotations

from typing import Any

import openvino_genai as ovg

from leeway.catalog import ModelConfig
from leeway.engines.openvino_worker import (
    F32_UP_TO,
    LANE,
    _Pipelines,
    _Request,
    _step,
    inference_precision,
    lane_config,
)

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
    pipes = _Pipelines(Pipe())
    for request, handle in handles.items():
        pipes.requests[request] = _Request([], {}, handle)
    _step(conn, pipes)  # type: ignore[arg-type]
    assert conn.sent == [
        ("tokens", [(1, [5, 6], ""), (3, [], "stop"), (4, [], "ignored"), (5, [], "dropped")])
    ]
    assert set(pipes.requests) == {1, 2}  # the ones still running


class Pipeline:
    """A stand-in pipeline that records what is added to it and how often it steps."""

    def __init__(self) -> None:
        self.added: dict[int, tuple[list[int], int]] = {}  # request: (prompt, max_new_tokens)
        self.handles: dict[int, Lane] = {}
        self.steps = 0

    def add_request(self, request: int, prompt: Any, config: Any) -> Lane:
        self.added[request] = (prompt.data[0].tolist(), config.max_new_tokens)
        handle = self.handles[request] = Lane()
        return handle

    def step(self) -> None:
        self.steps += 1

    def has_non_finished_requests(self) -> bool:
        return any(not h.cancelled for h in self.handles.values())


class Lane(Handle):
    def __init__(self) -> None:
        super().__init__(Status.RUNNING)
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def test_few_requests_run_in_the_lane_and_move_to_the_main_pipeline_once_it_has_work():
    main, lane = Pipeline(), Pipeline()
    pipes = _Pipelines(main, lane)
    for request in range(LANE):
        pipes.add(request, [1, 2], {"max_new_tokens": 10})
    assert set(lane.added) == set(range(LANE)) and not main.added
    pipes.settle()
    pipes.step()
    assert lane.steps == 1 and main.steps == 0  # only the lane has work: nothing moves
    lane.handles[0].readable = [7, 8, 9]  # request 0 generated three tokens
    conn = Conn()
    _step(conn, pipes)
    assert conn.sent == [("tokens", [(0, [7, 8, 9], "")])]

    pipes.add(LANE, [3], {"max_new_tokens": 10})  # the lane is full: the main pipeline takes it
    assert main.added == {LANE: ([3], 10)}
    pipes.settle()  # so the lane's requests move there, continuing from what they generated
    assert all(h.cancelled for h in lane.handles.values())
    assert main.added[0] == ([1, 2, 7, 8, 9], 7)
    assert all(main.added[r] == ([1, 2], 10) for r in range(1, LANE))
    steps = lane.steps
    pipes.step()
    assert main.steps == 1 and lane.steps == steps  # one pipeline steps a turn

    pipes.add(LANE + 1, [4], {"max_new_tokens": 10})  # the main pipeline is busy: not the lane
    assert LANE + 1 in main.added and LANE + 1 not in lane.added


def test_a_grammar_never_runs_in_the_lane():
    main, lane = Pipeline(), Pipeline()
    pipes = _Pipelines(main, lane)
    pipes.add(0, [1], {"max_new_tokens": 4, "grammar": 'root ::= "a"'})
    assert 0 in main.added and not lane.added
    pipes.add(1, [1], {"max_new_tokens": 4})  # the main pipeline has work
    assert 1 in main.added and not lane.added


def test_only_an_engine_compiled_in_bf16_by_default_has_a_lane():
    assert lane_config(ModelConfig("m", parallel=F32_UP_TO)) is None  # already f32
    assert lane_config(ModelConfig("m", parallel=128, precision="bf16")) is None  # asked for
    lane = lane_config(ModelConfig("m", parallel=128))
    assert lane is not None and lane.parallel == LANE and inference_precision(lane) == "f32"
