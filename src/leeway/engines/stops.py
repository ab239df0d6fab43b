"""Stop sequences over a stream of text pieces.

Text that could still turn out to be the start of a stop sequence is held back, so a client never
sees any part of a stop sequence, streamed or not, even when it spans several tokens. The first stop
sequence to be complete in the text wins (of several ending at the same character, the longest).

The stops are searched with an Aho-Corasick automaton (pyahocorasick, in C): each piece costs time
in its own length, whatever the number of stops, and the search goes on from piece to piece. What
is held back is the longest end of the text that is the start of some stop: the automaton's trie
answers that (``longest_prefix``), tried from where the held text began, never before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import ahocorasick


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self._held = ""
        self.matched: str | None = None
        self._trie: ahocorasick.Automaton | None = None
        if any(stops):
            self._trie = ahocorasick.Automaton()
            for stop in stops:
                if stop:
                    self._trie.add_word(stop, stop)
            self._trie.make_automaton()
            self._search = self._trie.iter("")
            self._fed = 0  # characters searched so far

    @property
    def held(self) -> str:
        """Text held back: what may be the start of a stop sequence."""
        return self._held

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; once a stop matches, ``matched`` is set and the rest
        (the stop sequence and anything after it) is dropped."""
        if self._trie is None:
            return text
        held = self._held + text
        begins = self._fed - len(self._held)  # where ``held`` begins in the whole text
        self._fed += len(text)
        self._search.set(text, False)  # go on from where the last piece left the automaton
        end, stop = next(self._search, (-1, ""))
        if stop:
            for later_end, other in self._search:  # others ending at the same character
                if later_end != end:
                    break
                stop = max(stop, other, key=len)
            self.matched, self._held = stop, ""
            return held[: end + 1 - len(stop) - begins]
        start = 0  # of the longest end of ``held`` that may begin a stop
        while start < len(held) and self._trie.longest_prefix(held[start:]) < len(held) - start:
            start += 1
        self._held = held[start:]
        return held[:start]

    def flush(self) -> str:
        """What was held back, once generation ends without a stop."""
        held, self._held = self._held, ""
        return held
