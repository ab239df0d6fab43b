"""A wrong value in the config file, the environment or a flag is one line naming its key and what
is allowed (``leeway.config_reader``), never a traceback; the reader reads any settings dataclass."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pytest
from annotated_types import Ge, Le

from leeway import settings as config
from leeway.config_reader import Allowed, Count, Positive, read
from leeway.errors import ConfigError
from leeway.jobs import Window

# the three configs that crashed `leeway serve` with a traceback, and the one line each gives now
ISSUE_CASES = [
    (
        '[limits]\nrequests_per_second = "fast"\n',
        "limits.requests_per_second",
        "Setting 'limits.requests_per_second' must be a number, at least 0, got 'fast'.",
    ),
    (
        "window_targets = { urgent = 5 }\n",
        "window_targets.urgent",
        "Setting 'window_targets.urgent' is unknown: the keys of 'window_targets' must be one of "
        "'asap', 'priority', 'standard', 'flex'.",
    ),
    (
        "off_peak_hours = [[1]]\n",
        "off_peak_hours[0]",
        "Setting 'off_peak_hours[0]' must be [start, end] UTC hours, each from 0 to 24, got [1].",
    ),
]


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> config.Settings:
    path = tmp_path / "leeway.toml"
    path.write_text(text)
    return config.load(path, env=env or {})


@pytest.mark.parametrize(("toml", "key", "message"), ISSUE_CASES)
def test_the_issue_cases_name_their_key(tmp_path: Path, toml: str, key: str, message: str):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, toml)
    assert raised.value.param == key and raised.value.message == message


@pytest.mark.parametrize(("toml", "key", "message"), ISSUE_CASES)
def test_serve_exits_with_one_line_and_no_traceback(
    tmp_path: Path, toml: str, key: str, message: str
):
    bad = tmp_path / "bad.toml"
    bad.write_text(toml)
    out = subprocess.run(
        [sys.executable, "-m", "leeway", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [f"leeway: {message}"]
    assert not (tmp_path / ".leeway").exists()  # nothing was created


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        # strict: nothing silently becomes something else
        ("strict_incomplete = 1", "strict_incomplete", "true or false"),
        ('port = "8000"', "port", "a whole number"),
        ("port = 8000.5", "port", "a whole number"),
        ("port = 70000", "port", "from 0 to 65535"),
        ("lease_seconds = nan", "lease_seconds", "finite"),
        ("flex_reserve = 2", "flex_reserve", "from 0 to 1"),
        ("off_peak_hours = [[1, 25]]", "off_peak_hours[0][1]", "from 0 to 24"),
        ("limits = 5", "limits", "a table"),
        ("models = { id = 'm' }", "models", "a list"),
        # unknown keys, however deep, by their full key
        ("[tenant_limits.big]\nrps = 1", "tenant_limits.big.rps", "known: ['max_queued'"),
        ('[[models]]\nid = "a"\n[[models]]\nid = "b"\nparalel = 2', "models[1].paralel", "known"),
        # deep keys
        (
            '[[models]]\nid = "a"\n[[models]]\nid = "b"\nprices.flex = { input = "x", output = 1 }',
            "models[1].prices.flex.input",
            "a number",
        ),
        (
            '[[models]]\nid = "a"\nwindows = ["asap", "soon"]',
            "models[0].windows[1]",
            "'asap', 'priority', 'standard', 'flex'",
        ),
        ('[[models]]\nid = "a"\nengine = "gpu"', "models[0].engine", "'llamacpp', 'fake'"),
        ('[[models]]\nid = "a"\nthreads = 0', "models[0].threads", "at least 1"),
        (
            '[[models]]\nid = "a"\n'
            + '[[engines]]\nkind = "fake"\nmodel = "a"\n' * 2
            + '[[engines]]\nkind = "openai"\nmodel = "a"\nurl = 5',
            "engines[2].url",
            "a string",
        ),
        ('[webhooks]\nallow = ["::1/129"]', "webhooks.allow[0]", "not a CIDR range"),
        ('policy = "fifo"', "policy", "one of 'leeway', 'fcfs', 'strict'"),
        # rules across fields and entries, checked after the reading
        ("models = []", "models", "non-empty"),
        ('[[models]]\nid = "a"\n[[models]]\nid = "a"', "models[1].id", "unique"),
        (
            '[[models]]\nid = "a"\n[[models]]\nid = "b"\naliases = ["a"]',
            "models[1].aliases",
            "unique",
        ),
    ],
)
def test_every_mistake_is_one_line_naming_its_key(tmp_path: Path, toml: str, key: str, words: str):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, toml + "\n")
    assert raised.value.param == key and f"'{key}'" in raised.value.message
    assert words in raised.value.message and "\n" not in raised.value.message


def test_values_are_read_into_their_types(tmp_path: Path):
    s = load(
        tmp_path,
        'data_dir = "/tmp/x"\noff_peak_hours = [[0, 6.5]]\n[tenant_limits.big]\nmax_queued = 3\n'
        '[webhooks]\nallow = ["10.0.0.0/8", "::1/128"]\n'
        '[[models]]\nid = "m"\nwindows = ["flex"]\nprices.flex = { input = 1, output = 2 }\n',
    )
    assert s.data_dir == Path("/tmp/x") and s.off_peak_hours == ((0.0, 6.5),)
    assert (
        isinstance(s.tenant_limits["big"], config.Limits) and s.tenant_limits["big"].max_queued == 3
    )
    assert s.webhooks.allow == (
        ipaddress.IPv4Network("10.0.0.0/8"),
        ipaddress.IPv6Network("::1/128"),
    )
    m = s.models[0]
    assert m.windows == (Window.FLEX,) and m.prices[Window.FLEX].output == 2.0
    assert isinstance(m.prices[Window.FLEX].input, float)


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("yes", True), ("on", True), ("true", True), ("0", False)]
)
def test_env_strings_are_converted_by_the_fields_type(text: str, value: bool):
    s = config.load(env={"LEEWAY_STRICT_INCOMPLETE": text, "LEEWAY_PORT": "9100"})
    assert s.strict_incomplete is value and s.port == 9100


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"LEEWAY_STRICT_INCOMPLETE": "maybe"}, "strict_incomplete"),
        ({"LEEWAY_PORT": "abc"}, "port"),
        ({"LEEWAY_LEASE_SECONDS": "fast"}, "lease_seconds"),
    ],
)
def test_a_bad_env_value_names_the_setting_and_the_variable(env: dict[str, str], key: str):
    with pytest.raises(ConfigError) as raised:
        config.load(env=env)
    assert raised.value.param == key
    assert f"'{key}'" in raised.value.message and next(iter(env)) in raised.value.message


def test_a_flag_of_the_wrong_type_is_named():
    with pytest.raises(ConfigError, match="'port' must be a whole number"):
        config.load(env={}, port="fast")


@dataclass(frozen=True, slots=True)
class Server:
    """A table a later change might add: the reader needs nothing but the dataclass."""

    timeout_seconds: Positive = 5.0
    max_connections: Count = 100
    backlog: Annotated[int, Ge(1), Le(4096), Allowed("a queue length from 1 to 4096")] = 128


@dataclass(frozen=True, slots=True)
class Root:
    name: str = "x"
    server: Server = Server()
    servers: Mapping[str, Server] = field(default_factory=dict)


def test_a_new_table_needs_only_its_dataclass():
    root = read(Root, {"server": {"timeout_seconds": 2}, "servers": {"a": {"backlog": 5}}})
    assert root == Root(server=Server(timeout_seconds=2), servers={"a": Server(backlog=5)})
    with pytest.raises(ConfigError, match=r"'servers\.a\.backlog' must be from 1 to 4096, got 0"):
        read(Root, {"servers": {"a": {"backlog": 0}}})
    with pytest.raises(
        ConfigError, match=r"'server\.backlog' must be a queue length from 1 to 4096"
    ):
        read(Root, {"server": {"backlog": "big"}})
    with pytest.raises(ConfigError, match=r"Unknown server setting 'server\.timeout'"):
        read(Root, {"server": {"timeout": 1}})
