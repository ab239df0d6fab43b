"""A service for the operator's API tests: ``leeway`` on the fake engine with priced windows, a
real SQLite store, an admin key and two tenants' keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from leeway.app import build_app, store_from
from leeway.catalog import ModelConfig, Price
from leeway.jobs import Window
from leeway.keys import issue
from leeway.settings import Settings
from tests.conftest import FAKE_MODEL, fake_settings

# 8 output tokens a reply; the prompt "hello there" is 5 tokens on the fake engine
PRICED = ModelConfig(
    FAKE_MODEL,
    engine="fake",
    parallel=4,
    context=256,
    fake_tokens=8,
    prices={Window.STANDARD: Price(1000.0, 2000.0), Window.FLEX: Price(200.0, 400.0)},
)
REPLY_COST = (5 * 1000.0 + 8 * 2000.0) / 1e6  # a standard reply: $0.021


@dataclass
class Service:
    http: TestClient
    settings: Settings
    admin: str  # an admin key of tenant "ops"
    alpha: str  # tenant alpha's key
    beta: str

    def get(self, path: str, key: str, **params: Any) -> httpx.Response:
        return self.http.get(path, headers=auth(key), params=params)

    def respond(self, key: str, **body: Any) -> httpx.Response:
        payload = {"model": FAKE_MODEL, "input": "hello there", **body}
        return self.http.post("/v1/responses", headers=auth(key), json=payload)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def add(settings: Settings, tenant: str, **options: Any) -> str:
    async def work() -> str:
        store = store_from(settings)
        try:
            issued = issue(tenant, time.time(), **options)
            await store.add_key(issued.key, issued.value)
            return issued.value
        finally:
            await store.close()

    return asyncio.run(work())


def service(tmp_path: Path, **overrides: Any) -> Iterator[Service]:
    settings = fake_settings(tmp_path, models=(PRICED,), **overrides)
    keys = add(settings, "ops", admin=True), add(settings, "alpha"), add(settings, "beta")
    with TestClient(build_app(settings)) as http:
        yield Service(http, settings, *keys)
