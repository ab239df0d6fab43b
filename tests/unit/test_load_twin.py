"""The twin of a replay: the server's metrics as the load tool reads them, the engine model fitted
to them, and the same requests through the simulator."""

from __future__ import annotations

import random

import numpy as np
import pytest

from leeway.jobs import Window
from leeway.load.fit import Fit, calibrated, fit, nonnegative_least_squares
from leeway.load.records import Record, Request
from leeway.load.scrape import EngineCounters, Sample, parse, window_of
from leeway.load.twin import gaps, twin
from leeway.scheduler.metrics import Metrics
from leeway.sim.engine_model import EngineModel
from leeway.sim.workload import Workload

TARGETS = {Window.ASAP: 0.0, Window.PRIORITY: 20.0, Window.STANDARD: 60.0, Window.FLEX: 86_400.0}
TRUE = EngineModel("true", 32, 5e-3, 2e-3, 1 / 1_500)


def test_the_servers_metrics_are_read_back_per_engine():
    clock = iter([0.0, 2.0, 5.0]).__next__
    metrics = Metrics(clock=clock)
    metrics.configured("fcfs", TARGETS, urgent_share=0.375)
    metrics.engine("e1", "m", 8)
    metrics.running("e1", 3)  # at 2 s
    metrics.prefilling("e1", 120)
    metrics.decoded("e1", 40)
    metrics.rates("e1", 900.0, 12.5)
    sample = parse(metrics.render({Window.FLEX: 4}, dict).decode(), at=1.0)  # rendered at 5 s
    e = sample.engines["e1"]
    assert (e.model, e.sequences, e.output, e.prompt) == ("m", 8, 40, 120)
    assert (e.seq_seconds, e.busy) == (9.0, 3.0)  # 3 sequences from 2 s to 5 s
    assert (e.prefill_rate, e.decode_rate) == (900.0, 12.5)
    assert sample.policy == "fcfs" and sample.targets == TARGETS and sample.depths["flex"] == 4
    assert sample.urgent_share == 0.375  # what the twin's policy is given


def _samples(model: EngineModel, seconds: int, seed: int = 0) -> list[Sample]:
    """A second at a time, each at some number of sequences with some prompt tokens admitted,
    as an engine of ``model`` would count them."""
    rng, at, c = random.Random(seed), 0.0, EngineCounters("m", model.capacity)
    out = [Sample(at, {"e": c})]
    for _ in range(seconds):
        n, prompt = rng.randint(2, model.capacity), rng.randint(0, 400)
        steps = (1 - model.prefill_per_token * prompt) / model.step_time(n)
        c = EngineCounters(
            "m",
            model.capacity,
            output=c.output + steps * n,
            prompt=c.prompt + prompt,
            seq_seconds=c.seq_seconds + n,
            busy=c.busy + 1,
        )
        at += 1
        out.append(Sample(at, {"e": c}))
    return out


def test_the_engine_model_is_recovered_from_its_counters():
    fitted = fit(_samples(TRUE, 60))
    assert fitted is not None and fitted.intervals == 60 and fitted.engines == 1
    m = fitted.model
    assert m.capacity == 32
    assert m.step_base == pytest.approx(TRUE.step_base, rel=1e-6)
    assert m.step_per_sequence == pytest.approx(TRUE.step_per_sequence, rel=1e-6)
    assert m.prefill_per_token == pytest.approx(TRUE.prefill_per_token, rel=1e-6)
    utilization, tokens = window_of(_samples(TRUE, 60))
    assert utilization is not None and 0.06 < utilization < 1 and tokens is not None


def test_idle_intervals_are_left_out_and_too_few_fall_back_on_the_policys_rates():
    samples = _samples(TRUE, 5)
    last = samples[-1].engines["e"]
    rates = EngineCounters("m", 32, last.output, last.prompt, last.seq_seconds, last.busy, 1e3, 8.0)
    fitted = fit([*samples, Sample(100.0, {"e": rates})])  # 94 s mostly idle: not an equation
    assert fitted is not None and fitted.intervals == 0
    assert fitted.model.step_time(32) == pytest.approx(1 / 8.0)
    assert fitted.model.prefill_per_token == pytest.approx(1e-3)
    assert fit([Sample(0.0)]) is None


def test_least_squares_keeps_every_coefficient_non_negative():
    x = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    y = x @ np.array([2.0, 3.0, -1.0])  # the unconstrained answer has a negative coefficient
    coef = nonnegative_least_squares(x, y)
    assert min(coef) >= 0 and coef[2] == 0.0
    assert nonnegative_least_squares(x, x @ np.array([1.0, 2.0, 3.0])) == pytest.approx((1, 2, 3))


def test_the_twin_of_requests_far_apart_is_each_ones_service_time():
    requests = [Request(i, 100.0 * i, w, 150, 40, 0, 0) for i, w in enumerate(Window)]
    records = [
        Record(r, sent=r.at, first=r.at + 0.5, done=r.at + 9.0, input_tokens=150, output_tokens=30)
        for r in requests
    ]
    records.append(Record(Request(9, 450.0, Window.FLEX, 10, 10, 0, 0), sent=450, error="http 429"))
    predicted = twin(records, Workload(()), Fit(TRUE, 1, 0, "test"), "leeway", TARGETS, 400, 1e4)
    service = 150 * TRUE.prefill_per_token + 30 * TRUE.step_time(1)
    assert [w.requests for w in predicted.windows] == [1, 1, 1, 1]  # the refused one left out
    assert all(w.turn_p50 == pytest.approx(service) for w in predicted.windows)
    assert predicted.overall.output_tokens == 4 * 30
    measured_like = twin(records, Workload(()), Fit(TRUE, 1, 0, "test"), "fcfs", TARGETS, 400, 5.0)
    assert measured_like.overall.errors == {"unfinished": 3}  # those done after the replay ended
    gap = gaps(predicted, predicted)[0]
    assert gap.attained_points == 0 and gap.turn_p50_share == 0


def test_a_fit_is_scaled_to_the_calibrated_capacity():
    fitted = Fit(TRUE, 2, 40, "fitted on 40 busy intervals")
    full = TRUE.throughput(3.0) * 2  # two engines, saturated, 3 prompt tokens per output token
    slower = calibrated(fitted, full / 2, 3.0)  # the calibration measured half of that
    m = slower.model
    assert m.throughput(3.0) * 2 == pytest.approx(full / 2)
    assert (m.step_base, m.step_per_sequence, m.prefill_per_token) == pytest.approx(
        (2 * TRUE.step_base, 2 * TRUE.step_per_sequence, 2 * TRUE.prefill_per_token)
    )
    assert "scaled x2.00" in slower.source and slower.engines == 2
    assert calibrated(fitted, 0.0, 3.0) is fitted  # nothing measured: left as fitted
