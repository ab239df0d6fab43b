"""Rendered final objects, kept in memory: a final job never changes again, so a poll of it needs
neither the store nor serialisation. Bounded; least recently used first out."""

from __future__ import annotations

from collections import OrderedDict

_SIZE = 50_000  # objects (a few KB each)


class Finals:
    def __init__(self, size: int = _SIZE) -> None:
        self._size = size
        self._bodies: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def get(self, tenant: str, job_id: str) -> bytes | None:
        key = (tenant, job_id)
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, tenant: str, job_id: str, body: bytes) -> None:
        self._bodies[(tenant, job_id)] = body
        if len(self._bodies) > self._size:
            self._bodies.popitem(last=False)

    def forget(self, tenant: str, job_id: str) -> None:
        self._bodies.pop((tenant, job_id), None)
