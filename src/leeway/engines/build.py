"""``build_engines(settings)``: the engines the settings describe, none started.

Every ``[[engines]]`` entry makes one engine; a model that no entry names gets one engine of its own
``engine`` kind with its own settings (so a config with no ``[[engines]]`` works as before). An engine
inside this process (openvino, llamacpp, fake) gets an id no other process has, so each dispatcher process
fills its own; an upstream engine's id is the same in every process, so one fills it at a time.
"""

from __future__ import annotations

from dataclasses import replace

from leeway.catalog import ENGINE_KINDS, EngineConfig, ModelConfig
from leeway.engines import Engine, local_id
from leeway.engines.fake import FakeEngine
from leeway.errors import ConfigError
from leeway.settings import Settings


def engine_configs(settings: Settings) -> list[EngineConfig]:
    """The ``[[engines]]`` entries, then one implied engine per model no entry names."""
    served = {e.model for e in settings.engines}
    implied = [
        EngineConfig(kind=m.engine, model=m.id, id=m.id)
        for m in settings.models
        if m.id not in served
    ]
    return [*settings.engines, *implied]


def build_engines(settings: Settings) -> list[Engine]:
    models = {m.id: m for m in settings.models}
    return [build_engine(e, models[e.model]) for e in engine_configs(settings)]


def build_engine(engine: EngineConfig, model: ModelConfig) -> Engine:
    if engine.parallel is not None:
        model = replace(model, parallel=engine.parallel)
    if engine.kind == "fake":
        return FakeEngine(
            model.id,
            parallel=model.parallel,
            context=model.context,
            tokens=model.fake_tokens,
            delay=model.fake_delay,
            id=local_id(engine.id),
        )
    if engine.kind == "openvino":
        from leeway.engines.openvino import OpenVINOEngine

        return OpenVINOEngine(model, id=local_id(engine.id))
    if engine.kind == "llamacpp":
        from leeway.engines.llamacpp import LlamaCppEngine  # needs the llamacpp extra

        return LlamaCppEngine(model, id=local_id(engine.id))
    if engine.kind == "openai":
        from leeway.engines.openai_upstream import OpenAIEngine

        return OpenAIEngine(engine, model)
    raise ConfigError(
        f"Engine {engine.id!r}: unknown kind {engine.kind!r}; known: {', '.join(map(repr, ENGINE_KINDS))}."
    )
