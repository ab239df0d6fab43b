"""The port between the API and everything that runs jobs.

The API (``leeway.api``) knows two things: the store, and a ``Runtime``. It asks the runtime to
count a prompt's tokens, to wake the dispatchers for a job it stored, to stop generating a job it
cancelled, to follow a job's text from a piece's number, and how healthy it is. Whether jobs run in
this process or in dispatcher processes elsewhere is the runtime's business:

- ``InProcess`` (``--role all`` and ``--role dispatcher``): runs the dispatcher and the engines on a
  thread and event loop of their own, and owns every hand-over between the API's loop and theirs;
- ``SharedStore`` (``--role api``): runs nothing; everything goes through the store that dispatcher
  processes share (PostgreSQL's NOTIFY wakes them; on SQLite they poll).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from leeway.jobs import Job, Message
from leeway.pieces import Following, Update
from leeway.structured import Tools

__all__ = ["Following", "Health", "Runtime", "TokenCount", "Update"]


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A prompt's tokens once the model's chat template is applied, and its context's size."""

    tokens: int
    context: int


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool  # every engine this process runs can take work
    engines: dict[str, dict[str, Any]]  # per model: ready, parallel, running


class Runtime(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def count_tokens(
        self, model: str, messages: Sequence[Message], tools: Tools | None
    ) -> TokenCount | None:
        """The prompt's size for ``model``; None if no engine here serves ``model``."""

    def wake(self, job: Job) -> None:
        """``job`` was stored queued: have a dispatcher look now, not at its next poll."""

    def cancel(self, job: Job) -> None:
        """``job`` was cancelled or deleted in the store: stop generating it, and end its
        followers here with ``job``."""

    def follow(self, job: Job, start: int | None) -> Following:
        """``job``'s pieces from number ``start`` on (None: only the final job), then the job once
        final, wherever it runs. Subscribed at the call: a job stored after it misses nothing."""

    async def health(self) -> Health: ...

    async def metrics(self) -> bytes:
        """``GET /metrics``, in Prometheus' text format."""
