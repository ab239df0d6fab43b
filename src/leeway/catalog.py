"""The models and engines a configuration describes (``[[models]]``, ``[[engines]]``), and the rules
that tie them together. ``leeway.settings`` reads the file (``leeway.config_reader`` checks each
field against its type and range); this module knows what a model and an engine are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from leeway.config_reader import Count, Name, Natural, NonNegative, Positive
from leeway.errors import ConfigError
from leeway.jobs import Window

EngineKind = Literal["openvino", "llamacpp", "fake", "openai"]
ENGINE_KINDS: tuple[EngineKind, ...] = get_args(EngineKind)
LOCAL_KINDS: tuple[EngineKind, ...] = ("openvino", "llamacpp", "fake")  # run inside this process
FlavorName = Literal["vllm", "sglang", "openai"]  # how the window travels upstream as a priority
FLAVORS: tuple[FlavorName, ...] = get_args(FlavorName)


@dataclass(frozen=True, slots=True)
class Price:
    """Per million tokens."""

    input: NonNegative
    output: NonNegative


@dataclass(frozen=True, slots=True)
class ModelConfig:
    id: Name
    engine: EngineKind = "openvino"
    path: str | None = None
    windows: tuple[Window, ...] = tuple(Window)
    parallel: Count = 64  # OpenVINO's KV cache grows as used: idle sequences cost nothing
    context: Count = 2048
    batch_tokens: Count = 512  # most tokens in one decode step (prompt chunks + one per sequence)
    threads: Count | None = None  # decode threads; default: all cores
    # OpenVINO's inference precision. "auto": f32 up to F32_UP_TO sequences (a lone request decodes
    # 1.2x faster than in bf16), else OpenVINO's own choice (bf16 where the CPU has it: 1.2-1.3x
    # faster at 64-128 sequences) with an f32 lane for a few requests while nothing else runs
    precision: Literal["auto", "f32", "bf16"] = "auto"
    fake_delay: NonNegative = 0.0  # fake engine: seconds per output token
    fake_tokens: Natural = 16  # fake engine: output tokens per reply (capped by max_output_tokens)
    reasoning: bool = False  # the model reasons: reasoning effort is passed to it (else: 400)
    aliases: tuple[Name, ...] = ()  # other names clients may use for this model
    # prices per window, USD per million tokens: what a job is billed when it becomes final
    prices: Mapping[Window, Price] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """``[[engines]]``: one engine serving one model. A model no entry names gets one engine of its
    own ``engine`` kind, as before."""

    kind: EngineKind
    model: Name  # the Leeway model id it serves
    id: str = ""  # unique; default: the model id (then "<model>#2", "#3" … for more of one model)
    url: Name | None = None  # openai: the server's base URL (``/v1/chat/completions`` is added)
    parallel: Count | None = None  # requests at once; default: the model's ``parallel``
    flavor: FlavorName = "openai"  # openai: how the window travels as priority
    upstream_model: Name | None = None  # openai: the model's name upstream; default: ``model``
    api_key_env: Name | None = None  # openai: env var holding the upstream key
    api_key: str | None = field(default=None, repr=False)  # read from ``api_key_env``, not a file
    timeout_seconds: Positive = 600.0  # openai: connect, and the longest silence mid-stream
    health_seconds: Positive = 5.0  # openai: how often health (and vLLM's metrics) are probed


def check_models(models: tuple[ModelConfig, ...], engines: tuple[EngineConfig, ...]) -> None:
    """What no single field says: a model's names are its own; a batch holds a token per
    sequence; a model no engine entry serves runs on an engine of its own."""
    served, names = {e.model for e in engines}, dict[str, str]()
    for i, m in enumerate(models):
        at = f"models[{i}]"
        for key, name in [(f"{at}.id", m.id), *((f"{at}.aliases", a) for a in m.aliases)]:
            if name in names:
                raise _error(key, f": {name!r} is also {names[name]!r}; names must be unique.")
            names[name] = key
        if m.batch_tokens < m.parallel:
            raise _error(
                f"{at}.batch_tokens",
                f" ({m.batch_tokens}) must be at least '{at}.parallel' ({m.parallel}): every "
                "sequence adds a token to each step.",
            )
        if m.id not in served and m.engine not in LOCAL_KINDS:
            raise _error(
                f"{at}.engine",
                f": an {m.engine!r} engine is an [[engines]] entry with its url; a model runs by "
                f"itself on one of {', '.join(map(repr, LOCAL_KINDS))}.",
            )


def check_engines(
    engines: tuple[EngineConfig, ...], models: tuple[ModelConfig, ...], env: Mapping[str, str]
) -> tuple[EngineConfig, ...]:
    """The engines with their ids given (unique) and their upstream keys read from ``env``."""
    done: list[EngineConfig] = []
    for i, engine in enumerate(engines):
        at = f"engines[{i}]"
        _check_engine(engine, at, models)
        if not engine.id:
            n = sum(1 for e in done if e.model == engine.model)
            engine = replace(engine, id=engine.model if n == 0 else f"{engine.model}#{n + 1}")
        if any(e.id == engine.id for e in done):
            raise _error(f"{at}.id", f": {engine.id!r} names another engine.")
        if (var := engine.api_key_env) is not None:
            if not env.get(var):
                raise _error(f"{at}.api_key_env", f": the environment variable {var!r} is not set.")
            engine = replace(engine, api_key=env[var])
        done.append(engine)
    return tuple(done)


def _check_engine(engine: EngineConfig, at: str, models: tuple[ModelConfig, ...]) -> None:
    if engine.api_key is not None:
        raise _error(f"{at}.api_key", " is not read from a file: name the env var in api_key_env.")
    if not any(m.id == engine.model for m in models):
        known = [m.id for m in models]
        raise _error(
            f"{at}.model", f": {engine.model!r} is not a configured model; known: {known}."
        )
    if engine.kind == "openai":
        if engine.url is None:
            raise _error(f"{at}.url", " is required for kind 'openai'.")
        if not engine.url.startswith(("http://", "https://")):
            raise _error(f"{at}.url", f" must be an http(s) URL, got {engine.url!r}.")
        return
    given = {
        "url": engine.url is not None,
        "flavor": engine.flavor != "openai",  # its default: writing it out is not told apart
        "upstream_model": engine.upstream_model is not None,
        "api_key_env": engine.api_key_env is not None,
    }
    if name := next((name for name, set_ in given.items() if set_), None):
        raise _error(f"{at}.{name}", " applies only to kind 'openai'.")


def _error(key: str, rest: str) -> ConfigError:
    return ConfigError(f"Setting {key!r}{rest}", param=key)
