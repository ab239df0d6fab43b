"""Stop sequences over a stream of text pieces.

Text that could still turn out to be the start of a stop sequence is held back, so a client never
sees any part of a stop sequence, streamed or not, even when it spans several tokens.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.matched: str | None = None

    @property
    def held(self) -> str:
        """Text held back: what may be the start of a stop sequence."""
        return self._held

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; once a stop matches, ``matched`` is set and the rest
        (the stop sequence and anything after it) is dropped."""
        if not self._stops:
            return text
        held = self._held + text
        hits = [(held.find(s), s) for s in self._stops if s in held]
        if hits:
            at, self.matched = min(hits)
            self._held = ""
            return held[:at]
        keep = max((_overlap(held, s) for s in self._stops), default=0)
        self._held = held[len(held) - keep :]
        return held[: len(held) - keep]

    def flush(self) -> str:
        """What was held back, once generation ends without a stop."""
        held, self._held = self._held, ""
        return held


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-n:]):
            return n
    return 0
