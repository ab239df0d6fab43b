"""``leeway load``'s workload: a TOML file and flags into one plan (the simulator's workload)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leeway.errors import ConfigError
from leeway.jobs import Window
from leeway.load.plan import lengths, pairs, read_plan
from leeway.sim.workload import Drop, Lengths, Phase

FILE = """
model = "m"
rate = 2.5
mix = { asap = 1, flex = 3 }
prompt = { median = 50, sigma = 0.5, cap = 400 }
tenants = 3
seed = 7
drain = 30
targets = { priority = 20, standard = 60 }

[[phases]]
seconds = 10
load = 1.5
[[phases]]
seconds = 20
load = 0.5

[[drops]]
window = "flex"
count = 40
at = 5
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workload.toml"
    path.write_text(text)
    return path


def test_a_file_is_read_into_the_simulators_workload(tmp_path: Path):
    plan = read_plan(_file(tmp_path, FILE), {})
    w = plan.workload
    assert plan.model == "m" and plan.rate == 2.5 and plan.drain == 30
    assert w.phases == (Phase(10, 1.5), Phase(20, 0.5)) and plan.seconds == 30
    assert w.mix == {Window.ASAP: 1, Window.FLEX: 3}
    assert w.prompt == Lengths(50, 0.5, 400) and w.output == Lengths(120, 0.7, 1_024)
    assert w.drops == (Drop(Window.FLEX, 40, 5),) and (w.tenants, w.seed) == (3, 7)
    assert plan.targets == {Window.PRIORITY: 20, Window.STANDARD: 60}
    assert plan.tokens_per_second(None) == 2.5 * w.output.mean  # load 1 is the rate


def test_flags_override_the_file_and_a_median_alone_keeps_the_rest(tmp_path: Path):
    flags = {"output": lengths("64", "--output-tokens"), "prompt": lengths("80", "--prompt-tokens")}
    flags["mix"] = pairs("priority=1", "--mix")
    plan = read_plan(_file(tmp_path, FILE), flags)
    assert plan.workload.prompt == Lengths(80, 0.5, 400)  # the file's sigma and cap
    assert plan.workload.output == Lengths(64, 0.7, 1_024)  # the defaults'
    assert plan.workload.mix == {Window.PRIORITY: 1}


def test_one_phase_from_seconds_and_load():
    plan = read_plan(None, {"model": "m", "seconds": 90, "load": 0.9})
    assert plan.workload.phases == (Phase(90, 0.9),) and plan.rate is None
    assert plan.tokens_per_second(1_000.0) == 1_000.0
    with pytest.raises(ValueError):
        plan.tokens_per_second(None)


@pytest.mark.parametrize(
    ("text", "flags", "key"),
    [
        ('model = "m"\nmix = { soon = 1 }', {}, "mix.soon"),
        ('model = "m"\nprompt = { median = -1, sigma = 1, cap = 9 }', {}, "prompt.median"),
        ('model = "m"\n[[drops]]\nwindow = "flex"\ncount = 0', {}, "drops[0].count"),
        ('model = "m"\nload = 1\nrate = 2', {}, "rate"),
        ('model = "m"\nseconds = 5\n[[phases]]\nseconds = 1\nload = 1', {}, "seconds"),
        ('model = "m"\nmix = { asap = 0 }', {}, "mix"),
        ("seconds = 5", {}, "model"),
        ('model = "m"', {"tenants": 0}, "tenants"),
    ],
)
def test_a_mistake_is_one_line_naming_its_key(tmp_path: Path, text: str, flags: dict, key: str):
    with pytest.raises(ConfigError) as raised:
        read_plan(_file(tmp_path, text), flags)
    assert raised.value.param == key and "\n" not in raised.value.message


@pytest.mark.parametrize(
    ("call", "flag"),
    [
        (lambda: pairs("asap=fast", "--mix"), "--mix"),
        (lambda: pairs("asap", "--mix"), "--mix"),
        (lambda: lengths("1,2,3,4", "--prompt-tokens"), "--prompt-tokens"),
    ],
)
def test_a_bad_flag_names_itself(call, flag: str):
    with pytest.raises(ConfigError) as raised:
        call()
    assert raised.value.param == flag


def test_flag_numbers_keep_their_kind():
    assert lengths("300,0.8,4096", "--x") == {"median": 300, "sigma": 0.8, "cap": 4096}
    assert isinstance(lengths("300,0.8,4096", "--x")["cap"], int)
    assert pairs(" asap=0.1, flex=3 ", "--mix") == {"asap": 0.1, "flex": 3}


def test_an_unreadable_file_is_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_plan(_file(tmp_path, "model = "), {})
    with pytest.raises(ConfigError, match="No such file"):
        read_plan(tmp_path / "missing.toml", {})


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--steps", "0"], "argument --steps: must be above 0"),
        (["--calibrate", "-1"], "argument --calibrate: must be above 0"),
        (["--connections", "many"], "argument --connections: 'many' is not an integer"),
        (["--drain", "-5"], "argument --drain: must be 0 or more"),
        (["--rate", "0"], "argument --rate: must be above 0"),
    ],
)
def test_a_bad_number_on_the_command_line_is_a_usage_error(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
):
    from leeway.load.command import parser

    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(flags)
    assert stopped.value.code == 2 and says in capsys.readouterr().err
    assert parser().parse_args(["--drain", "0", "--steps", "3"]).steps == 3
