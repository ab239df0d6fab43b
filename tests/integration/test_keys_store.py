"""Tenants and API keys in the store, SQLite and PostgreSQL alike (the same contract)."""

from __future__ import annotations

import pytest

from leeway.keys import Tenant, issue, key_hash
from leeway.store import SqlStore
from tests.conftest import StoreFactory


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory()
    yield s
    await s.close()


async def test_a_key_is_found_by_its_hash_only_and_makes_its_tenant(store: SqlStore):
    assert await store.count_keys() == 0
    issued = issue("alpha", 100.0, name="ci", expires_at=200.0)
    await store.add_key(issued.key, issued.value)
    holder = await store.key_holder(key_hash(issued.value))
    assert holder is not None and holder.key == issued.key and not holder.tenant_archived
    assert await store.key_holder(key_hash(issued.value + "x")) is None
    assert await store.key_holder(issued.value) is None  # the key itself is not stored
    assert issued.key.redacted.startswith(issued.value[:8]) and issued.value not in str(
        await store.list_keys(10)
    )
    tenant = await store.get_tenant("alpha")
    assert tenant == Tenant("alpha", "alpha", 100.0)  # made with its first key
    assert await store.count_keys() == 1


async def test_keys_list_by_tenant_and_kind_page_by_cursor_and_hide_revoked(store: SqlStore):
    keys = [issue(t, float(i), admin=t == "ops") for i, t in enumerate(["a", "b", "a", "ops", "a"])]
    for k in keys:
        await store.add_key(k.key, k.value)
    a = [k.key.id for k in keys if k.key.tenant == "a"]
    assert [k.id for k in await store.list_keys(10, tenant="a")] == a
    assert [k.id for k in await store.list_keys(10, admin=True)] == [keys[3].key.id]
    assert [k.id for k in await store.list_keys(2, tenant="a", after=a[0])] == a[1:]
    revoked = await store.revoke_key(a[1], 50.0)
    assert revoked is not None and revoked.revoked_at == 50.0
    again = await store.revoke_key(a[1], 60.0)  # revoking twice keeps the first time
    assert again is not None and again.revoked_at == 50.0
    assert [k.id for k in await store.list_keys(10, tenant="a")] == [a[0], a[2]]
    listed = await store.list_keys(10, tenant="a", include_revoked=True)
    assert [k.id for k in listed] == a
    holder = await store.key_holder(key_hash(keys[2].value))
    assert holder is not None and holder.key.revoked_at == 50.0
    assert await store.revoke_key("key_nope", 1.0) is None


async def test_last_use_is_written_at_most_once_a_minute(store: SqlStore):
    issued = issue("a", 0.0)
    await store.add_key(issued.key, issued.value)
    assert await store.touch_keys([issued.key.id], 1000.0) == 1
    assert await store.touch_keys([issued.key.id], 1030.0) == 0  # within the minute: kept
    got = await store.get_key(issued.key.id)
    assert got is not None and got.last_used_at == 1000.0
    assert await store.touch_keys([issued.key.id, "key_unknown"], 1061.0) == 1
    got = await store.get_key(issued.key.id)
    assert got is not None and got.last_used_at == 1061.0


async def test_tenants_are_created_once_renamed_listed_and_archived(store: SqlStore):
    assert await store.add_tenant(Tenant("t1", "Team one", 1.0)) is not None
    assert await store.add_tenant(Tenant("t1", "Another", 2.0)) is None  # its id is taken
    await store.add_tenant(Tenant("t2", "Team two", 3.0))
    renamed = await store.rename_tenant("t1", "Team 1")
    assert renamed is not None and renamed.name == "Team 1"
    archived = await store.archive_tenant("t2", 9.0)
    assert archived is not None and archived.archived_at == 9.0
    assert [t.id for t in await store.list_tenants(10)] == ["t1"]
    assert [t.id for t in await store.list_tenants(10, include_archived=True)] == ["t1", "t2"]
    assert [t.id for t in await store.list_tenants(10, "t1", True)] == ["t2"]
    issued = issue("t2", 10.0)
    await store.add_key(issued.key, issued.value)  # the tenant exists: kept as it is
    holder = await store.key_holder(key_hash(issued.value))
    assert holder is not None and holder.tenant_archived
    assert await store.archive_tenant("nobody", 1.0) is None
