"""vLLM killed mid-reply (every process of it, as a crash would) and started again: the job it was
generating goes back to Leeway's queue keeping its text, continues from that text on the restarted
vLLM, streams to its client without a gap or a repeat, and is billed once; a job that arrives while
vLLM is down waits for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from openai import OpenAI

from tests.vllm.conftest import VLLM_SEQS, start_gateway, until
from tests.vllm.server import MODEL, VllmServer
from tests.vllm.test_windows import LOAD, assert_billed_once

# Long enough that the job is still generating when the client has seen its first 8 deltas, on a
# machine fast or slow (at 64 tokens a fast one had finished it before the kill)
LONG = 256


def test_a_job_cut_off_by_a_vllm_restart_continues_its_text(tmp_path: Path, vllm: VllmServer):
    if not vllm.owned:
        pytest.skip("kills and restarts vLLM: needs one this suite started, not LEEWAY_VLLM_URL")
    gateway = start_gateway(tmp_path, vllm, parallel=VLLM_SEQS)
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0, timeout=1200)
    try:
        r = client.responses.create(
            model=MODEL,
            input=LOAD,
            max_output_tokens=LONG,
            temperature=0,
            background=True,
            metadata={"completion_window": "standard"},
        )
        pieces: list[str] = []
        before, waiting = "", ""
        with client.responses.retrieve(r.id, stream=True) as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    pieces.append(event.delta)
                if len(pieces) == 8 and not before:
                    before = "".join(pieces)
                    vllm.kill()
                    until(lambda: client.responses.retrieve(r.id).status == "queued", 60)
                    waiting = client.responses.create(
                        model=MODEL,
                        input="Name three colors.",
                        max_output_tokens=16,
                        background=True,
                    ).id
                    time.sleep(3)
                    assert client.responses.retrieve(waiting).status == "queued"  # vLLM is down
                    vllm.start()
        done = until(lambda: (x := client.responses.retrieve(r.id)).status == "completed" and x)
        late = until(lambda: (x := client.responses.retrieve(waiting)).status == "completed" and x)
        twin = client.responses.create(  # the same request, run once, for the bill
            model=MODEL, input=LOAD, max_output_tokens=LONG, temperature=0
        )
    except BaseException:
        print(f"leeway serve's log:\n{gateway.log.read_text()[-20000:]}\nvLLM's:\n{vllm.tail(80)}")
        raise
    finally:
        gateway.stop()
        vllm.ensure_running()  # killed and not started again (this test failed): the others need it
    assert done.output_text == "".join(pieces)  # streamed whole, nothing twice
    assert done.output_text.startswith(before) and len(done.output_text) > len(before)
    runs = [e for e in vllm.events() if e.job == r.id]
    assert [e.what for e in runs] == ["added", "added", "finished"]  # cut by the kill, continued
    continuation = runs[-1].output
    assert done.output_text.endswith(continuation)
    assert len(done.output_text) - len(continuation) >= len(before)  # the text so far was kept
    assert late.output_text and vllm.did("finished", late.id)
    assert_billed_once(vllm, done, twin)
