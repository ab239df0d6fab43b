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
"""

from __future__ import annotations

import contextlib
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


def inference_precision(config: ModelConfig) -> str | None:
    """The precision the model's ``precision`` asks for, or None for OpenVINO's default. At few
    sequences a step is bound by per-operation costs that bf16's conversions add to; at many, by
    the matrix products that bf16 halves."""
    if config.precision != "auto":
        return config.precision
    return "f32" if config.parallel <= F32_UP_TO else None


def compiled_cache() -> str:
    """Where OpenVINO keeps the models it compiled (the model and its tokenizer, built from the
    GGUF file): a start that finds them there loads in a third of the time."""
    return str(cache_dir() / "openvino")


def serve(conn: Connection, path: str, config: ModelConfig) -> None:
    """The process's body: load, say ready, then step until told to close (or the pipe breaks)."""
    pipe = pipeline(Path(path), config)
    conn.send(("ready",))
    handles: dict[int, Any] = {}
    try:
        while _take(conn, pipe, handles, block=not handles):
            if handles:
                _step(conn, pipe, handles)
    except (EOFError, BrokenPipeError):  # the engine's process is gone
        pass
    finally:
        for handle in handles.values():
            handle.cancel()
        with contextlib.suppress(RuntimeError):  # a step drops what was cancelled (here or
            if pipe.has_non_finished_requests():  # before), so no KV block is held at exit
                pipe.step()


def _take(conn: Connection, pipe: Any, handles: dict[int, Any], block: bool) -> bool:
    """Apply every waiting message; False on ``close``."""
    while block or conn.poll():
        block = False
        message = conn.recv()
        if message[0] == "close":
            return False
        if message[0] == "cancel":
            if (handle := handles.pop(message[1], None)) is not None:
                handle.cancel()
            continue
        _, request, prompt, settings = message
        try:
            handles[request] = pipe.add_request(request, _tensor(prompt), _config(settings))
        except (RuntimeError, ValueError, TypeError) as e:
            conn.send(("failed", [request], str(e)))
    return True


def _step(conn: Connection, pipe: Any, handles: dict[int, Any]) -> None:
    try:
        pipe.step()
    except RuntimeError as e:
        conn.send(("failed", list(handles), str(e)))
        for handle in handles.values():
            handle.cancel()
        handles.clear()
        return
    out = []
    for request, handle in list(handles.items()):
        if handle.can_read():
            tokens: list[int] = []
            finish = ""
            for output in handle.read().values():
                tokens += output.generated_ids
                finish = _FINISH.get(output.finish_reason, "")
            out.append((request, tokens, finish))
        elif (status := handle.get_status()) != ovg.GenerationStatus.RUNNING:
            # over with nothing left to read: never leave it waiting (finished, never admitted,
            # or dropped by the pipeline itself; a cancel of ours removed it from ``handles``)
            out.append((request, [], _OVER.get(status, "dropped")))
        else:
            continue
        if out[-1][2]:
            del handles[request]
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
