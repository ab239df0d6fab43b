"""What a completion webhook sends for each surface, including jobs that failed."""

from __future__ import annotations

import orjson

from leeway.api import chat, messages, responses
from leeway.api.surfaces import Surfaces
from leeway.api.webhooks import body
from leeway.jobs import Finish, JobError, Output, Status, Surface, Usage
from leeway.settings import Settings
from tests.conftest import make_job

SURFACES = Surfaces(Settings())

FAILED = {"status": Status.FAILED, "error": JobError("engine_error", "out of memory")}
DONE = {"status": Status.COMPLETED, "output": Output("hi", Finish.STOP), "usage": Usage(3, 1)}


def test_a_response_is_exactly_its_get_json_in_any_final_state():
    for state in (DONE, FAILED, {"status": Status.CANCELLED}):
        job = make_job(**state)
        assert body(job, SURFACES) == orjson.dumps(responses.render(job, strict_incomplete=False))


def test_chat_and_messages_send_what_their_create_returns():
    job = make_job(id="chatcmpl-1", surface=Surface.CHAT, **DONE)
    assert orjson.loads(body(job, SURFACES)) == chat.render(job)
    job = make_job(id="msg_1", surface=Surface.MESSAGES, **DONE)
    assert orjson.loads(body(job, SURFACES)) == messages.render(job)


def test_a_failed_chat_or_message_sends_its_error_envelope_with_the_job_id():
    job = make_job(id="chatcmpl-1", surface=Surface.CHAT, **FAILED)
    sent = orjson.loads(body(job, SURFACES))
    assert sent["id"] == "chatcmpl-1" and sent["error"]["message"] == "out of memory"
    assert sent["error"]["type"] == "server_error"
    job = make_job(id="msg_1", surface=Surface.MESSAGES, **FAILED)
    sent = orjson.loads(body(job, SURFACES))
    assert sent == {
        "id": "msg_1",
        "type": "error",
        "error": {"type": "api_error", "message": "out of memory"},
    }
