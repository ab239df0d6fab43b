"""``leeway load``'s figures: per window and overall, from records; the table and JSON."""

from __future__ import annotations

import json

import pytest

from leeway.jobs import Window
from leeway.load.records import Record, Request
from leeway.load.stats import percentile, report
from leeway.load.table import as_json, table

TARGETS = {Window.ASAP: 0.0, Window.PRIORITY: 20.0, Window.STANDARD: 60.0, Window.FLEX: 86_400.0}


def _record(window: Window, at: float, turn: float | None, ttft: float = 0.1, **kw) -> Record:
    request = Request(0, at, window, 100, 50, 0, 0)
    sent = kw.pop("sent", at)
    done = None if turn is None else sent + turn
    return Record(request, sent=sent, accepted=sent, first=sent + ttft, done=done, **kw)


def test_percentiles_are_nearest_rank():
    values = [float(x) for x in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([3.0, 1.0, 2.0], 50) == 2 and percentile([], 50) is None
    assert percentile([7.0], 99) == 7


def test_attainment_counts_errors_and_unfinished_as_misses():
    records = [
        _record(Window.PRIORITY, 0, 5, output_tokens=50),
        _record(Window.PRIORITY, 1, 19.9, output_tokens=50),
        _record(Window.PRIORITY, 2, 25, output_tokens=50),  # late
        _record(Window.PRIORITY, 3, None, error="unfinished"),
        _record(Window.PRIORITY, 4, 1, error="failed: engine_error"),
    ]
    row = report(records, TARGETS, 10).window(Window.PRIORITY)
    assert row is not None
    assert (row.requests, row.finished, row.target) == (5, 3, 20.0)
    assert row.attained == 2 / 5
    assert (row.turn_p50, row.turn_p99) == (19.9, 25)


def test_asap_attains_on_time_to_first_token():
    records = [_record(Window.ASAP, i, 30, ttft=t) for i, t in enumerate([0.2, 0.9, 1.5, 3])]
    row = report(records, TARGETS, 10).window(Window.ASAP)
    assert (
        row is not None
        and row.attained == 0.5
        and row.ttft_p50 == pytest.approx(0.9)
        and row.target == 1
    )


def test_offered_sent_and_accepted_rates_show_a_client_that_fell_behind():
    on_time = [_record(Window.STANDARD, i / 10, 1, output_tokens=10) for i in range(100)]
    assert (r := report(on_time, TARGETS, 10).overall).offered_rate == 10
    assert r.sent_rate == 10 and r.lag_max == 0 and r.output_tokens == 1_000
    late = [_record(Window.STANDARD, i / 10, 1, sent=2 * i / 10) for i in range(100)]
    o = report(late, TARGETS, 10).overall
    assert o.offered_rate == 10 and o.sent_rate == 100 / 19.8
    assert o.lag_max == 9.9 and o.lag_p50 == 4.9


def test_errors_are_counted_by_kind_and_tokens_only_of_finished_requests():
    records = [
        _record(Window.FLEX, 0, 1, output_tokens=7),
        _record(Window.FLEX, 0, None, error="http 429", output_tokens=3),
        _record(Window.FLEX, 0, None, error="http 429"),
        _record(Window.FLEX, 0, None, error="unfinished"),
    ]
    o = report(records, TARGETS, 10).overall
    assert o.errors == {"http 429": 2, "unfinished": 1}
    assert o.output_tokens == 7 and o.finished == 1 and o.requests == 4


def test_the_table_and_json_carry_the_counts():
    records = [_record(w, i, 2, output_tokens=5) for i, w in enumerate([*Window, Window.FLEX])]
    records.append(_record(Window.STANDARD, 9, None, error="http 503"))
    rep = report(records, TARGETS, 10, utilization=0.5, server_tokens_per_second=3.0)
    text = table(rep)
    rows = {line.split()[0]: line.split()[1:3] for line in text.splitlines()[1:5]}
    assert rows == {"asap": ["1", "1"], "priority": ["1", "1"], "standard": ["2", "1"],
                    "flex": ["2", "2"]}  # fmt: skip
    assert "http 503 × 1" in text and "utilization 50.0%" in text
    data = json.loads(json.dumps(as_json(rep)))
    assert [(w["window"], w["requests"]) for w in data["windows"]] == [
        ("asap", 1), ("priority", 1), ("standard", 2), ("flex", 2)
    ]  # fmt: skip
    assert data["overall"]["errors"] == {"http 503": 1}


def test_the_peak_in_flight_counts_unfinished_requests_to_the_end():
    records = [
        _record(Window.STANDARD, 0, 10),  # 0-10
        _record(Window.STANDARD, 1, 2),  # 1-3
        _record(Window.STANDARD, 2, None, error="unfinished"),  # 2-
        _record(Window.STANDARD, 5, 1),  # 5-6
    ]
    assert report(records, TARGETS, 10).overall.in_flight_peak == 3
