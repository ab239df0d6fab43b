"""Windows reach vLLM as request priorities, and a flex job that yields to asap work continues
its text. Both are read from vLLM's side (its log: when it added, finished and aborted each request,
under the Leeway job's id) as well as from Leeway's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.e2e.server import LeewayServer
from tests.vllm.conftest import VLLM_SEQS, start_gateway, until
from tests.vllm.server import MODEL, Event, VllmServer

LOAD = "Write a very long essay about the history of Rome."  # SmolLM2 writes until it is cut off
COLORS = [{"role": "user", "content": "Name three colors."}]


def submit_flex(client: OpenAI, n: int, tokens: int) -> list[str]:
    return [
        client.responses.create(
            model=MODEL,
            input=LOAD,
            max_output_tokens=tokens,
            temperature=0,
            background=True,
            metadata={"completion_window": "flex"},
        ).id
        for _ in range(n)
    ]


def cancel_rest(client: OpenAI, ids: list[str]) -> None:
    for job in ids:
        if client.responses.retrieve(job).status in ("queued", "in_progress"):
            client.responses.cancel(job)


def at(events: list[Event], what: str, job: str) -> int:
    return next(i for i, e in enumerate(events) if e.what == what and e.job == job)


@pytest.fixture
def gateway_of(tmp_path: Path, vllm: VllmServer) -> Iterator[object]:
    started: list[LeewayServer] = []

    def make(parallel: int) -> OpenAI:
        server = start_gateway(tmp_path / f"gateway-{parallel}", vllm, parallel=parallel)
        started.append(server)
        return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0, timeout=600)

    try:
        yield make
    finally:
        for server in started:
            server.stop()


def test_an_asap_request_overtakes_the_flex_jobs_queued_in_vllm(gateway_of, vllm: VllmServer):
    # Leeway sends 3x what vLLM runs at once: vLLM queues the rest, in priority order
    client = gateway_of(3 * VLLM_SEQS)
    flex = submit_flex(client, 3 * VLLM_SEQS, 192)
    try:
        until(lambda: all(vllm.did("added", f) for f in flex))
        sent = time.monotonic()
        asap = client.chat.completions.create(
            model=MODEL,
            messages=COLORS,
            max_tokens=12,
            temperature=0,
            metadata={"completion_window": "asap"},
        )
        took = time.monotonic() - sent
        unfinished = [f for f in flex if client.responses.retrieve(f).status != "completed"]
        events = vllm.events()
    finally:
        cancel_rest(client, flex)
    added, finished = at(events, "added", asap.id), at(events, "finished", asap.id)
    before = events[:added]
    # in vLLM (running or queued) when the asap request arrived there
    ahead = [
        f
        for f in flex
        if any(e.job == f and e.what == "added" for e in before)
        and not any(e.job == f and e.what in ("finished", "aborted") for e in before)
    ]
    queued = len(ahead) - VLLM_SEQS  # in vLLM's own queue, ahead of it by arrival
    overtaken_by = [
        f for f in ahead if any(e.job == f and e.what == "finished" for e in events[added:finished])
    ]
    print(
        f"\nasap: {took:.1f} s; in vLLM ahead of it: {len(ahead)} flex ({queued} queued); "
        f"finished while it ran there: {len(overtaken_by)}; flex unfinished after it: "
        f"{len(unfinished)} of {len(flex)}"
    )
    assert queued >= VLLM_SEQS  # a real queue to overtake
    # In arrival order vLLM would start every queued flex job first, each after a running one
    # finished; at priority 0 it starts at the first free sequence.
    assert len(overtaken_by) < queued
    assert len(unfinished) >= queued  # Leeway's side: the asap reply came first


def test_a_flex_job_that_yields_continues_its_text_and_is_billed_once(gateway_of, vllm: VllmServer):
    # Leeway sends exactly what vLLM runs: every flex job is generating when asap work arrives
    client = gateway_of(VLLM_SEQS)
    flex = submit_flex(client, VLLM_SEQS, 256)  # all still running when asap comes
    generated = vllm.metric("vllm:generation_tokens_total")
    until(lambda: all(vllm.did("added", f) for f in flex))
    until(lambda: vllm.metric("vllm:generation_tokens_total") >= generated + 8 * VLLM_SEQS)
    client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=12, metadata={"completion_window": "asap"}
    )
    done = {f: until(lambda f=f: final(client, f), 600) for f in flex}
    events = vllm.events()
    yielded = [f for f in flex if any(e.job == f and e.what == "aborted" for e in events)]
    assert len(yielded) == 1  # one took the asap request's place on vLLM
    job = done[yielded[0]]
    runs = [e for e in events if e.job == job.id and e.what in ("added", "finished")]
    assert [e.what for e in runs] == ["added", "added", "finished"]  # cut, then continued
    continuation = runs[-1].output
    assert job.status == "completed" and job.output_text.endswith(continuation)
    kept = job.output_text[: len(job.output_text) - len(continuation)]
    assert kept.strip()  # the first run's text was kept, not generated again
    assert_billed_once(vllm, job, done[next(f for f in flex if f != job.id)])


def final(client: OpenAI, job: str):  # type: ignore[no-untyped-def]
    r = client.responses.retrieve(job)
    return r if r.status not in ("queued", "in_progress") else None


def assert_billed_once(vllm: VllmServer, job, same_prompt) -> None:  # type: ignore[no-untyped-def]
    """Usage counts the prompt once (as a job of the same prompt that ran once) and each output
    token once (vLLM's tokenizer on the whole text, within a token or two at the cut)."""
    assert job.usage.input_tokens == same_prompt.usage.input_tokens
    tokens = vllm.count_tokens(job.output_text)
    assert abs(job.usage.output_tokens - tokens) <= 2, (job.usage, tokens)
    assert job.usage.output_tokens <= job.max_output_tokens
