"""Stored chat completions through the official `openai` SDK: `client.chat.completions.list`
(metadata and model filters, paging), `retrieve`, `update`, `delete`, `messages.list`. A chat
completion is stored unless it was sent `store: false`."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer


@pytest.fixture(scope="module")
def tenant(fid: LeewayServer) -> OpenAI:
    """A tenant of its own: its list holds only what these tests made."""
    return OpenAI(base_url=fid.base_url, api_key=fid.new_key("chats"), max_retries=0)


def ask(client: OpenAI, text: str, **extra):  # type: ignore[no-untyped-def]
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **extra
    )


def test_chat_completions_are_stored_listed_and_filtered(tenant: OpenAI):
    made = [ask(tenant, f"q{i}", metadata={"run": "a" if i < 3 else "b"}) for i in range(5)]
    ids = [c.id for c in made]
    hidden = ask(tenant, "secret", store=False, metadata={"run": "a"})

    listed = tenant.chat.completions.list(limit=100)
    assert [c.id for c in listed.data] == ids and not listed.has_more  # oldest first
    assert listed.data[0].choices[0].message.content == made[0].choices[0].message.content
    assert listed.data[0].metadata == {"run": "a"}
    newest = tenant.chat.completions.list(order="desc", limit=2)
    assert [c.id for c in newest.data] == ids[::-1][:2] and newest.has_more
    assert [c.id for c in tenant.chat.completions.list(limit=2)] == ids  # auto-paging: `after`
    after = tenant.chat.completions.list(after=ids[2])
    assert [c.id for c in after.data] == ids[3:]
    only_a = tenant.chat.completions.list(metadata={"run": "a"})
    assert [c.id for c in only_a.data] == ids[:3]
    assert tenant.chat.completions.list(metadata={"run": "a", "x": "y"}).data == []
    assert [c.id for c in tenant.chat.completions.list(model=MODEL).data] == ids
    assert tenant.chat.completions.list(model="other").data == []

    assert tenant.chat.completions.retrieve(ids[1]).id == ids[1]
    with pytest.raises(openai.NotFoundError):  # store: false is never shown
        tenant.chat.completions.retrieve(hidden.id)
    assert hidden.id not in [c.id for c in tenant.chat.completions.list(limit=100)]


def test_update_replaces_metadata_and_delete_removes(tenant: OpenAI):
    done = ask(tenant, "to change", metadata={"stage": "draft"})
    assert done.metadata == {"stage": "draft"}
    changed = tenant.chat.completions.update(done.id, metadata={"stage": "final", "by": "me"})
    assert changed.metadata == {"stage": "final", "by": "me"} and changed.id == done.id
    assert tenant.chat.completions.retrieve(done.id).metadata == {"stage": "final", "by": "me"}
    assert [c.id for c in tenant.chat.completions.list(metadata={"stage": "final"})] == [done.id]
    with pytest.raises(openai.BadRequestError) as e:
        tenant.chat.completions.update(done.id, metadata={"k" * 65: "v"})
    assert e.value.body["param"] == "metadata"  # type: ignore[index]

    deleted = tenant.chat.completions.delete(done.id)
    assert deleted.deleted and deleted.id == done.id
    assert deleted.object == "chat.completion.deleted"
    with pytest.raises(openai.NotFoundError):
        tenant.chat.completions.retrieve(done.id)
    with pytest.raises(openai.NotFoundError):
        tenant.chat.completions.delete(done.id)


def test_messages_of_a_stored_completion_page(tenant: OpenAI):
    done = tenant.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Bye"},
        ],
    )
    listed = tenant.chat.completions.messages.list(done.id)
    assert [(m.role, m.content) for m in listed.data] == [
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "Hi."),
        ("user", "Bye"),
    ]
    assert len({m.id for m in listed.data}) == 4 and not listed.has_more
    page = tenant.chat.completions.messages.list(done.id, limit=3, order="desc")
    assert [m.content for m in page.data] == ["Bye", "Hi.", "Hello"] and page.has_more
    rest = tenant.chat.completions.messages.list(done.id, after=page.data[-1].id, order="desc")
    assert [m.content for m in rest.data] == ["Be brief."]
    assert [m.content for m in tenant.chat.completions.messages.list(done.id, limit=1)] == [
        "Be brief.",
        "Hello",
        "Hi.",
        "Bye",
    ]


def test_another_tenant_sees_none_of_them(tenant: OpenAI, fid: LeewayServer):
    mine = ask(tenant, "mine")
    other = OpenAI(base_url=fid.base_url, api_key=fid.new_key("chats-2"), max_retries=0)
    assert other.chat.completions.list().data == []
    for call in (other.chat.completions.retrieve, other.chat.completions.delete):
        with pytest.raises(openai.NotFoundError):
            call(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.messages.list(mine.id)
    with pytest.raises(openai.NotFoundError):  # a response is no chat completion
        r = tenant.responses.create(model=MODEL, input="hi")
        tenant.chat.completions.retrieve(r.id)
