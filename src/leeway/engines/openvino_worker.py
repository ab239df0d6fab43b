"""The OpenVINO engine's decode process: it owns the continuous-batching pipeline and steps it.

OpenVINO GenAI's ``step()`` holds Python's GIL for the whole inference (tens to hundreds of
milliseconds), which would freeze the serving process's event loops (the API, the dispatcher) for
every step. So the pipeline lives in a process of its own, spawned by the engine, and talks to it
over one pipe:

- in: ``("add", request, prompt_ids, settings)`` where settings are GenerationConfig fields (and
  ``grammar``: EBNF for structured output), ``("cancel", request)``, ``("close",)``;
- out: ``("ready",)`` once loaded, then after each step ``("tokens", [(request, new token ids,
  finish)])`` (finish: ``""`` while running, else ``"stop"``, ``"length"`` or ``"ignored"``), and
  ``("failed", [requests], message)`` for requests that could not be added or whose step failed.

Each turn it takes every message waiting (blocking only when nothing runs), steps once and reports.

**The lane.** An engine of more than ``F32_UP_TO`` sequences compiles its model in bf16, which is
1.2-1.3x faster than f32 at 64-128 sequences but 1.2x slower for a lone request. So such an engine
has a second, small pipeline in f32, the lane, that takes up to ``LANE`` requests while the main
pipeline has none. As soon as the main pipeline has work, whatever runs in the lane moves there: it
is cancelled in the lane and added to the main pipeline with the tokens it generated appended to
its prompt, its budget reduced by them. So only one pipeline ever steps in a turn. A request with a
grammar goes to the main pipeline (its grammar could not resume after a move).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai as ovg

from leeway.catalog import ModelConfig
from leeway.engines.gguf_file import cache_dir

_FINISH = {
    ovg.GenerationFinishReason.STOP: "stop",
    ovg.GenerationFinishReason.LENGTH: "length",
    ovg.GenerationFinishReason.TOOL_CALL: "stop",
}
_OVER = {ovg.GenerationStatus.FINISHED: "stop", ovg.GenerationStatus.IGNORED: "ignored"}


def pipeline(
    path: Path,
    config: ModelConfig,
    *,
    prefix_caching: bool = True,
    properties: dict[str, object] | None = None,
) -> Any:
    """OpenVINO GenAI's continuous-batching pipeline for the model at ``path``; ``properties``:
    the CPU plugin's (benches try KV cache precision, inference precision and threads with it)."""
    scheduler = ovg.SchedulerConfig()
    scheduler.max_num_seqs = config.parallel
    scheduler.max_num_batched_tokens = config.batch_tokens
    scheduler.enable_prefix_caching = prefix_caching
    scheduler.dynamic_split_fuse = True
    scheduler.cache_size = 0  # the KV cache grows as sequences need it
    plugin: dict[str, object] = {"CACHE_DIR": compiled_cache(), **(properties or {})}
    if precision := inference_precision(config):
        plugin.setdefault("INFERENCE_PRECISION_HINT", precision)
    if config.threads:
        plugin["INFERENCE_NUM_THREADS"] = config.threads
    tokenizer = {"CACHE_DIR": compiled_cache()}
    return ovg.ContinuousBatchingPipeline(str(path), scheduler, "CPU", plugin, tokenizer)


F32_UP_TO = 32  # sequences; measured on 2 cores with AVX-512 BF16 (bench/engine.py, issue 20)
LANE = 4  # requests the f32 lane of a bf16 engine takes while its main pipeline is idle


def inference_precision(config: ModelConfig) -> str | None:
    """The precision the model's ``precision`` asks for, or None for OpenVINO's default. At few
    sequences a step is bound by per-operation costs that bf16's conversions add to; at many, by
    the matrix products that bf16 halves."""
    if config.precision != "auto":
        return config.precision
    return "f32" if config.parallel <= F32_UP_TO else None


def lane_config(config: ModelConfig) -> ModelConfig | None:
    """The lane's model config: an engine whose main pipeline is not f32 by default has one."""
    if config.precision != "auto" or inference_precision(config) == "f32":
        return None
    return replace(config, parallel=min(LANE, config.parallel), precision="f32")


def compiled_cache() -> str:
    """Where OpenVINO keeps the models it compiled (the model and its tokenizer, built from the
    GGUF file): a start that finds them there loads in a third of the time."""
    return str(cache_dir() / "openvino")


@dataclass(eq=False)
class _Request:
    """A request in flight: what is needed to move it from the lane to the main pipeline."""

    prompt: list[int]
    settings: dict[str, Any]
    handle: Any = None
    in_lane: bool = False
    made: list[int] = field(default_factory=list)  # tokens generated (and sent) so far


class _Pipelines:
    """The main pipeline and, for a bf16 engine, its f32 lane (see the module's text)."""

    def __init__(self, main: Any, lane: Any = None) -> None:
        self.main, self.lane = main, lane
        self.requests: dict[int, _Request] = {}
        self.in_lane = 0

    def add(self, request: int, prompt: list[int], settings: dict[str, Any]) -> None:
        r = _Request(prompt, settings)
        r.in_lane = (
            self.lane is not None
            and "grammar" not in settings
            and self.in_lane == len(self.requests)  # the main pipeline has nothing
            and self.in_lane < LANE
        )
        pipe = self.lane if r.in_lane else self.main
        r.handle = pipe.add_request(request, _tensor(prompt), _config(dict(settings)))
        self.requests[request] = r
        self.in_lane += r.in_lane

    def drop(self, request: int) -> _Request | None:
        r = self.requests.pop(request, None)
        if r is not None:
            self.in_lane -= r.in_lane
        return r

    def cancel(self, request: int) -> None:
        if (r := self.drop(request)) is not None:
            r.handle.cancel()

    def settle(self) -> None:
        """Move what runs in the lane to the main pipeline once that has work of its own."""
        if not self.in_lane or self.in_lane == len(self.requests):
            return
        for request, r in self.requests.items():
            if r.in_lane:
                r.handle.cancel()
                left = r.settings["max_new_tokens"] - len(r.made)
                settings = {**r.settings, "max_new_tokens": left}
                r.handle = self.main.add_request(
                    request, _tensor(r.prompt + r.made), _config(settings)
                )
                r.in_lane = False
        self.in_lane = 0
        with contextlib.suppress(RuntimeError):
            self.lane.step()  # drops the cancelled requests, freeing their KV blocks

    def step(self) -> None:
        """Step the pipeline that holds the requests (only one does: see ``settle``)."""
        (self.lane if self.in_lane else self.main).step()

    def fail(self) -> list[int]:
        """Forget every request (a step failed); the ones forgotten."""
        failed = list(self.requests)
        for r in self.requests.values():
            r.handle.cancel()
        self.requests.clear()
        self.in_lane = 0
        return failed

    def close(self) -> None:
        for r in self.requests.values():
            r.handle.cancel()
        for pipe in (self.main, self.lane):
            with contextlib.suppress(RuntimeError):  # a step drops what was cancelled (here or
                if pipe is not None and pipe.has_non_finished_requests():  # before), so no KV
                    pipe.step()  # block is held at exit


def serve(conn: Connection, path: str, config: ModelConfig) -> None:
    """The process's body: load, say ready, then step until told to close (or the pipe breaks)."""
    lane = lane_config(config)
    pipes = _Pipelines(
        pipeline(Path(path), config), pipeline(Path(path), lane) if lane is not None else None
    )
    conn.send(("ready",))
    try:
        while _take(conn, pipes, block=not pipes.requests):
            if pipes.requests:
                pipes.settle()
                _step(conn, pipes)
    except (EOFError, BrokenPipeError):  # the engine's process is gone
        pass
    finally:
        pipes.close()


def _take(conn: Connection, pipes: _Pipelines, block: bool) -> bool:
    """Apply every waiting message; False on ``close``."""
    while block or conn.poll():
        block = False
        message = conn.recv()
        if message[0] == "close":
            return False
        if message[0] == "cancel":
            pipes.cancel(message[1])
            continue
        _, request, prompt, settings = message
        try:
            pipes.add(request, prompt, settings)
        except (RuntimeError, ValueError, TypeError) as e:
            conn.send(("failed", [request], str(e)))
    return True


def _step(conn: Connection, pipes: _Pipelines) -> None:
    try:
        pipes.step()
    except RuntimeError as e:
        conn.send(("failed", pipes.fail(), str(e)))
        return
    out = []
    for request, r in list(pipes.requests.items()):
        handle = r.handle
        if handle.can_read():
            tokens: list[int] = []
            finish = ""
            for output in handle.read().values():
                tokens += output.generated_ids
                finish = _FINISH.get(output.finish_reason, "")
            if r.in_lane:
                r.made += tokens
            out.append((request, tokens, finish))
        elif (status := handle.get_status()) != ovg.GenerationStatus.RUNNING:
            # over with nothing left to read: never leave it waiting (finished, never admitted,
            # or dropped by the pipeline itself; a cancel of ours removed it from the requests)
            out.append((request, [], _OVER.get(status, "dropped")))
        else:
            continue
        if out[-1][2]:
            pipes.drop(request)
    if out:
        conn.send(("tokens", out))


def _tensor(prompt: list[int]) -> Any:
    return ov.Tensor(np.array([prompt], dtype=np.int64))


def _config(settings: dict[str, Any]) -> Any:
    config = ovg.GenerationConfig()
    grammar = settings.pop("grammar", None)
    for name, value in settings.items():
        setattr(config, name, value)
    if grammar is not None:
        config.structured_output_config = ovg.StructuredOutputConfig(grammar=grammar)
    config.validate()
    return config
