"""What ``leeway load`` replays: a workload file (TOML) and flags, read into one ``Plan``.

The workload is the simulator's (``leeway.sim.workload``): a window mix by output tokens, Poisson
arrivals in load phases, lognormal prompt and output lengths, batch drops, Zipf-weighted tenants
with a few shared prompt prefixes each. A file holds any of the fields of ``LoadFile``::

    model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    seconds = 600            # one phase of this length at ``load`` (or ``rate``)...
    load = 0.9               # ...a share of the server's measured capacity (output tokens/s)
    # rate = 2.5             # or: requests/s
    mix = { asap = 0.1, priority = 0.2, standard = 0.4, flex = 0.3 }   # shares of output tokens
    prompt = { median = 300, sigma = 0.8, cap = 4096 }   # tokens, lognormal, capped
    output = { median = 120, sigma = 0.7, cap = 1024 }   # tokens; each request's max_output_tokens
    tenants = 20
    prefixes = 8             # shared system prompts per tenant
    seed = 0
    drain = 600              # after the arrivals: seconds to wait for every request to finish
    targets = { priority = 20, standard = 60 }   # default: the server's (its /metrics)

    [[phases]]               # instead of seconds/load: phases, each a share of capacity (or, with
    seconds = 300            # ``rate``, a multiple of it)
    load = 1.2
    [[drops]]                # a batch: ``count`` requests of ``window`` arriving together at ``at``
    window = "flex"
    count = 500
    at = 60

Flags override the file (``--mix asap=0.1,priority=0.2``, ``--prompt-tokens 300,0.8,4096``); either
way a wrong value is one line naming its key (``mix.soon``, ``prompt.median``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leeway.config_reader import Count, Natural, NonNegative, Positive, read
from leeway.errors import ConfigError
from leeway.jobs import Window
from leeway.sim.workload import Drop, Lengths, Phase, Workload

DEFAULT_MIX: Mapping[Window, float] = {
    Window.ASAP: 0.1,
    Window.PRIORITY: 0.2,
    Window.STANDARD: 0.4,
    Window.FLEX: 0.3,
}


@dataclass(frozen=True, slots=True)
class LengthSpec:
    median: Positive  # tokens
    sigma: NonNegative  # of the log
    cap: Count  # no length is above this (outputs: the max_output_tokens requests declare)


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    seconds: Positive
    load: NonNegative  # a share of capacity, or (with ``rate``) a multiple of ``rate``


@dataclass(frozen=True, slots=True)
class DropSpec:
    window: Window
    count: Count
    at: NonNegative = 0.0  # seconds after the start


@dataclass(frozen=True, slots=True)
class LoadFile:
    model: str | None = None
    seconds: Positive | None = None
    load: NonNegative | None = None
    rate: Positive | None = None
    mix: Mapping[Window, NonNegative] = field(default_factory=lambda: dict(DEFAULT_MIX))
    prompt: LengthSpec = LengthSpec(300, 0.8, 4_096)
    output: LengthSpec = LengthSpec(120, 0.7, 1_024)
    phases: tuple[PhaseSpec, ...] = ()
    drops: tuple[DropSpec, ...] = ()
    tenants: Count = 20
    prefixes: Count = 8
    seed: Natural = 0
    drain: NonNegative = 600.0
    targets: Mapping[Window, NonNegative] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    model: str
    workload: Workload  # phases' loads are shares of ``capacity`` (or multiples of ``rate``)
    rate: float | None  # requests/s at load 1 (``--rate``); None: a share of measured capacity
    drain: float
    targets: Mapping[Window, float]  # given ones; the server's (or the defaults) fill the rest

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.workload.phases)

    def tokens_per_second(self, capacity: float | None) -> float:
        """What ``generate`` takes: output tokens/s at load 1."""
        if self.rate is not None:
            return self.rate * self.workload.output.mean
        if capacity is None:
            raise ValueError("a load given as a share needs the server's capacity")
        return capacity


def read_plan(path: Path | None, flags: Mapping[str, Any]) -> Plan:
    """The plan a workload file (if any) and the flags given (None: not given) describe."""
    raw: dict[str, Any] = _file(path) if path is not None else {}
    for key, value in flags.items():
        if value is None:
            continue
        if key in ("prompt", "output"):  # a flag may give the median alone: the rest stays
            default = asdict(getattr(LoadFile(), key))
            given = raw.get(key)
            value = {**default, **(given if isinstance(given, dict) else {}), **value}
        raw[key] = value
    spec = read(LoadFile, raw)
    if spec.model is None:
        raise ConfigError("Give the model (--model, or model in the workload file).", param="model")
    if spec.load is not None and spec.rate is not None:
        raise ConfigError(
            "Give either a load (a share of capacity) or a rate, not both.", param="rate"
        )
    if spec.phases and (spec.seconds is not None or spec.load is not None):
        key = "seconds" if spec.seconds is not None else "load"
        raise ConfigError(f"Setting {key!r} is for one phase; the file has phases.", param=key)
    if not any(spec.mix.values()):
        raise ConfigError("Setting 'mix' must give some window a share above 0.", param="mix")
    phases = tuple(Phase(p.seconds, p.load) for p in spec.phases) or (
        Phase(spec.seconds or 60.0, spec.load if spec.load is not None else 1.0),
    )
    workload = Workload(
        phases,
        mix=dict(spec.mix),
        prompt=Lengths(spec.prompt.median, spec.prompt.sigma, spec.prompt.cap),
        output=Lengths(spec.output.median, spec.output.sigma, spec.output.cap),
        drops=tuple(Drop(d.window, d.count, d.at) for d in spec.drops),
        tenants=spec.tenants,
        prefixes=spec.prefixes,
        seed=spec.seed,
    )
    return Plan(spec.model, workload, spec.rate, spec.drain, dict(spec.targets))


def pairs(text: str, flag: str) -> dict[str, float]:
    """``asap=0.1,priority=0.2`` as a mapping (its keys are checked when the plan is read)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        out[name.strip()] = _number(value, flag) if sep else _number("", flag)
    return out


def lengths(text: str, flag: str) -> dict[str, float]:
    """``MEDIAN[,SIGMA[,CAP]]`` as a ``LengthSpec``'s fields."""
    values = [_number(v, flag) for v in text.split(",")]
    if not 1 <= len(values) <= 3:
        raise ConfigError(f"{flag} takes MEDIAN[,SIGMA[,CAP]], got {text!r}.", param=flag)
    return dict(zip(("median", "sigma", "cap"), values, strict=False))


def _number(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} takes numbers, got {text.strip()!r}.", param=flag) from None
    return int(value) if value.is_integer() and "." not in text else value


def _file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"Workload file {str(path)!r}: {e.strerror or e}.") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Workload file {str(path)!r} is not valid TOML: {e}.") from e
