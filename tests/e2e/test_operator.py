"""Leeway run as a service, end to end: ``leeway serve`` processes driven over plain HTTP for the
admin routes and with the official ``openai`` SDK for the model list and the usage API. A key made
and revoked through the admin API; a revoked key refused by a second API process within a second;
jobs finishing while their process is killed (kill -9) billed exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer
from tests.e2e.test_roles import Processes, Query

# 5 output tokens a reply, over about 0.1 s; priced per window (USD per million tokens)
CONFIG = f"""
lease_seconds = 1.5
poll_seconds = 0.1

[[models]]
id = "{MODEL}"
parallel = 16
fake_tokens = 5
fake_delay = 0.02
prices.standard = {{ input = 100.0, output = 400.0 }}
prices.flex = {{ input = 20.0, output = 80.0 }}
"""


def admin(server: LeewayServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.key}"},  # the first key: an admin key
        timeout=30,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeewayServer]:
    s = LeewayServer(Path(tmp_path_factory.mktemp("operator")), CONFIG, ("--engine", "fake"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_a_key_made_through_the_admin_api_lists_models_until_it_is_revoked(served: LeewayServer):
    with admin(served) as http:
        project = http.post("/organization/projects", json={"name": "Team A", "id": "team-a"})
        assert project.status_code == 200 and project.json()["status"] == "active"
        made = http.post("/organization/projects/team-a/api_keys", json={"name": "laptop"})
        assert made.status_code == 200
        key = made.json()
        client = OpenAI(base_url=served.base_url, api_key=key["value"], max_retries=0)
        models = client.models.list()
        assert MODEL in [m.id for m in models.data]
        reply = client.responses.create(model=MODEL, input="Hello there.")
        assert reply.status == "completed"
        listed = http.get("/organization/projects/team-a/api_keys").json()
        assert [k["id"] for k in listed["data"]] == [key["id"]]
        assert listed["data"][0]["redacted_value"] == key["value"][:8] + "…"
        tenant_admin = http.get(
            "/organization/projects", headers={"Authorization": f"Bearer {key['value']}"}
        )
        assert tenant_admin.status_code == 403  # a tenant's key on an admin route
        assert http.delete(f"/organization/projects/team-a/api_keys/{key['id']}").json()["deleted"]
    time.sleep(1.0)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        client.models.list()


def test_usage_and_costs_through_the_openai_sdk(served: LeewayServer):
    key = served.new_key("team-u")
    client = OpenAI(base_url=served.base_url, api_key=key, max_retries=0)
    for _ in range(3):
        assert client.responses.create(model=MODEL, input="Hi.").status == "completed"
    flex = client.responses.create(
        model=MODEL, input="Hi.", background=True, metadata={"completion_window": "flex"}
    )
    while client.responses.retrieve(flex.id).status != "completed":
        time.sleep(0.05)
    done = client.responses.retrieve(flex.id)
    assert done.model_extra["cost"]["completion_window"] == "flex"
    boss = OpenAI(base_url=served.base_url, api_key="unused", admin_api_key=served.key)
    start = int(time.time()) - 3600
    usage = boss.admin.organization.usage.completions(
        start_time=start,
        bucket_width="1h",
        group_by=["project_id", "model"],
        project_ids=["team-u"],
        extra_query={"group_by[]": "completion_window"},
    )
    results = [r for bucket in usage.data for r in bucket.results]
    per_window = {r.model_extra["completion_window"]: r for r in results}
    assert set(per_window) == {"standard", "flex"}
    assert per_window["standard"].num_model_requests == 3
    assert per_window["standard"].output_tokens == 15
    assert per_window["flex"].project_id == "team-u" and per_window["flex"].model == MODEL
    costs = boss.admin.organization.usage.costs(
        start_time=start, group_by=["line_item"], project_ids=["team-u"]
    )
    items = {r.line_item: r.amount.value for b in costs.data for r in b.results}
    standard_out = 15 * 400.0 / 1e6
    assert items[f"{MODEL}, standard, output_tokens"] == pytest.approx(standard_out)
    assert items[f"{MODEL}, flex, output_tokens"] == pytest.approx(5 * 80.0 / 1e6)
    mine = OpenAI(base_url=served.base_url, api_key="unused", admin_api_key=key)
    own = mine.admin.organization.usage.completions(start_time=start, group_by=["project_id"])
    assert {r.project_id for b in own.data for r in b.results} == {"team-u"}
    with pytest.raises(openai.BadRequestError, match="bucket_width"):
        boss.admin.organization.usage.completions(
            start_time=start, extra_query={"bucket_width": "2h"}
        )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Query]]:
    """A store processes share (a SQLite file, or a PostgreSQL database), and a way to query it."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")

        def query(sql: str) -> tuple[Any, ...]:
            async def fetch() -> tuple[Any, ...]:
                conn = await asyncpg.connect(url)
                try:
                    return tuple(await conn.fetchrow(sql))
                finally:
                    await conn.close()

            return asyncio.run(fetch())

        yield url, query
        return
    path = tmp_path / "shared.db"

    def query_sqlite(sql: str) -> tuple[Any, ...]:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return tuple(db.execute(sql).fetchone())

    yield f"sqlite:///{path}", query_sqlite


def test_a_revoked_key_is_refused_by_a_second_api_process_within_a_second(
    tmp_path: Path, store: tuple[str, Query]
):
    processes = Processes(tmp_path, store[0], CONFIG)
    try:
        first = processes.start("api")
        second = processes.start("api")
        with admin(first) as http:
            key = http.post("/organization/projects/default/api_keys", json={"name": "x"}).json()
            headers = {"Authorization": f"Bearer {key['value']}"}
            models = f"{second.base_url}/models"
            for _ in range(5):  # the second process knows the key (and remembers it)
                assert httpx.get(models, headers=headers).status_code == 200
            http.delete(f"/organization/projects/default/api_keys/{key['id']}")
            revoked = time.monotonic()
        first_refusal = None
        while (elapsed := time.monotonic() - revoked) < 1.0:
            if httpx.get(models, headers=headers).status_code == 401 and first_refusal is None:
                first_refusal = elapsed
        r = httpx.get(models, headers=headers)  # sent a second after the revocation
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
        assert first_refusal is not None  # refused before the second was over
        print(f"refused by the second process {first_refusal:.3f} s after the revocation")
    finally:
        processes.stop()


def test_jobs_finishing_while_their_process_is_killed_are_billed_once(
    tmp_path: Path, store: tuple[str, Query]
):
    """An API process and two dispatchers; one dispatcher is killed (kill -9) while jobs finish on
    it; the other runs what it held again. Every job is billed exactly once: the usage API, the
    roll-up and the jobs agree."""
    (url, query), count = store, 600
    processes = Processes(tmp_path, url, CONFIG.replace("fake_delay = 0.02", "fake_delay = 0.05"))
    try:
        api = processes.start("api")
        dispatchers = [processes.start("dispatcher"), processes.start("dispatcher")]
        ids = asyncio.run(create(api, count))
        deadline = time.monotonic() + 60
        sql = "SELECT count(*) FROM jobs WHERE status = 'completed'"
        # both dispatchers hold work (more runs than one's 16 sequences) and jobs are finishing
        both = "SELECT count(*) FROM jobs WHERE status = 'in_progress'"
        while query(both)[0] <= 16 or query(sql)[0] == 0:
            assert time.monotonic() < deadline, "the dispatchers never both held work"
            time.sleep(0.01)
        dispatchers[0].crash()  # while jobs finish on it
        while query(sql)[0] < count:
            assert time.monotonic() < deadline + 120, "not every job completed"
            time.sleep(0.1)
        assert query("SELECT count(*) FROM jobs WHERE attempts > 1")[0] > 0  # some ran again
        jobs = query(
            "SELECT count(*), sum(input_tokens), sum(output_tokens) FROM jobs"
            " WHERE status = 'completed'"
        )
        assert jobs[0] == count and jobs[2] == 5 * count
        rolled = query(
            "SELECT sum(requests), sum(input_tokens), sum(output_tokens) FROM usage_buckets"
            " WHERE width = 60"
        )
        assert tuple(int(v) for v in rolled) == tuple(int(v) for v in jobs)  # each once
        with admin(api) as http:
            page = http.get(
                "/organization/usage/completions", params={"start_time": int(time.time()) - 3600}
            ).json()
            cost = http.get(
                "/organization/costs", params={"start_time": int(time.time()) - 3600}
            ).json()
        used = [r for b in page["data"] for r in b["results"]]
        assert sum(r["num_model_requests"] for r in used) == count
        assert sum(r["output_tokens"] for r in used) == 5 * count
        billed = sum(r["amount"]["value"] for b in cost["data"] for r in b["results"])
        expected = (int(jobs[1]) * 100.0 + 5 * count * 400.0) / 1e6
        assert billed == pytest.approx(expected)
        assert len(ids) == count
    finally:
        processes.stop()


async def create(api: LeewayServer, count: int) -> list[str]:
    async with AsyncOpenAI(base_url=api.base_url, api_key=api.key, max_retries=0) as client:
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> str:
            async with gate:
                r = await client.responses.create(model=MODEL, input=f"job {i}", background=True)
                return r.id

        return list(await asyncio.gather(*(one(i) for i in range(count))))
