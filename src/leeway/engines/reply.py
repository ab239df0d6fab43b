"""What the text a local engine generates becomes: the reply's visible text, streamed as pieces; what
is held back while a stop sequence or a tool call may be starting (the *tail*); and the calls, read
once, when the generation ends, from the encoding the engine generated them in
(``<tool_call>{…}</tool_call>``, ``leeway.grammar.calls``).

Raw text goes in as the model writes it. Stop sequences apply to it first (nothing of one is ever
shown, and generation ends at one); then, for a job that may call tools, text is visible until
``<tool_call>`` starts, and nothing after a call's start is text. A run that yields its engine keeps
its tail (``Chunk.tail``): the next run continues after the whole raw text, generating nothing
twice, and shows what is left to show.
"""

from __future__ import annotations

from leeway.engines.stops import StopMatcher
from leeway.grammar.calls import OPEN, read
from leeway.jobs import Job
from leeway.structured import ToolCall


class ReplyFilter:
    def __init__(self, job: Job) -> None:
        self._job = job
        self._stops = StopMatcher(job.sampling.stop)
        calling = job.tools is not None and bool(job.tools.allowed())
        self._calls = _CallStart() if calling else None
        if job.partial_text:  # resumed: the earlier runs' text, shown already or held
            self.feed(job.partial_text)

    @property
    def stop_sequence(self) -> str | None:
        """The stop sequence that ended the reply, once one has."""
        return self._stops.matched

    @property
    def tail(self) -> str:
        """Raw text generated but not shown (yet)."""
        return self._stops.held + (self._calls.tail if self._calls is not None else "")

    def feed(self, raw: str) -> str:
        """The text that is safe to show now."""
        return self._show(self._stops.feed(raw))

    def flush(self) -> str:
        """The generation ended (not at a stop sequence): what is left to show."""
        text = self._show(self._stops.flush())
        return text + (self._calls.flush() if self._calls is not None else "")

    def calls(self) -> tuple[ToolCall, ...]:
        """The calls the reply made (a call cut short by the output limit is left out), with
        ids derived from the job's id."""
        if self._calls is None or self._calls.markup is None:
            return ()
        return read(self._calls.markup, self._job.tools, self._job.id).calls

    def _show(self, text: str) -> str:
        return text if self._calls is None else self._calls.feed(text)


class _CallStart:
    """Text until ``<tool_call>`` starts (what may be its start is held back), then markup."""

    def __init__(self) -> None:
        self._held = ""
        self.markup: str | None = None  # from the first call's start on

    @property
    def tail(self) -> str:
        return self._held + (self.markup or "")

    def feed(self, text: str) -> str:
        if self.markup is not None:
            self.markup += text
            return ""
        text = self._held + text
        if (at := text.find(OPEN)) >= 0:
            self._held, self.markup = "", text[at:]
            return text[:at]
        keep = next((n for n in range(len(OPEN) - 1, 0, -1) if text.endswith(OPEN[:n])), 0)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        if self.markup is not None:
            return ""
        held, self._held = self._held, ""
        return held
