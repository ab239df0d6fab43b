"""The scheduling policy on hand-built snapshots: every rule, and the two baselines."""

from __future__ import annotations

from leeway.jobs import Window
from leeway.scheduler.policy import (
    Decisions,
    EngineSpec,
    EngineState,
    PolicyConfig,
    Preempt,
    QueuedJob,
    RunningJob,
    Snapshot,
    Start,
    decide,
    make_policy,
)

NOW = 1_000.0
DAY = 86_400.0
# Rates: 1,000 prompt tokens/s, 10 output tokens/s per sequence; a job with a 100-token prompt and
# 100 output tokens is predicted to take 0.1 + 10 = 10.1 s.


def job(
    id: str,
    window: Window = Window.STANDARD,
    *,
    deadline: float | None = None,
    arrival: float = NOW,
    out: int = 100,
    prefix: str | None = None,
    tenant: str = "t1",
) -> QueuedJob:
    targets = {Window.ASAP: 0.0, Window.PRIORITY: 60.0, Window.STANDARD: 300.0, Window.FLEX: DAY}
    if deadline is None:
        deadline = arrival + targets[window]
    return QueuedJob(id, window, arrival, deadline, 100, out, prefix, tenant)


def running(id: str, window: Window, deadline: float, remaining: float = 50) -> RunningJob:
    return RunningJob(id, window, deadline, generated=10, remaining=remaining)


def engine(id: str = "e1", capacity: int = 1, *jobs: RunningJob) -> EngineState:
    return EngineState(EngineSpec(id, capacity, prefill_rate=1_000, decode_rate=10), jobs)


def snap(queued: list[QueuedJob], *engines: EngineState, **config: object) -> Snapshot:
    return Snapshot(NOW, tuple(queued), engines or (engine(),), config=PolicyConfig(**config))  # type: ignore[arg-type]


def started(decisions: Decisions) -> list[str]:
    return [s.job_id for s in decisions.starts]


# -- asap ---------------------------------------------------------------------------------------


def test_asap_starts_at_once_when_an_engine_has_room():
    full = running("s", Window.STANDARD, NOW + 300)
    d = decide(snap([job("a", Window.ASAP)], engine("e1", 2, full)))
    assert d.starts == (Start("a", "e1"),)
    assert d.preempts == ()


def test_asap_never_preempts_while_some_engine_has_room():
    flex = running("f", Window.FLEX, NOW + DAY)
    d = decide(snap([job("a", Window.ASAP)], engine("e1", 1, flex), engine("e2", 1)))
    assert d.starts == (Start("a", "e2"),)
    assert d.preempts == ()


def test_asap_preempts_flex_before_standard():
    std = running("s", Window.STANDARD, NOW + 300)
    flex = running("f", Window.FLEX, NOW + DAY)
    d = decide(snap([job("a", Window.ASAP)], engine("e1", 1, std), engine("e2", 1, flex)))
    assert d.preempts == (Preempt("f", "e2"),)
    assert d.starts == (Start("a", "e2"),)


def test_asap_preempts_the_standard_job_with_most_slack_and_never_priority():
    prio = running("p", Window.PRIORITY, NOW + 60)
    tight = running("s1", Window.STANDARD, NOW + 30)
    loose = running("s2", Window.STANDARD, NOW + 250)
    engines = engine("e1", 1, prio), engine("e2", 1, tight), engine("e3", 1, loose)
    d = decide(snap([job("a", Window.ASAP)], *engines))
    assert d.preempts == (Preempt("s2", "e3"),)
    assert d.starts == (Start("a", "e3"),)


def test_asap_waits_rather_than_preempt_asap_or_priority_work():
    busy = running("a0", Window.ASAP, NOW), running("p", Window.PRIORITY, NOW + 60)
    d = decide(snap([job("a", Window.ASAP)], engine("e1", 2, *busy)))
    assert d.starts == () and d.preempts == ()


def test_a_preempted_job_is_handed_back_and_resumes_with_its_tokens():
    policy = make_policy("leeway")
    policy.add_engine(EngineSpec("e1", 1, 1_000, 10))
    assert started(policy.submit(job("f", Window.FLEX), NOW)) == ["f"]
    d = policy.submit(job("a", Window.ASAP), NOW + 1)
    assert d.preempts == (Preempt("f", "e1"),) and started(d) == ["a"]
    resumed = QueuedJob("f", Window.FLEX, NOW, NOW + DAY, 100, 100, generated=40)
    policy.enqueue(resumed, NOW + 1)
    assert policy.waiting == 1
    assert started(policy.release("a", NOW + 2)) == ["f"]


# -- least slack first -----------------------------------------------------------------------------


def test_least_slack_first_not_earliest_deadline():
    # long: deadline +100, 10.1 s of work: slack 89.9. short: deadline +95, 1.1 s: slack 93.9.
    d = decide(snap([job("short", deadline=NOW + 95, out=10), job("long", deadline=NOW + 100)]))
    assert started(d) == ["long"]


def test_service_time_uses_the_observed_output_length():
    # max_output 1,000 (100 s) vs 20 (2 s); with outputs observed at 20 tokens both take ~2 s.
    big = job("big", deadline=NOW + 200, out=1_000)
    small = job("small", deadline=NOW + 150, out=20)
    assert started(decide(snap([small, big]))) == ["big"]
    observed = Snapshot(NOW, (small, big), (engine(),), observed_output=20)
    assert started(decide(observed)) == ["small"]


def test_a_job_that_cannot_meet_its_deadline_runs_after_those_that_can_and_is_a_miss():
    hopeless = job("late", deadline=NOW + 5)  # needs 10.1 s
    fine = job("ok", deadline=NOW + 250)
    d = decide(snap([hopeless, fine]))
    assert started(d) == ["ok"]
    assert d.late == ("late",)


def test_a_late_job_still_runs_once_feasible_work_is_done():
    policy = make_policy("leeway")
    policy.add_engine(EngineSpec("e1", 1, 1_000, 10))
    policy.enqueue(job("late", deadline=NOW + 5), NOW)
    policy.enqueue(job("ok", deadline=NOW + 250), NOW)
    first = policy.fill(NOW)
    assert started(first) == ["ok"] and first.late == ("late",)
    assert started(policy.release("ok", NOW + 10)) == ["late"]


# -- flex ----------------------------------------------------------------------------------------


def test_flex_waits_while_a_deadline_job_needs_the_sequence():
    d = decide(snap([job("f", Window.FLEX, arrival=NOW - 10), job("s")]))
    assert started(d) == ["s"]


def test_flex_leaves_the_reserve_free_but_fills_everything_off_peak():
    flex = [job(f"f{k}", Window.FLEX) for k in range(10)]
    peak = decide(snap(flex, engine("e1", 10), flex_reserve=0.2))
    assert len(peak.starts) == 8
    off = decide(snap(flex, engine("e1", 10), flex_reserve=0.2, off_peak_hours=((0.0, 24.0),)))
    assert len(off.starts) == 10


def test_deadline_work_may_use_the_flex_reserve():
    work = [job(f"s{k}") for k in range(10)]
    assert len(decide(snap(work, engine("e1", 10), flex_reserve=0.2)).starts) == 10


def test_flex_near_its_24h_bound_beats_fresh_standard_work():
    old = job("old", Window.FLEX, arrival=NOW - DAY + 100)  # 100 s left, 10.1 s of work
    fresh = job("fresh")
    assert started(decide(snap([fresh, old]))) == ["old"]
    young = job("young", Window.FLEX, arrival=NOW - 60)
    assert started(decide(snap([young, fresh]))) == ["fresh"]


# -- grouping and fairness -------------------------------------------------------------------------


def test_jobs_sharing_a_prefix_start_together_on_one_engine():
    queued = [job(f"{p}{k}", prefix=p) for k in range(3) for p in ("p", "q")]
    d = decide(snap(queued, engine("e1", 4), engine("e2", 4)))
    where = {s.job_id: s.engine_id for s in d.starts}
    assert len(where) == 6
    assert where["p0"] == where["p1"] == where["p2"]
    assert where["q0"] == where["q1"] == where["q2"]
    assert where["p0"] != where["q0"]


def test_tenants_take_turns_among_equally_urgent_jobs():
    flood = [job(f"a{k}", tenant="big") for k in range(20)]
    few = [job(f"b{k}", tenant="small") for k in range(2)]
    d = decide(snap(flood + few, engine("e1", 4)))
    assert {"b0", "b1"} <= set(started(d))


def test_fairness_does_not_override_urgency():
    flood = [job(f"a{k}", tenant="big", deadline=NOW + 60) for k in range(4)]
    d = decide(snap([*flood, job("b", tenant="small")], engine("e1", 4)))
    assert "b" not in started(d)


# -- baselines -------------------------------------------------------------------------------------


def test_fcfs_runs_in_arrival_order_and_never_preempts():
    queued = [job("a", Window.ASAP, arrival=NOW), job("s", arrival=NOW - 5)]
    assert started(decide(snap(queued), "fcfs")) == ["s"]
    flex = running("f", Window.FLEX, NOW + DAY)
    d = decide(snap([job("a", Window.ASAP)], engine("e1", 1, flex)), "fcfs")
    assert d.starts == () and d.preempts == ()


def test_strict_runs_by_window_then_arrival_without_slack():
    queued = [
        job("s", arrival=NOW - 50, deadline=NOW + 1),  # nearly due, but standard
        job("p2", Window.PRIORITY, arrival=NOW - 1),
        job("p1", Window.PRIORITY, arrival=NOW - 2),
    ]
    assert started(decide(snap(queued, engine("e1", 2)), "strict")) == ["p1", "p2"]
    flex = running("f", Window.FLEX, NOW + DAY)
    d = decide(snap([job("a", Window.ASAP)], engine("e1", 1, flex)), "strict")
    assert d.preempts == ()


# -- urgent share ---------------------------------------------------------------------------------


def test_beside_priority_work_standard_and_flex_fill_only_the_urgent_share():
    prio = running("p", Window.PRIORITY, NOW + 60)
    queued = [job("s1"), job("s2", deadline=NOW + 400), job("f", Window.FLEX)]
    d = decide(snap(queued, engine("e1", 4, prio), urgent_share=0.5, flex_reserve=0))
    assert started(d) == ["s1"]  # 2 of 4 sequences: the running priority job and one more
    # priority work itself goes beyond the share (here it takes the room first: less slack)
    d = decide(
        snap(
            [*queued, job("p2", Window.PRIORITY)],
            engine("e1", 4, prio),
            urgent_share=0.5,
            flex_reserve=0,
        )
    )
    assert started(d) == ["p2"]
    # with no urgent work running, the share does not apply: standard and flex fill the engine
    d = decide(snap(queued, engine("e1", 4), urgent_share=0.5, flex_reserve=0))
    assert sorted(started(d)) == ["f", "s1", "s2"]
    # and without a share (the default), everything starts beside priority work
    d = decide(snap(queued, engine("e1", 4, prio), flex_reserve=0))
    assert sorted(started(d)) == ["f", "s1", "s2"]


def test_work_held_beside_urgent_work_keeps_its_order():
    policy = make_policy("leeway", PolicyConfig(urgent_share=0.5, flex_reserve=0))
    policy.add_engine(EngineSpec("e1", 4, prefill_rate=1_000, decode_rate=10))
    assert started(policy.submit(job("p", Window.PRIORITY), NOW)) == ["p"]
    late, soon, flex = job("late", deadline=NOW + 500), job("soon"), job("f", Window.FLEX)
    for queued in (late, flex, soon):
        policy.enqueue(queued, NOW)
    assert started(policy.fill(NOW)) == ["soon"]  # the least slack, then the room is used
    assert policy.waiting == 2
    assert started(policy.release("p", NOW + 1)) == ["late", "f"]  # room again: in order


def test_a_fill_stops_looking_past_a_bounded_number_of_held_jobs(monkeypatch):
    from leeway.scheduler import slack

    policy = make_policy("leeway", PolicyConfig(urgent_share=0.5, flex_reserve=0))
    policy.add_engine(EngineSpec("e1", 4, prefill_rate=1_000, decode_rate=10))
    assert started(policy.submit(job("p", Window.PRIORITY), NOW)) == ["p"]
    assert started(policy.submit(job("s0"), NOW)) == ["s0"]  # the share: 2 of 4 sequences
    # a priority job with more slack than three held standard jobs still starts in the same fill
    for i in range(3):
        policy.enqueue(job(f"s{i + 1}"), NOW)
    policy.enqueue(job("p2", Window.PRIORITY, deadline=NOW + 900), NOW)
    assert started(policy.fill(NOW)) == ["p2"]
    # behind 10,000 held jobs it waits, and the fill looks at no more than _HOLD_LIMIT of them
    for i in range(10_000):
        policy.enqueue(job(f"q{i}"), NOW)
    policy.enqueue(job("p3", Window.PRIORITY, deadline=NOW + 900), NOW)
    looked = 0
    fits = policy._fits

    def counting(e: int, window: Window) -> bool:
        nonlocal looked
        looked += 1
        return fits(e, window)

    monkeypatch.setattr(policy, "_fits", counting)
    assert started(policy.fill(NOW)) == []
    assert looked == slack._HOLD_LIMIT
    assert policy.waiting == 10_004
    # when the urgent work ends, the held jobs start in their order
    assert started(policy.release("p", NOW + 1)) == []  # p2 still runs: still no room
    assert started(policy.release("p2", NOW + 1)) == ["s1", "s2", "s3"]
