"""A Message Batch as Anthropic shows it: its status and live counts, and a result line for each
way a request can end (succeeded, errored, canceled, expired)."""

from __future__ import annotations

from dataclasses import replace

import orjson

from leeway.api.message_batch_wire import message_batch, result_line, rfc3339
from leeway.batches import Batch, Counts, Shape
from leeway.jobs import Finish, JobError, Output, Status, Usage
from tests.conftest import make_job

BATCH = Batch(
    id="msgbatch_1",
    tenant="t1",
    shape=Shape.ANTHROPIC,
    endpoint="/v1/messages",
    completion_window="standard",
    created_at=1_700_000_000.25,
    expires_at=1_700_090_000.0,
)


def test_status_and_counts_follow_the_batch():
    running = message_batch(replace(BATCH, counts=Counts(queued=2, running=1, completed=3)))
    assert running["processing_status"] == "in_progress" and running["results_url"] is None
    assert running["request_counts"] == {
        "processing": 3,
        "succeeded": 3,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert running["created_at"] == "2023-11-14T22:13:20.250000Z"
    canceling = message_batch(replace(BATCH, cancelled_at=1_700_000_001.0))
    assert canceling["processing_status"] == "canceling"
    assert canceling["cancel_initiated_at"] == rfc3339(1_700_000_001.0)
    counts = Counts(completed=1, incomplete=1, failed=1, cancelled=2)
    ended = message_batch(replace(BATCH, counts=counts, finished_at=1_700_000_009.0), "http://h")
    assert ended["processing_status"] == "ended" and ended["ended_at"] is not None
    assert ended["results_url"] == "http://h/v1/messages/batches/msgbatch_1/results"
    assert ended["request_counts"]["succeeded"] == 2 and ended["request_counts"]["canceled"] == 2
    expired = message_batch(replace(BATCH, counts=counts, finished_at=9e9, expired_at=9e9))
    assert expired["request_counts"]["expired"] == 2 and expired["request_counts"]["canceled"] == 0


def test_a_result_line_for_each_way_a_request_ends():
    def line(**fields):  # type: ignore[no-untyped-def]
        job = make_job(batch_id=BATCH.id, custom_id="c1", **fields)
        return orjson.loads(result_line(BATCH, job, lambda j: {"id": j.id, "type": "message"}))

    done = line(status=Status.COMPLETED, output=Output("hi", Finish.STOP), usage=Usage(3, 1))
    assert done["custom_id"] == "c1" and done["result"]["type"] == "succeeded"
    assert done["result"]["message"]["type"] == "message"
    failed = line(status=Status.FAILED, error=JobError("engine_error", "it broke"))
    assert failed["result"] == {
        "type": "errored",
        "error": {"type": "error", "error": {"type": "api_error", "message": "it broke"}},
    }
    assert line(status=Status.CANCELLED, completed_at=5.0)["result"] == {"type": "canceled"}
    expired_batch = replace(BATCH, expired_at=4.0)
    job = make_job(batch_id=BATCH.id, custom_id="c2", status=Status.CANCELLED, completed_at=4.0)
    got = orjson.loads(result_line(expired_batch, job, lambda j: {}))
    assert got["result"] == {"type": "expired"}
