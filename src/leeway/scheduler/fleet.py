"""Free sequences across a fleet of engines, without scanning the fleet.

Engines are grouped in buckets by how many sequences they have free, so the engine with the most
room is found in constant time however many engines there are. Jobs that share a prompt prefix are
sent to the engine that last took that prefix (its prefix cache is warm there) while that engine has
at least half the free sequences of the roomiest, so affinity never piles work onto one engine.
"""

from __future__ import annotations

import math


class Fleet:
    __slots__ = ("_buckets", "_home", "_index", "capacity", "free", "ids", "max_free", "reserve")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.capacity: list[int] = []
        self.free: list[int] = []
        self.reserve: list[int] = []  # sequences flex leaves free on each engine (outside off-peak)
        self.max_free = 0
        self._buckets: list[set[int]] = [set()]
        self._index: dict[str, int] = {}
        self._home: dict[str, int] = {}

    def add(self, engine_id: str, capacity: int, reserve_share: float = 0.0) -> int:
        """Register an engine with all its sequences free; returns its index."""
        if engine_id in self._index:
            raise ValueError(f"engine {engine_id!r} was added twice")
        e = len(self.ids)
        self.ids.append(engine_id)
        self.capacity.append(capacity)
        self.free.append(0)
        self.reserve.append(min(capacity - 1, math.ceil(capacity * reserve_share)))
        self._index[engine_id] = e
        while len(self._buckets) <= capacity:
            self._buckets.append(set())
        self._buckets[0].add(e)
        for _ in range(capacity):
            self.give(e)
        return e

    def index(self, engine_id: str) -> int:
        return self._index[engine_id]

    def take(self, e: int) -> None:
        """One sequence of engine ``e`` is now in use."""
        f = self.free[e]
        if f <= 0:
            raise ValueError(f"engine {self.ids[e]!r} has no free sequence")
        self._buckets[f].discard(e)
        self._buckets[f - 1].add(e)
        self.free[e] = f - 1

    def give(self, e: int) -> None:
        """One sequence of engine ``e`` is free again."""
        f = self.free[e]
        self._buckets[f].discard(e)
        self._buckets[f + 1].add(e)
        self.free[e] = f + 1
        if f + 1 > self.max_free:
            self.max_free = f + 1

    def roomiest(self) -> int:
        """The engine with the most free sequences, or -1 when every engine is full."""
        while self.max_free > 0 and not self._buckets[self.max_free]:
            self.max_free -= 1
        if self.max_free == 0:
            return -1
        bucket = self._buckets[self.max_free]
        e = bucket.pop()  # pop/add: constant time, where iterating a churned set is not
        bucket.add(e)
        return e

    def choose(self, prefix: str | None, spare: bool = False) -> int:
        """An engine for a new job: the prefix's engine if it has room, else the roomiest; -1 if
        none fits. ``spare``: only an engine with more free sequences than its reserve."""
        if prefix is not None:
            e = self._home.get(prefix, -1)
            f = self.free[e] if e >= 0 else 0
            if f > (self.reserve[e] if spare else 0) and 2 * f >= self.max_free:
                return e  # while the prefix's engine is not much fuller than the roomiest
        e = self.roomiest()
        if e < 0 or (spare and self.free[e] <= self.reserve[e]):
            return -1
        if prefix is not None:
            self._home[prefix] = e
        return e
