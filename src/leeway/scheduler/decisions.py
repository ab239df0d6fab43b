"""What the scheduling policy answers: which job starts where, which running job yields its sequence,
and which queued jobs can no longer meet their deadline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Start:
    job_id: str
    engine_id: str


@dataclass(frozen=True, slots=True)
class Preempt:
    """``job_id`` gives up its sequence on ``engine_id`` now; it goes back to the queue keeping the
    tokens it generated, and the caller hands it back to the policy (``enqueue``) with them."""

    job_id: str
    engine_id: str


@dataclass(frozen=True, slots=True)
class Decisions:
    """Apply in order: preemptions first (they free the sequences some starts use), then starts."""

    starts: tuple[Start, ...] = ()
    preempts: tuple[Preempt, ...] = ()
    late: tuple[str, ...] = ()  # queued jobs found unable to meet their deadline: counted as misses

    def __bool__(self) -> bool:
        return bool(self.starts or self.preempts or self.late)


NOTHING = Decisions()


class Recorder:
    """Collects decisions while a policy fills engines; lists are made only when needed."""

    __slots__ = ("late", "preempts", "starts")

    def __init__(self) -> None:
        self.starts: list[Start] | None = None
        self.preempts: list[Preempt] | None = None
        self.late: list[str] | None = None

    def start(self, job_id: str, engine_id: str) -> None:
        if self.starts is None:
            self.starts = []
        self.starts.append(Start(job_id, engine_id))

    def preempt(self, job_id: str, engine_id: str) -> None:
        if self.preempts is None:
            self.preempts = []
        self.preempts.append(Preempt(job_id, engine_id))

    def miss(self, job_id: str) -> None:
        if self.late is None:
            self.late = []
        self.late.append(job_id)

    def decisions(self) -> Decisions:
        if self.starts is None and self.preempts is None and self.late is None:
            return NOTHING
        return Decisions(
            tuple(self.starts or ()), tuple(self.preempts or ()), tuple(self.late or ())
        )
