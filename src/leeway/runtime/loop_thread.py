"""An event loop on a thread of its own, for the dispatcher and the engines it drives.

On one loop, the dispatcher's tasks wait their turn behind every HTTP request: with a few hundred
clients polling as fast as the server answers, they get a small share of the loop's turns and the
engines run half empty. On their own thread, the interpreter shares the CPU between the two loops
whatever the HTTP load: a thread that wakes (a timer, an engine's tokens, a store write done) while
another holds the GIL gets it within the switch interval. Python's default (5 ms) can add up to
5 ms to every token step, and to every sqlite3 or ctypes call (each releases and retakes the GIL).
Measured here: 32 tasks each awaiting 16 sleeps of 10 ms finish in about 170 ms on an idle process;
beside a thread that never lets go of the GIL, in 260-300 ms at the default interval and about
190 ms at 0.5 ms. So starting one lowers the interval, for the whole process, to
``SWITCH_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SWITCH_INTERVAL = 0.0005  # seconds; 0.2 ms measured no better


class LoopThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread, its loop of the same kind as the caller's (uvloop under uvicorn when
        it is installed)."""
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._loop = type(asyncio.get_running_loop())()
        self._thread = threading.Thread(
            target=self._main, args=(self._loop,), name=self._name, daemon=True
        )
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this thread's loop; the caller's loop waits without blocking."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self._name} has not started")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        """From any thread: ``fn(*args)`` on this thread's loop, as soon as it can (nothing, once
        it has stopped)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing runs to call
                self._loop.call_soon_threadsafe(fn, *args)

    async def stop(self) -> None:
        """Stop the loop (what still runs on it is cancelled) and wait for the thread to end."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop = self._thread = None

    @staticmethod
    def _main(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
