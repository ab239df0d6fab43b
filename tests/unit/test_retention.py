"""Idempotency keys are kept ``idempotency_hours`` and then pruned, at start-up and periodically."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from leeway import settings as config
from leeway.app import build_app, store_from
from leeway.errors import ConfigError
from leeway.retention import KeyPruner
from leeway.store import IdempotencyKey
from tests.conftest import UnitStore, fake_settings, make_job

HOUR = 3600.0
NOW = 1_000_000.0


async def test_keys_younger_than_the_period_are_kept_older_ones_forgotten():
    store = UnitStore()
    old, young = IdempotencyKey("old", "f"), IdempotencyKey("young", "f")
    await store.create(make_job(created_at=NOW - 73 * HOUR), old)
    await store.create(make_job(created_at=NOW - 71 * HOUR), young)
    pruner = KeyPruner(store, 72, clock=lambda: NOW)
    assert await pruner.prune() == 1
    assert await store.held("t1", old) is None and await store.held("t1", young) is not None


async def test_start_prunes_at_once_and_stop_ends_the_loop():
    store = UnitStore()
    await store.create(make_job(created_at=NOW - 100 * HOUR), IdempotencyKey("k", "f"))
    pruner = KeyPruner(store, 72, every=HOUR, clock=lambda: NOW)
    await pruner.start()
    assert await store.held("t1", IdempotencyKey("k", "f")) is None  # pruned at once
    tasks = {t.get_name() for t in asyncio.all_tasks()}
    assert "leeway-key-pruner" in tasks
    await pruner.stop()
    assert "leeway-key-pruner" not in {t.get_name() for t in asyncio.all_tasks()}


def test_the_app_prunes_old_keys_when_it_starts(tmp_path: Path):
    settings = fake_settings(tmp_path, idempotency_hours=1.0)
    old, kept = IdempotencyKey("old", "f"), IdempotencyKey("kept", "f")

    async def seed() -> None:
        store = store_from(settings)
        await store.create(make_job(created_at=1.0), old)  # 1970: long past any period
        await store.create(make_job(), kept)
        await store.close()

    async def held(key: IdempotencyKey) -> bool:
        store = store_from(settings)
        try:
            return await store.held("t1", key) is not None
        finally:
            await store.close()

    asyncio.run(seed())
    with TestClient(build_app(settings)):
        pass
    assert not asyncio.run(held(old)) and asyncio.run(held(kept))


def test_idempotency_hours_setting():
    assert config.load(env={}).idempotency_hours == 72
    assert config.load(env={"LEEWAY_IDEMPOTENCY_HOURS": "96"}).idempotency_hours == 96
    with pytest.raises(ConfigError, match="idempotency_hours"):
        config.load(env={"LEEWAY_IDEMPOTENCY_HOURS": "0"})
