"""What vLLM sees when Leeway cancels a job, and when vLLM is full with other clients' work: a
cancelled job stops generating on vLLM (it aborts the request; its token counter stands still),
and while vLLM's own queue is longer than the engine's ``parallel`` (its /metrics), Leeway holds
new work back in its own queue."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from openai import OpenAI

from tests.vllm.conftest import VLLM_SEQS, start_gateway, until
from tests.vllm.server import API_KEY, MODEL, VllmServer

LOAD = "Write a very long essay about the history of Rome."


def test_cancel_stops_the_generation_on_vllm(client: OpenAI, vllm: VllmServer):
    generated = vllm.metric("vllm:generation_tokens_total")
    r = client.responses.create(
        model=MODEL,
        input=LOAD,
        max_output_tokens=1000,
        background=True,
        metadata={"completion_window": "asap"},
    )
    until(lambda: vllm.metric("vllm:generation_tokens_total") >= generated + 5)
    assert vllm.did("added", r.id)
    assert client.responses.cancel(r.id).status == "cancelled"
    until(lambda: vllm.did("aborted", r.id), 30)  # vLLM's side: the request was aborted
    until(lambda: vllm.metric("vllm:num_requests_running") == 0, 30)
    stopped_at = vllm.metric("vllm:generation_tokens_total")
    time.sleep(3)
    assert vllm.metric("vllm:generation_tokens_total") == stopped_at  # nothing generates on
    assert stopped_at < generated + 1000  # cut off well before its cap
    assert client.responses.retrieve(r.id).status == "cancelled"


def test_vllms_own_queue_holds_new_work_back(tmp_path: Path, vllm: VllmServer):
    parallel = 2
    gateway = start_gateway(tmp_path, vllm, parallel=parallel)
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0, timeout=600)
    # enough other work that vLLM's queue stays long for many seconds, even on a quiet machine
    others = [f"other-client-{i}-{time.monotonic_ns()}" for i in range(VLLM_SEQS + 10 * parallel)]
    try:
        with ThreadPoolExecutor(len(others)) as pool:
            load = [pool.submit(direct_request, vllm, rid) for rid in others]
            until(lambda: vllm.metric("vllm:num_requests_waiting") > parallel + 2)
            time.sleep(1.5)  # Leeway's probe (every second) has read vLLM's /metrics
            r = client.responses.create(
                model=MODEL,
                input="Name three colors.",
                max_output_tokens=16,
                background=True,
                metadata={"completion_window": "asap"},
            )
            held = 0
            while True:  # vLLM's queue only shrinks: while it is still long, Leeway held r back
                status = client.responses.retrieve(r.id).status
                if vllm.metric("vllm:num_requests_waiting") <= parallel + 1:
                    break
                assert status == "queued"
                held += 1
                time.sleep(0.5)
            done = until(lambda: (x := client.responses.retrieve(r.id)).status == "completed" and x)
            for f in load:
                f.result()
    finally:
        gateway.stop()
    assert held > 0 and done.output_text
    events = vllm.events()
    added = next(i for i, e in enumerate(events) if e.what == "added" and e.job == r.id)
    finished_before = [e for e in events[:added] if e.what == "finished" and e.job in others]
    # vLLM got it only once its queue had drained to about `parallel`: at least that many of
    # the other clients' queued requests had finished by then
    assert len(finished_before) >= len(others) - VLLM_SEQS - parallel - 1, len(finished_before)


def direct_request(vllm: VllmServer, request_id: str) -> None:
    """Another client of vLLM, not through Leeway."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": LOAD}],
        "max_completion_tokens": 48,
        "ignore_eos": True,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Request-Id": request_id}
    with httpx.stream(
        "POST", f"{vllm.url}/v1/chat/completions", json=body, headers=headers, timeout=600
    ) as resp:
        resp.raise_for_status()
        for _ in resp.iter_lines():
            pass
