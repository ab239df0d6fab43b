"""Per-tenant back-pressure: 429 with Retry-After and a message that names the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from leeway.api.limits import Limiter, duration
from leeway.app import build_app
from leeway.catalog import ModelConfig
from leeway.errors import RateLimited
from leeway.settings import Limits
from tests.conftest import FAKE_MODEL, Client, UnitStore, add_keys, claim, fake_settings, make_job


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Client]:
    slow = ModelConfig(FAKE_MODEL, engine="fake", parallel=1, fake_tokens=50, fake_delay=0.2)
    settings = fake_settings(
        tmp_path,
        models=(slow,),
        tenant_limits={"alpha": Limits(max_queued=2), "beta": Limits(requests_per_second=2)},
    )
    key, other = add_keys(settings, "alpha", "beta")
    with TestClient(build_app(settings)) as http:
        yield Client(http, key, other)


def background(c: Client, key: str | None = None, **headers: str):
    return c.http.post(
        "/v1/responses",
        headers={**c.headers(key), **headers},
        json={"model": FAKE_MODEL, "input": "hi", "background": True},
    )


def test_a_full_queue_is_429_naming_max_queued_and_other_tenants_go_on(limited: Client):
    codes = [background(limited).status_code for _ in range(3)]  # one runs, two wait
    assert codes == [202, 202, 202]
    r = background(limited)
    assert r.status_code == 429 and r.headers["retry-after"] == "5"
    err = r.json()["error"]
    assert err["code"] == "rate_limit_exceeded" and "max_queued" in err["message"]
    assert "'alpha'" in err["message"] and "limit is 2" in err["message"]
    assert background(limited, limited.other_key).status_code == 202  # beta's queue is its own


def test_the_request_rate_is_429_naming_requests_per_second_and_replays_are_free(limited: Client):
    beta = limited.other_key
    first = background(limited, beta, **{"Idempotency-Key": "k1"})
    assert first.status_code == 202
    assert background(limited, beta).status_code == 202
    r = background(limited, beta)  # the third within a second, at 2 per second
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    err = r.json()["error"]
    assert "requests_per_second" in err["message"] and "'beta'" in err["message"]
    m = limited.http.post(
        "/v1/messages",
        headers=limited.headers(beta),
        json={"model": FAKE_MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "x"}]},
    )
    assert m.status_code == 429 and m.json()["error"]["type"] == "rate_limit_error"
    again = background(limited, beta, **{"Idempotency-Key": "k1"})  # a replay costs no budget
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert background(limited).status_code == 202  # alpha has no rate limit


async def test_the_bucket_refills_with_time():
    now = [0.0]
    settings = fake_settings(Path("/nonexistent"), limits=Limits(requests_per_second=2))
    limiter = Limiter(settings, UnitStore(), clock=lambda: now[0])
    await limiter.admit("t")
    await limiter.admit("t")
    with pytest.raises(RateLimited) as e:
        await limiter.admit("t")
    assert e.value.retry_after == pytest.approx(0.5)
    now[0] = 0.5
    await limiter.admit("t")  # one token back after half a second at 2/s


async def test_max_queued_counts_only_waiting_jobs():
    store = UnitStore()
    settings = fake_settings(Path("/nonexistent"), limits=Limits(max_queued=1))
    limiter = Limiter(settings, store)
    await limiter.admit("t1")
    await store.create(make_job())  # tenant t1, queued
    with pytest.raises(RateLimited, match="max_queued"):
        await limiter.admit("t1")
    await claim(store, FAKE_MODEL, 1, now=0.0)  # now running, not waiting
    await limiter.admit("t1")


async def test_admitting_tells_the_x_ratelimit_headers():
    now = [0.0]
    settings = fake_settings(Path("/nonexistent"), limits=Limits(requests_per_second=2))
    limiter = Limiter(settings, UnitStore(), clock=lambda: now[0])
    first = await limiter.admit("t")
    assert first == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "500ms",  # one token back at 2/s
    }
    assert (await limiter.admit("t"))["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimited) as e:
        await limiter.admit("t")
    assert e.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert e.value.headers["x-ratelimit-reset-requests"] == "1s"
    unlimited = Limiter(fake_settings(Path("/nonexistent")), UnitStore())
    assert await unlimited.admit("t") == {}


def test_reset_times_read_as_openai_writes_them():
    assert [duration(s) for s in (0.017, 0.5, 1, 1.5, 61, 360)] == [
        "17ms",
        "500ms",
        "1s",
        "1.5s",
        "1m1s",
        "6m0s",
    ]
