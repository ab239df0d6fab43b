"""The interim dispatcher on fakes: keeps the engine exactly full, most urgent first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from prometheus_client.parser import text_string_to_metric_families

from leeway.engines import Chunk, EngineUnavailable
from leeway.engines.fake import FakeEngine
from leeway.jobs import Job, Status, Window
from leeway.pieces import PieceLog, Publisher
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.policy import PolicyConfig, PolicyKind
from tests.conftest import FAKE_MODEL, UnitStore, make_job


class CountingEngine(FakeEngine):
    """A fake engine that records the order jobs start in and how many run at once."""

    def __init__(
        self, parallel: int, delay: float = 0.01, fail_on: str | None = None, id: str | None = None
    ) -> None:
        super().__init__(FAKE_MODEL, parallel=parallel, tokens=4, delay=delay, id=id)
        self.started: list[str] = []
        self.now = self.peak = 0
        self.fail_on = fail_on

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        self.started.append(job.id)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            if job.id == self.fail_on:
                raise RuntimeError("boom")
            async for chunk in super().generate(job):
                yield chunk
        finally:
            self.now -= 1


async def run_until_final(
    store: UnitStore,
    engine: CountingEngine | list[CountingEngine],
    jobs: list[Job],
    kind: PolicyKind = PolicyKind.LEEWAY,
) -> Dispatcher:
    for job in jobs:
        await store.create(job)
    engines = engine if isinstance(engine, list) else [engine]
    dispatcher = Dispatcher(
        store, engines, PieceLog(), lease_seconds=30, poll_seconds=0.01, kind=kind
    )
    dispatcher.start()
    for _ in range(500):
        if all(store.jobs[j.id].status.is_final for j in jobs):
            break
        await asyncio.sleep(0.01)
    await dispatcher.stop()
    return dispatcher


async def test_keeps_the_engine_exactly_full_and_finishes_everything():
    store, engine = UnitStore(), CountingEngine(parallel=3)
    jobs = [make_job() for _ in range(10)]
    await run_until_final(store, engine, jobs)
    assert engine.peak == 3
    assert all(store.jobs[j.id].status is Status.COMPLETED for j in jobs)
    assert all(store.jobs[j.id].usage.output_tokens == 4 for j in jobs)


async def test_several_engines_of_one_model_are_each_kept_full():
    store = UnitStore()
    engines = [CountingEngine(parallel=2, id="a"), CountingEngine(parallel=3, id="b")]
    jobs = [make_job() for _ in range(20)]
    await run_until_final(store, engines, jobs)
    assert [e.peak for e in engines] == [2, 3]
    assert sorted(engines[0].started + engines[1].started) == sorted(j.id for j in jobs)
    assert all(store.jobs[j.id].status is Status.COMPLETED for j in jobs)


async def test_an_engine_is_filled_by_one_dispatcher_at_a_time():
    """Two dispatchers share a store and an engine (one upstream server): only the holder of the
    engine's lease starts work there; when it stops, the other takes the engine over."""
    store = UnitStore()
    first, second = CountingEngine(parallel=2, id="gpu-0"), CountingEngine(parallel=2, id="gpu-0")
    a = Dispatcher(store, [first], PieceLog(), lease_seconds=0.3, poll_seconds=0.01)
    b = Dispatcher(store, [second], PieceLog(), lease_seconds=0.3, poll_seconds=0.01)
    a.start()
    await asyncio.sleep(0.05)  # a holds the engine before b asks
    b.start()
    early = [make_job() for _ in range(6)]
    for job in early:
        await store.create(job)
    for _ in range(300):
        if all(store.jobs[j.id].status.is_final for j in early):
            break
        await asyncio.sleep(0.01)
    assert len(first.started) == 6 and second.started == []
    await a.stop()  # hands the engine over at once
    late = [make_job() for _ in range(4)]
    for job in late:
        await store.create(job)
    for _ in range(300):
        if all(store.jobs[j.id].status.is_final for j in late):
            break
        await asyncio.sleep(0.01)
    await b.stop()
    assert sorted(second.started) == sorted(j.id for j in late)
    assert all(store.jobs[j.id].status is Status.COMPLETED for j in early + late)


def _four_windows() -> list[Job]:
    """flex, standard, priority, asap, arriving in that order a second apart."""
    t = time.time()
    return [
        make_job(window=Window.FLEX, created_at=t, deadline=t + 86_400),
        make_job(window=Window.STANDARD, created_at=t + 1, deadline=t + 301),
        make_job(window=Window.PRIORITY, created_at=t + 2, deadline=t + 62),
        make_job(window=Window.ASAP, created_at=t + 3, deadline=t + 3),
    ]


async def test_asap_first_then_least_slack_then_flex():
    store, engine = UnitStore(), CountingEngine(parallel=1)
    flex, standard, priority, asap = jobs = _four_windows()
    await run_until_final(store, engine, jobs)
    assert engine.started == [asap.id, priority.id, standard.id, flex.id]


async def test_the_fcfs_policy_runs_jobs_in_arrival_order_whatever_their_window():
    store, engine = UnitStore(), CountingEngine(parallel=1)
    jobs = _four_windows()
    await run_until_final(store, engine, jobs, PolicyKind.FCFS)
    assert engine.started == [j.id for j in jobs]


async def test_the_strict_policy_runs_jobs_in_window_order_then_arrival():
    store, engine = UnitStore(), CountingEngine(parallel=1)
    flex, standard, priority, asap = jobs = _four_windows()
    t = time.time()
    older = make_job(window=Window.STANDARD, created_at=t - 5, deadline=t + 900)  # a longer target
    await run_until_final(store, engine, [*jobs, older], PolicyKind.STRICT)
    assert engine.started == [asap.id, priority.id, older.id, standard.id, flex.id]


async def test_metrics_count_each_engines_tokens_prompts_and_busy_time():
    store, engine = UnitStore(), CountingEngine(parallel=2)
    jobs = [make_job(prompt_tokens=7) for _ in range(5)]
    dispatcher = await run_until_final(store, engine, jobs, PolicyKind.STRICT)
    text = dispatcher.metrics.render({}, dict).decode()
    seen = {
        (s.name, s.labels.get("engine"), s.labels.get("policy")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert seen["leeway_engine_output_tokens_total", engine.id, None] == 5 * 4
    assert seen["leeway_engine_prompt_tokens_total", engine.id, None] == 5 * 7
    assert seen["leeway_engine_sequences", engine.id, None] == 2
    busy = seen["leeway_engine_busy_seconds_total", engine.id, None]
    assert 0 < busy <= seen["leeway_engine_sequence_seconds_total", engine.id, None] <= 2 * busy
    assert seen["leeway_scheduler_policy", None, "strict"] == 1


async def test_an_engine_error_fails_only_that_job():
    store = UnitStore()
    jobs = [make_job() for _ in range(3)]
    engine = CountingEngine(parallel=2, fail_on=jobs[1].id)
    await run_until_final(store, engine, jobs)
    failed = store.jobs[jobs[1].id]
    assert failed.status is Status.FAILED and failed.error.code == "engine_error"
    assert "boom" in failed.error.message
    assert {store.jobs[j.id].status for j in (jobs[0], jobs[2])} == {Status.COMPLETED}


async def test_stop_hands_running_jobs_back_without_spending_an_attempt():
    store, engine = UnitStore(), CountingEngine(parallel=2, delay=10)
    jobs = [make_job() for _ in range(2)]
    for job in jobs:
        await store.create(job)
    dispatcher = Dispatcher(store, [engine], PieceLog(), lease_seconds=30, poll_seconds=0.01)
    dispatcher.start()
    for _ in range(500):
        if engine.now == 2:
            break
        await asyncio.sleep(0.01)
    assert dispatcher.running(FAKE_MODEL) == 2
    await dispatcher.stop()
    assert [store.jobs[j.id].status for j in jobs] == [Status.QUEUED, Status.QUEUED]
    assert [store.jobs[j.id].attempts for j in jobs] == [0, 0]


async def test_progress_and_the_final_job_are_published_to_subscribers():
    store, engine, events = UnitStore(), CountingEngine(parallel=1), PieceLog()
    job = make_job()
    await store.create(job)
    sub, _ = events.subscribe(job.id)
    dispatcher = Dispatcher(
        store, [engine], events, lease_seconds=30, poll_seconds=10
    )  # only the wake-up can start it promptly
    dispatcher.start()
    dispatcher.wake(job)

    async def never_final() -> None:
        return None

    updates = [u async for u in sub.updates(never_final, start=None)]
    await dispatcher.stop()
    *deltas, final = updates
    assert deltas == ["fake ", "fake1 ", "fake2 ", "fake3 "]
    assert final.status is Status.COMPLETED and final.output.text == "".join(deltas)
    assert not events.followed(job.id)  # the subscription ended with the job


async def _preempt_scenario(running_windows: list[Window]) -> tuple[UnitStore, list[Job], Job]:
    """Fill a 2-sequence engine with slow jobs, then queue an asap job; run all to the end."""
    store, engine = UnitStore(), CountingEngine(parallel=2, delay=0.02)
    engine._tokens = 20
    t = time.time()
    targets = {Window.PRIORITY: 60, Window.STANDARD: 300, Window.FLEX: 86_400}
    running = [
        make_job(window=w, created_at=t, deadline=t + targets[w] + i)
        for i, w in enumerate(running_windows)
    ]
    for job in running:
        await store.create(job)
    dispatcher = Dispatcher(
        store,
        [engine],
        PieceLog(),
        lease_seconds=30,
        poll_seconds=0.01,
        policy=PolicyConfig(flex_reserve=0),
    )
    dispatcher.start()
    for _ in range(100):
        if engine.now == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # some tokens generated
    urgent = make_job(window=Window.ASAP, created_at=time.time(), deadline=time.time())
    await store.create(urgent)
    dispatcher.wake(urgent)
    everything = [*running, urgent]
    for _ in range(500):
        if all(store.jobs[j.id].status.is_final for j in everything):
            break
        await asyncio.sleep(0.01)
    await dispatcher.stop()
    return store, running, urgent


FULL_TEXT = "fake " + "".join(f"fake{i} " for i in range(1, 16))  # 16 tokens: the cap


async def test_asap_takes_the_place_of_a_flex_job_which_resumes_without_loss():
    store, (flex, standard), urgent = await _preempt_scenario([Window.FLEX, Window.STANDARD])
    done = {j.id: store.jobs[j.id] for j in (flex, standard, urgent)}
    assert done[urgent.id].completed_at < done[flex.id].completed_at
    assert done[standard.id].partial_tokens == 0  # the flex job yielded, not the standard one
    yielded = done[flex.id]
    assert 0 < yielded.partial_tokens < 16 and yielded.attempts == 1
    assert yielded.output.text == FULL_TEXT and yielded.usage.output_tokens == 16


async def test_without_flex_the_standard_job_with_most_slack_yields():
    store, (early, late), urgent = await _preempt_scenario([Window.STANDARD, Window.STANDARD])
    assert store.jobs[late.id].partial_tokens > 0 and store.jobs[early.id].partial_tokens == 0
    assert store.jobs[late.id].output.text == FULL_TEXT
    assert store.jobs[urgent.id].completed_at < store.jobs[late.id].completed_at


async def test_priority_work_never_yields():
    store, running, urgent = await _preempt_scenario([Window.PRIORITY, Window.PRIORITY])
    assert all(store.jobs[j.id].partial_tokens == 0 for j in running)
    assert store.jobs[urgent.id].completed_at >= min(store.jobs[j.id].completed_at for j in running)


async def test_a_yielding_jobs_text_stays_visible_until_its_progress_is_stored():
    gate = asyncio.Event()

    class SlowRequeue(UnitStore):
        async def requeue(self, claim, pieces, tokens, tail=""):
            await gate.wait()
            return await super().requeue(claim, pieces, tokens, tail)

    store, engine = SlowRequeue(), CountingEngine(parallel=1, delay=0.02)
    engine._tokens = 40  # still running when the asap job comes, however loaded the machine
    t = time.time()
    flex = make_job(window=Window.FLEX, created_at=t, deadline=t + 86_400)
    await store.create(flex)
    log = PieceLog()
    dispatcher = Dispatcher(
        store,
        [engine],
        log,
        lease_seconds=30,
        poll_seconds=0.01,
        policy=PolicyConfig(flex_reserve=0),
    )
    dispatcher.start()
    for _ in range(200):
        if len(log.pieces(flex.id) or []) >= 3:
            break
        await asyncio.sleep(0.01)
    urgent = make_job(window=Window.ASAP, created_at=time.time(), deadline=time.time())
    await store.create(urgent)
    dispatcher.wake(urgent)
    for _ in range(200):  # the flex job yields; its requeue is held at the gate
        if store.jobs[urgent.id].status is not Status.QUEUED:
            break
        await asyncio.sleep(0.01)
    held = log.pieces(flex.id)
    gate.set()
    await dispatcher.stop()
    assert held is not None and "".join(held).startswith("fake fake1 fake2")


async def test_a_job_cancelled_through_another_process_stops_at_the_next_renewal():
    """Cancelling in the store (as another API process does) drops the lease; the dispatcher sees
    it when it renews and stops generating, freeing the sequence."""
    store, engine = UnitStore(), CountingEngine(parallel=1, delay=10)
    job = make_job()
    await store.create(job)
    dispatcher = Dispatcher(store, [engine], PieceLog(), lease_seconds=0.3, poll_seconds=0.01)
    dispatcher.start()
    for _ in range(100):
        if engine.now:
            break
        await asyncio.sleep(0.01)
    assert engine.now == 1
    await store.cancel(job.tenant, job.id, time.time())  # no dispatcher.abandon: not this process
    for _ in range(100):
        if not engine.now:
            break
        await asyncio.sleep(0.01)
    await dispatcher.stop()
    assert engine.now == 0 and dispatcher.running(FAKE_MODEL) == 0
    assert store.jobs[job.id].status is Status.CANCELLED


class UnavailableFor(CountingEngine):
    """Raises ``EngineUnavailable`` on one job every time (an upstream that errs on it)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(parallel=2)
        self.job_id = job_id

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        if job.id == self.job_id:
            self.started.append(job.id)
            raise EngineUnavailable("upstream answered 500")
        async for chunk in super().generate(job):
            yield chunk


async def test_a_job_no_engine_can_take_is_requeued_then_fails_after_five_runs():
    store = UnitStore()
    jobs = [make_job() for _ in range(3)]
    engine = UnavailableFor(jobs[0].id)
    await run_until_final(store, engine, jobs)
    failed = store.jobs[jobs[0].id]
    assert engine.started.count(jobs[0].id) == 5  # requeued four times, no attempt spent
    assert failed.status is Status.FAILED and failed.error.code == "engine_unavailable"
    assert "5 times in a row" in failed.error.message and "500" in failed.error.message
    assert failed.usage is None  # nothing billed
    assert {store.jobs[j.id].status for j in jobs[1:]} == {Status.COMPLETED}


async def test_publishing_appends_every_running_jobs_new_pieces_in_few_writes():
    """With publishing on, the pieces of the running jobs reach the store in batches, numbered as
    streamed (each once, in order), while generation goes on; a final job's are dropped."""
    store, events = UnitStore(), PieceLog()
    engine = CountingEngine(parallel=3, delay=0.02)
    engine._tokens = 10
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await store.create(job)
    seen: dict[str, dict[int, str]] = {j.id: {} for j in jobs}
    dispatcher = Dispatcher(store, [engine], events, lease_seconds=30, poll_seconds=0.01)
    publisher = Publisher(events, store, seconds=0.05)
    dispatcher.start()
    await publisher.start()
    for _ in range(300):
        for job_id, got in (await store.pieces({j.id: 0 for j in jobs})).items():
            seen[job_id].update(got.pieces)
        if all(store.jobs[j.id].status.is_final for j in jobs):
            break
        await asyncio.sleep(0.01)
    await publisher.stop()
    await dispatcher.stop()
    for job in jobs:
        text = store.jobs[job.id].output.text
        pieces = [seen[job.id][n] for n in sorted(seen[job.id])]
        assert sorted(seen[job.id]) == list(range(len(pieces))) and len(pieces) >= 2
        assert text.startswith("".join(pieces))  # the rest is in the final job's text
        assert (await store.pieces({job.id: 0}))[job.id].pieces == []
    # ~0.2 s of generation for three jobs at once: a write per flush (for all), not per piece
    assert 1 <= store.piece_writes <= 15


async def test_a_slow_store_makes_pieces_wait_never_the_engine():
    store, events = UnitStore(), PieceLog()
    engine = CountingEngine(parallel=1, delay=0.01)
    engine._tokens = 20
    job = make_job()
    await store.create(job)
    written: list[list[str]] = []
    append = store.append_pieces

    async def slow_append(pieces):  # type: ignore[no-untyped-def]
        written.extend(list(texts) for _, _, texts in pieces)
        await asyncio.sleep(0.1)
        return await append(pieces)

    store.append_pieces = slow_append  # type: ignore[method-assign]
    dispatcher = Dispatcher(store, [engine], events, lease_seconds=30, poll_seconds=0.01)
    publisher = Publisher(events, store, seconds=0.02)
    started = time.monotonic()
    dispatcher.start()
    await publisher.start()
    for _ in range(300):
        if store.jobs[job.id].status.is_final:
            break
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    await publisher.stop()
    await dispatcher.stop()
    assert store.jobs[job.id].output is not None
    assert elapsed < 0.5  # ~16 tokens at 10 ms, not held up by 100 ms writes
    assert len(written) <= 4 and max(len(w) for w in written) > 1  # pieces piled up between writes
