"""What an answer means and when the next attempt is due (pure functions; no clock)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from leeway.webhooks.schedule import Backoff, Verdict, describe, retry_after, verdict


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (200, Verdict.DELIVERED),
        (201, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.STOP),
        (302, Verdict.STOP),
        (307, Verdict.STOP),
        (400, Verdict.STOP),
        (401, Verdict.STOP),
        (404, Verdict.STOP),
        (410, Verdict.STOP),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_verdicts(code: int, expected: Verdict):
    assert verdict(code) is expected


def test_descriptions_say_what_happened():
    assert describe(204) is None
    assert describe(302, "http://elsewhere/") == (
        "redirect to http://elsewhere/ not followed (answered 302)"
    )
    assert "410 Gone" in (describe(410) or "")
    assert describe(503) == "answered 503 (retried)"
    assert describe(404) == "answered 404 (not retried)"


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half():
    b = Backoff(base=5, max=60, retry_for=86_400)
    for failures, full in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (6, 60), (200, 60)]:
        assert b.delay(failures, 0.0) == full / 2
        assert b.delay(failures, 0.999999) == pytest.approx(full, rel=1e-5)
        assert full / 2 <= b.delay(failures, 0.5) <= full


def test_retry_after_replaces_the_computed_wait():
    b = Backoff(base=5, max=60, retry_for=1000)
    assert b.next_attempt(created_at=0, now=10, failures=1, rand=0.0) == 12.5
    assert b.next_attempt(created_at=0, now=10, failures=1, rand=0.0, retry_after=30) == 40


def test_no_attempt_starts_past_the_retry_period():
    b = Backoff(base=5, max=3600, retry_for=86_400)
    assert b.next_attempt(created_at=0, now=86_000, failures=3, rand=0.0) == 86_010
    assert b.next_attempt(created_at=0, now=86_395, failures=3, rand=0.0) is None
    assert b.next_attempt(created_at=0, now=100, failures=1, rand=0, retry_after=90_000) is None


def test_a_day_of_failures_is_a_bounded_number_of_attempts():
    b, now, failures = Backoff(), 0.0, 0
    while (at := b.next_attempt(0.0, now, failures + 1, 1.0 - 1e-9)) is not None:
        now, failures = at, failures + 1
    assert 20 <= failures <= 40 and now <= 86_400


def test_retry_after_in_seconds_and_as_an_http_date():
    now = 1_700_000_000.0
    assert retry_after("7", now) == 7.0
    assert retry_after(" 2.5 ", now) == 2.5
    assert retry_after("-3", now) == 0.0
    assert retry_after(formatdate(now + 120, usegmt=True), now) == pytest.approx(120, abs=1)
    assert retry_after(formatdate(now - 120, usegmt=True), now) == 0.0  # already past
    assert retry_after(None, now) is None
    assert retry_after("", now) is None
    assert retry_after("soon", now) is None
    assert retry_after("nan", now) is None
