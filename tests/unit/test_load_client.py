"""The load generator counts a request as sent only once it holds a connection: a client out of
connections shows as a sent rate below the offered one, never as a slow server."""

from __future__ import annotations

import asyncio

from leeway.jobs import Window
from leeway.load.client import _Base
from leeway.load.records import Record, Request


class Held(_Base):
    """A client whose every request holds its connection for ``hold`` seconds."""

    def __init__(self, connections: int, hold: float) -> None:
        super().__init__("m", ["p"], 1, 0, [connections])
        self.hold = hold

    async def _send(self, request: Request, record: Record) -> Record:
        await asyncio.sleep(self.hold)
        record.done = self.now()
        return record


async def test_a_request_waiting_for_a_connection_is_not_yet_sent():
    client = Held(connections=2, hold=0.2)
    requests = [Request(i, 0.0, Window.ASAP, 10, 1, 0, 0) for i in range(4)]
    records = await asyncio.gather(*(client.send(r) for r in requests))
    first, later = records[:2], records[2:]
    assert all(r.sent is not None and r.done is not None for r in records)
    # the last two waited for the first two's connections: sent when those were done
    assert min(r.sent for r in later if r.sent) >= max(r.done for r in first if r.done)
