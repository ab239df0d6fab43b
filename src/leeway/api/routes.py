"""The HTTP routes: each handler authenticates, converts wire ↔ job, and leaves the rest to the core."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import chat, idempotency, messages, responses, structure
from leeway.api.auth import Authenticator
from leeway.api.body import load_json, parse, read_bytes
from leeway.api.finals import Finals
from leeway.api.idempotency import REPLAYED, Replayed
from leeway.api.intake import Draft, Intake
from leeway.api.sse import Encoder, stream
from leeway.engines import Engine
from leeway.errors import InvalidRequest, NotFound
from leeway.events import JobEvents, Update
from leeway.jobs import Job, Surface, split
from leeway.scheduler.dispatcher import Dispatcher
from leeway.settings import Settings
from leeway.store import IdempotencyKey, Store


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, media_type="application/json", headers=headers
    )


class Api:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        auth: Authenticator,
        intake: Intake,
        engines: Mapping[str, Engine],
        dispatcher: Dispatcher,
        events: JobEvents,
    ) -> None:
        self._settings, self._store, self._auth, self._intake = settings, store, auth, intake
        self._engines, self._dispatcher, self._events = engines, dispatcher, events
        self._strict = settings.strict_incomplete
        self._finals = Finals()

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/responses", self.create_response, methods=["POST"]),
            Route("/v1/responses/{id}", self.get_response, methods=["GET"]),
            Route("/v1/responses/{id}", self.delete_response, methods=["DELETE"]),
            Route("/v1/responses/{id}/cancel", self.cancel_response, methods=["POST"]),
            Route("/v1/chat/completions", self.create_chat_completion, methods=["POST"]),
            Route("/v1/messages", self.create_message, methods=["POST"]),
        ]

    async def health(self, _: Request) -> Response:
        engines = {
            m: {"ready": e.ready(), "parallel": e.parallel, "running": self._dispatcher.running(m)}
            for m, e in self._engines.items()
        }
        ok = all(e["ready"] for e in engines.values())
        return json_response(
            {"status": "ok" if ok else "starting", "engines": engines}, 200 if ok else 503
        )

    async def metrics(self, _: Request) -> Response:
        depths = await self._store.queue_depths()
        body = self._dispatcher.metrics.render(depths, self._dispatcher.utilization)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def list_models(self, request: Request) -> Response:
        await self._auth.tenant(request)
        data = [
            {
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": "leeway",
                "completion_windows": [w.value for w in m.windows],
            }
            for m in self._settings.models
        ]
        return json_response({"object": "list", "data": data})

    # -- Responses -------------------------------------------------------------------------

    async def create_response(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        raw, key = await self._body(request)
        body = parse(responses.CreateResponse, load_json(raw))
        draft = responses.draft(body)

        def render(job: Job) -> dict[str, Any]:
            return responses.render(job, strict_incomplete=self._strict)

        def encoder(job: Job) -> Encoder:
            return responses.ResponseStream(job, strict_incomplete=self._strict)

        try:
            if body.previous_response_id is not None:  # a retry need not find the previous one
                await self._intake.replay_if_held(tenant, key)
                draft = await self._continue(tenant, draft, body.previous_response_id)
            if body.background and not body.stream:
                return json_response(render(await self._intake.submit(tenant, draft, key)), 202)
            if body.stream:
                job, updates = await self._intake.follow(tenant, draft, key)
                return stream(encoder(job), updates)
            return json_response(render(await self._intake.run(tenant, draft, key)))
        except Replayed as replayed:
            streamed = encoder if body.stream else None
            return await self._replayed(replayed.job, render, streamed, bool(body.background))

    async def _replayed(
        self,
        job: Job,
        render: Callable[[Job], Any],
        streamed: Callable[[Job], Encoder] | None,
        background: bool = False,
    ) -> Response:
        """What a request whose idempotency key already made ``job`` gets back, marked
        ``Idempotent-Replayed``: a stream replays the job's text from its first piece (then live);
        a background create gets the job in its current state (202, as the original); a blocking
        request waits for the job's final state."""
        if streamed is not None:
            return stream(streamed(job), self._replay(job), REPLAYED)
        if background:
            return json_response(render(job), 202, REPLAYED)
        return json_response(render(await self._intake.settled(job)), 200, REPLAYED)

    async def get_response(self, request: Request) -> Response:
        streamed = request.query_params.get("stream", "false").lower() in ("true", "1")
        if not streamed:  # the poll path: a final response is served from memory
            tenant = await self._auth.tenant(request)
            if (body := self._finals.get(tenant, request.path_params["id"])) is not None:
                return Response(body, media_type="application/json")
        job = await self._own_response(request)
        if not streamed:
            body = orjson.dumps(responses.render(job, strict_incomplete=self._strict))
            if job.status.is_final:
                self._finals.put(job.tenant, job.id, body)
            return Response(body, media_type="application/json")
        if not job.echo.get("background"):
            raise InvalidRequest(
                "Only responses created with background: true can be streamed "
                "with GET; this one was returned whole when it was created.",
                param="stream",
            )
        raw = request.query_params.get("starting_after", "-1")
        try:
            after = int(raw)
        except ValueError:
            raise InvalidRequest(
                f"starting_after must be an event sequence number (an integer), not {raw!r}.",
                param="starting_after",
            ) from None
        encoder = responses.ResponseStream(job, strict_incomplete=self._strict, after=after)
        return stream(encoder, self._replay(job))

    async def _replay(self, job: Job) -> AsyncIterator[Update]:
        """A job's text from its first piece, then live until it is final: from the dispatcher if
        it runs here, else from the store (subscribed first, so no piece falls in between), its
        later pieces relayed from the store as another process stores them."""
        sub, pieces = self._dispatcher.watch(job.id, self._events)
        try:
            if pieces is None:
                current = await self._store.get(job.tenant, job.id)
                if current is None:
                    return
                if current.status.is_final:
                    if current.output is not None:
                        for piece in split(current.output.text, current.output.deltas):
                            yield piece
                    yield current
                    return
                pieces = split(current.partial_text, current.partial_deltas)
                self._intake.relay.follow(job, len(pieces))  # it runs in another process, or soon
            for piece in pieces:
                yield piece
            async for update in sub.updates(lambda: self._intake.final(job), start=len(pieces)):
                yield update
        finally:
            sub.close()

    async def cancel_response(self, request: Request) -> Response:
        job = await self._own_response(request)
        if not job.echo.get("background"):
            raise InvalidRequest(
                "Only responses created with background: true can be cancelled.", param="id"
            )
        cancelled = await self._stop(job)
        return json_response(responses.render(cancelled, strict_incomplete=self._strict))

    async def delete_response(self, request: Request) -> Response:
        """Deleting a response that is still queued or running cancels it first."""
        job = await self._own_response(request)
        if job.batch_id is not None:
            raise InvalidRequest(
                f"Response '{job.id}' is an item of batch '{job.batch_id}' and is kept with it; "
                "cancel it instead (POST /v1/responses/{id}/cancel), or cancel the batch.",
                param="id",
            )
        if not job.status.is_final:
            await self._stop(job)
        deleted = await self._store.delete(job.tenant, job.id)
        self._finals.forget(job.tenant, job.id)  # after the delete: no poll can re-cache it
        if not deleted:
            raise NotFound(f"No response with id '{job.id}' found.", param="id")
        return json_response({"id": job.id, "object": "response", "deleted": True})

    async def _stop(self, job: Job) -> Job:
        """Cancel in the store, stop generating, and end the job's streams."""
        cancelled = await self._store.cancel(job.tenant, job.id, time.time())
        if cancelled is None:
            raise NotFound(f"No response with id '{job.id}' found.", param="id")
        self._dispatcher.abandon(job.id)
        self._events.publish_final(cancelled)
        return cancelled

    async def _own_response(self, request: Request) -> Job:
        """This tenant's response (a job created on another surface is not a response)."""
        tenant = await self._auth.tenant(request)
        job_id = request.path_params["id"]
        job = await self._store.get(tenant, job_id)
        if job is None or job.surface is not Surface.RESPONSES:
            raise NotFound(f"No response with id '{job_id}' found.", param="id")
        return job

    async def _continue(self, tenant: str, draft: Draft, previous_id: str) -> Draft:
        """The stored conversation so far, then this request's input. As in OpenAI's API, the
        previous request's instructions are not carried over."""
        prev = await self._store.get(tenant, previous_id)
        if prev is None or prev.surface is not Surface.RESPONSES:
            raise NotFound(
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
            )
        if prev.output is None:
            raise InvalidRequest(
                f"Previous response '{previous_id}' has no output yet (status "
                f"{prev.status.value}); continue once it has completed.",
                param="previous_response_id",
            )
        history = prev.messages[1:] if prev.echo.get("instructions") is not None else prev.messages
        turn = (*history, structure.assistant_turn(prev))
        instructions = draft.messages[:1] if draft.echo.get("instructions") is not None else ()
        return replace(draft, messages=(*instructions, *turn, *draft.messages[len(instructions) :]))

    # -- Chat Completions and Messages -----------------------------------------------------

    async def create_chat_completion(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        raw, key = await self._body(request)
        body = parse(chat.CreateChatCompletion, load_json(raw))
        draft = chat.draft(body)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def encoder(job: Job) -> Encoder:
            return chat.ChatStream(job, include_usage)

        try:
            if body.stream:
                job, updates = await self._intake.follow(tenant, draft, key)
                return stream(encoder(job), updates)
            return json_response(chat.render(await self._intake.run(tenant, draft, key)))
        except Replayed as replayed:
            streamed = encoder if body.stream else None
            return await self._replayed(replayed.job, chat.render, streamed)

    async def create_message(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        raw, key = await self._body(request)
        body = parse(messages.CreateMessage, load_json(raw))
        draft = messages.draft(body)
        try:
            if body.stream:
                job, updates = await self._intake.follow(tenant, draft, key)
                return stream(messages.MessageStream(job), updates)
            return json_response(messages.render(await self._intake.run(tenant, draft, key)))
        except Replayed as replayed:
            streamed = messages.MessageStream if body.stream else None
            return await self._replayed(replayed.job, messages.render, streamed)

    async def _body(self, request: Request) -> tuple[bytes, IdempotencyKey | None]:
        """The raw body and the request's idempotency key (its header checked before the body
        is read) fingerprinted with it."""
        key = idempotency.header(request)
        raw = await read_bytes(request, self._settings.max_body_bytes)
        return raw, idempotency.from_request(request, key, raw)
