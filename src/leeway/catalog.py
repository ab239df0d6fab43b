"""The models and engines a configuration describes (``[[models]]``, ``[[engines]]``), and the
checks that name the exact key at fault. ``leeway.settings`` reads the file; this module knows what
a model and an engine are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from leeway.errors import ConfigError
from leeway.jobs import Window


@dataclass(frozen=True, slots=True)
class ModelConfig:
    id: str
    engine: str = "openvino"
    path: str | None = None
    windows: tuple[Window, ...] = tuple(Window)
    parallel: int = 64  # OpenVINO's KV cache grows as used: idle sequences cost nothing
    context: int = 2048
    batch_tokens: int = (
        512  # most tokens in one decode step (prompt chunks + one per running sequence)
    )
    threads: int | None = None  # decode threads; default: all cores
    fake_delay: float = 0.0  # fake engine: seconds per output token
    fake_tokens: int = 16  # fake engine: output tokens per reply (capped by max_output_tokens)
    reasoning: bool = False  # the model reasons: reasoning effort is passed to it (else: 400)
    aliases: tuple[str, ...] = ()  # other names clients may use for this model
    # prices per window, per million tokens (stored and validated; not billed yet)
    prices: Mapping[Window, Price] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Price:
    """Per million tokens."""

    input: float
    output: float


LOCAL_KINDS = ("openvino", "llamacpp", "fake")  # engines inside this process
ENGINE_KINDS = (*LOCAL_KINDS, "openai")
FLAVORS = ("vllm", "sglang", "openai")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """``[[engines]]``: one engine serving one model. A model no entry names gets one engine of its
    own ``engine`` kind, as before."""

    kind: str
    model: str  # the Leeway model id it serves
    id: str = ""  # unique; default: the model id (then "<model>#2", "#3" … for more of one model)
    url: str | None = None  # openai: the server's base URL (``/v1/chat/completions`` is added)
    parallel: int | None = None  # requests at once; default: the model's ``parallel``
    flavor: str = "openai"  # openai: vllm | sglang | openai (how the window travels as priority)
    upstream_model: str | None = None  # openai: the model's name upstream; default: ``model``
    api_key_env: str | None = None  # openai: env var holding the upstream key
    api_key: str | None = field(default=None, repr=False)  # read from ``api_key_env`` at load
    timeout_seconds: float = 600.0  # openai: connect, and the longest silence mid-stream
    health_seconds: float = 5.0  # openai: how often health (and vLLM's metrics) are probed


def tables(raw: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    tables = raw[name]
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(f"Setting {name!r} must be a list of tables ([[{name}]]).")
    return tables


def parse_model(raw: Mapping[str, Any], i: int) -> ModelConfig:
    at = f"models[{i}]"
    known = {f.name for f in fields(ModelConfig)}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"Unknown setting(s) {unknown} in {at}; known: {sorted(known)}.")
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise ConfigError(f"Setting '{at}.id' is required: the model's name.")
    values = dict(raw)
    if "windows" in values:
        values["windows"] = tuple(_window(f"{at}.windows", w) for w in values["windows"])
    if "aliases" in values:
        values["aliases"] = tuple(str(a) for a in values["aliases"])
    if "prices" in values:
        values["prices"] = _prices(f"{at}.prices", values["prices"])
    for name, kind in (("parallel", int), ("context", int), ("batch_tokens", int)):
        if name in values:
            values[name] = coerce(f"{at}.{name}", values[name], kind)
            if values[name] < 1:
                raise ConfigError(f"Setting '{at}.{name}' must be at least 1.")
    model = ModelConfig(**values)
    if model.batch_tokens < model.parallel:
        raise ConfigError(
            f"Setting '{at}.batch_tokens' ({model.batch_tokens}) must be at least "
            f"'{at}.parallel' ({model.parallel}): every sequence adds a token to each step."
        )
    return model


def _window(at: str, value: Any) -> Window:
    try:
        return Window(value)
    except ValueError as e:
        raise ConfigError(
            f"Setting {at!r}: {value!r} is not a window; known: {[w.value for w in Window]}."
        ) from e


def _prices(at: str, raw: Any) -> dict[Window, Price]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Setting {at!r} must be a table: window = {{ input, output }}.")
    prices = {}
    for window, price in raw.items():
        key = f"{at}.{window}"
        if not isinstance(price, Mapping) or set(price) != {"input", "output"}:
            raise ConfigError(
                f"Setting {key!r} must be {{ input = …, output = … }} (per million tokens)."
            )
        values = {k: coerce(f"{key}.{k}", price[k], float) for k in ("input", "output")}
        if min(values.values()) < 0:
            raise ConfigError(f"Setting {key!r}: prices must be 0 or more.")
        prices[_window(key, window)] = Price(**values)
    return prices


def parse_engines(
    tables: list[Mapping[str, Any]], models: tuple[ModelConfig, ...], env: Mapping[str, str]
) -> tuple[EngineConfig, ...]:
    engines: list[EngineConfig] = []
    for i, raw in enumerate(tables):
        engine = _engine(raw, f"engines[{i}]", models, env)
        if not engine.id:
            n = sum(1 for e in engines if e.model == engine.model)
            engine = replace(engine, id=engine.model if n == 0 else f"{engine.model}#{n + 1}")
        if any(e.id == engine.id for e in engines):
            raise ConfigError(f"Setting 'engines[{i}].id': {engine.id!r} names another engine.")
        engines.append(engine)
    return tuple(engines)


def _engine(
    raw: Mapping[str, Any], at: str, models: tuple[ModelConfig, ...], env: Mapping[str, str]
) -> EngineConfig:
    known = {f.name for f in fields(EngineConfig)} - {"api_key"}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"Unknown setting(s) {unknown} in {at}; known: {sorted(known)}.")
    values: dict[str, Any] = {}
    for name in ("kind", "model", "id", "url", "flavor", "upstream_model", "api_key_env"):
        if name in raw:
            if not isinstance(raw[name], str) or not raw[name]:
                raise ConfigError(f"Setting '{at}.{name}' must be a non-empty string.")
            values[name] = raw[name]
    for name in ("kind", "model"):
        if name not in values:
            raise ConfigError(f"Setting '{at}.{name}' is required.")
    if values["kind"] not in ENGINE_KINDS:
        raise ConfigError(f"Setting '{at}.kind': {values['kind']!r}; known: {list(ENGINE_KINDS)}.")
    if not any(m.id == values["model"] for m in models):
        raise ConfigError(
            f"Setting '{at}.model': {values['model']!r} is not a configured model; "
            f"known: {[m.id for m in models]}."
        )
    if "parallel" in raw:
        values["parallel"] = coerce(f"{at}.parallel", raw["parallel"], int)
        if values["parallel"] < 1:
            raise ConfigError(f"Setting '{at}.parallel' must be at least 1.")
    for name in ("timeout_seconds", "health_seconds"):
        if name in raw:
            values[name] = coerce(f"{at}.{name}", raw[name], float)
            if values[name] <= 0:
                raise ConfigError(f"Setting '{at}.{name}' must be more than 0.")
    if values.get("flavor", "openai") not in FLAVORS:
        raise ConfigError(f"Setting '{at}.flavor': {values['flavor']!r}; known: {list(FLAVORS)}.")
    if values["kind"] == "openai":
        url = values.get("url")
        if url is None:
            raise ConfigError(f"Setting '{at}.url' is required for kind 'openai'.")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"Setting '{at}.url' must be an http(s) URL, got {url!r}.")
    else:
        for name in ("url", "flavor", "upstream_model", "api_key_env"):
            if name in values:
                raise ConfigError(f"Setting '{at}.{name}' applies only to kind 'openai'.")
    if (var := values.get("api_key_env")) is not None:
        if not env.get(var):
            raise ConfigError(
                f"Setting '{at}.api_key_env': the environment variable {var!r} is not set."
            )
        values["api_key"] = env[var]
    return EngineConfig(**values)


def coerce(name: str, value: Any, kind: type) -> Any:
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    try:
        return kind(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"Setting {name!r} must be {kind.__name__}, got {value!r}.") from e
