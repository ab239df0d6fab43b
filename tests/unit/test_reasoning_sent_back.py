"""An upstream's reasoning comes back to clients on every surface; a client that sends an earlier
reply back as it came (reasoning included) gets its turn taken, the reasoning left out of the prompt."""

from __future__ import annotations

from leeway.api import chat, messages, responses
from leeway.api.body import parse
from leeway.jobs import Message

THOUGHT = "The user greets me; I greet back."


def test_a_responses_reasoning_item_is_accepted_and_not_prompted():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Hi"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": THOUGHT}],
                "encrypted_content": None,
                "status": "completed",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
            },
            {"role": "user", "content": "And now?"},
        ],
    }
    draft = responses.draft(parse(responses.CreateResponse, body))
    assert draft.messages == (
        Message("user", "Hi"),
        Message("assistant", "Hello!"),
        Message("user", "And now?"),
    )


def test_a_chat_reply_with_reasoning_content_is_accepted_and_not_prompted():
    for name in ("reasoning_content", "reasoning"):
        body = {
            "model": "m",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!", name: THOUGHT},
                {"role": "user", "content": "And now?"},
            ],
        }
        draft = chat.draft(parse(chat.CreateChatCompletion, body))
        assert [m.content for m in draft.messages] == ["Hi", "Hello!", "And now?"]


def test_a_thinking_block_is_accepted_and_not_prompted():
    body = {
        "model": "m",
        "max_tokens": 16,
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": THOUGHT, "signature": ""},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Hello!"},
                ],
            },
            {"role": "user", "content": "And now?"},
        ],
    }
    draft = messages.draft(parse(messages.CreateMessage, body))
    assert [m.content for m in draft.messages] == ["Hi", "Hello!", "And now?"]
