"""The admin API's objects, in OpenAI's shapes (``organization.project``,
``organization.project.api_key``, ``organization.admin_api_key``, lists with ``first_id``,
``last_id`` and ``has_more``). Leeway's additions on a key: ``project_id``, ``revoked_at`` and
``admin``. Every key is owned by a service account of its own (Leeway has no users)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from leeway.keys import ApiKey, Tenant

T = TypeVar("T", ApiKey, Tenant)


def project(tenant: Tenant) -> dict[str, Any]:
    return {
        "object": "organization.project",
        "id": tenant.id,
        "name": tenant.name,
        "created_at": int(tenant.created_at),
        "archived_at": _seconds(tenant.archived_at),
        "status": "archived" if tenant.archived_at is not None else "active",
    }


def project_key(key: ApiKey, now: float) -> dict[str, Any]:
    return {
        "object": "organization.project.api_key",
        **_key(key),
        "owner": {"type": "service_account", "service_account": _owner(key)},
        "owner_project_access": "inactive" if _dead(key, now) else "active",
    }


def admin_key(key: ApiKey, now: float) -> dict[str, Any]:
    return {
        "object": "organization.admin_api_key",
        **_key(key),
        "owner": {"type": "service_account", **_owner(key), "object": "organization.user"},
    }


def deleted(key: ApiKey, kind: str) -> dict[str, Any]:
    return {"object": kind, "id": key.id, "deleted": True}


def listed(found: Sequence[T], limit: int, show: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """A page of at most ``limit`` (``found`` holds one more if there are more)."""
    data = [show(item) for item in found[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(found) > limit,
    }


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "redacted_value": key.redacted,
        "created_at": int(key.created_at),
        "last_used_at": _seconds(key.last_used_at),
        "expires_at": _seconds(key.expires_at),
        "project_id": key.tenant,
        "admin": key.admin,
        "revoked_at": _seconds(key.revoked_at),
    }


def _owner(key: ApiKey) -> dict[str, Any]:
    role = "owner" if key.admin else "member"
    return {
        "id": "svc_" + key.id,
        "name": key.name,
        "created_at": int(key.created_at),
        "role": role,
    }


def _dead(key: ApiKey, now: float) -> bool:
    return key.revoked_at is not None or key.expired(now)


def _seconds(at: float | None) -> int | None:
    return None if at is None else int(at)
