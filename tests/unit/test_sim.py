"""The simulator on small workloads: it conserves jobs and tokens, is deterministic, and shows
Leeway's policy ahead of fcfs when the fleet is overloaded."""

from __future__ import annotations

import pytest

from leeway.jobs import Window
from leeway.sim.__main__ import main
from leeway.sim.engine_model import CPU_SMOLLM, H100_8B
from leeway.sim.report import summarize
from leeway.sim.runner import Outcome, simulate
from leeway.sim.workload import Drop, Phase, Workload

SMALL = Workload((Phase(120, 0.9),), drops=(Drop(Window.FLEX, 40),), tenants=4, seed=7)
OVERLOAD = Workload((Phase(240, 1.3), Phase(120, 0.5)), tenants=4, seed=3)


def run(workload: Workload, kind: str, engines: int = 4) -> Outcome:
    return simulate(workload, CPU_SMOLLM, engines, kind)


@pytest.mark.parametrize("kind", ["leeway", "fcfs", "strict"])
def test_every_job_finishes_exactly_once_with_all_its_tokens(kind: str):
    out = run(SMALL, kind)
    n = len(out.arrivals)
    assert n > 100
    assert out.completions == n
    rows = zip(out.arrivals.time, out.started, out.finished, strict=True)
    assert all(f >= s >= t for t, s, f in rows)
    assert out.decoded == sum(out.arrivals.output)


def test_preempted_jobs_keep_their_tokens():
    out = run(OVERLOAD, "leeway")
    assert out.preemptions > 0
    assert out.completions == len(out.arrivals)
    assert out.decoded == sum(out.arrivals.output)


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not():
    a, b = run(SMALL, "leeway"), run(SMALL, "leeway")
    assert a.finished == b.finished and a.started == b.started
    other = Workload(SMALL.phases, drops=SMALL.drops, tenants=4, seed=8)
    assert run(other, "leeway").finished != a.finished


def test_leeway_beats_fcfs_on_priority_when_overloaded():
    leeway = summarize(run(OVERLOAD, "leeway")).row(Window.PRIORITY).attained
    fcfs = summarize(run(OVERLOAD, "fcfs")).row(Window.PRIORITY).attained
    assert leeway > 0.8  # the longest outputs cannot finish in 60 s on this CPU preset at all
    assert leeway > fcfs + 0.2


def test_asap_starts_within_a_second_under_leeway_but_not_fcfs_when_overloaded():
    assert summarize(run(OVERLOAD, "leeway")).row(Window.ASAP).wait_p99 <= 1.0
    assert summarize(run(OVERLOAD, "fcfs")).row(Window.ASAP).wait_p99 > 1.0


def test_the_cpu_preset_reproduces_the_measured_decode_rates():
    for sequences, measured in ((1, 105), (8, 170), (32, 190)):
        assert CPU_SMOLLM.decode_rate(sequences) == pytest.approx(measured, rel=0.1)
    assert 3_000 < H100_8B.decode_rate(256) < 10_000
    assert 60 < H100_8B.decode_rate(1) < 90


def test_the_command_line_prints_a_table(capsys: pytest.CaptureFixture[str]):
    assert main(["--preset", "cpu-smollm", "--engines", "2", "--seconds", "20"]) == 0
    printed = capsys.readouterr().out
    for name in ("leeway", "fcfs", "strict", "priority", "util"):
        assert name in printed
