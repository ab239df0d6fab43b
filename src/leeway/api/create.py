"""One create flow for every surface (``POST /v1/responses``, ``/v1/chat/completions``,
``/v1/messages``): authenticate, read the body and its idempotency key, parse it with the surface's
wire model, turn it into a draft, then answer in one of three ways: at once (a background response:
202), as a stream of the job's text, or once the job is final. A request whose key already made a
job is answered with that job, marked ``Idempotent-Replayed``: a background create gets it in its
current state, a stream replays its text from its first piece (then live), a blocking request waits
for its final state.

A surface is what differs (``Surface``): its wire model, its draft, its rendering and its stream
encoder, each built once with the rendering options the settings ask for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from leeway.api import idempotency
from leeway.api.auth import Authenticator
from leeway.api.body import load_json, parse, read_bytes
from leeway.api.idempotency import REPLAYED
from leeway.api.intake import Draft, Intake
from leeway.api.sse import Encoder, stream
from leeway.jobs import Job
from leeway.runtime import Following, Runtime
from leeway.store import Jobs

R = TypeVar("R", bound=BaseModel)
R_contra = TypeVar("R_contra", bound=BaseModel, contravariant=True)


class Mode(enum.Enum):
    BACKGROUND = "background"  # answered at once (202); polled or streamed later
    STREAM = "stream"  # the text as it is generated
    BLOCK = "block"  # answered once final


class Surface(Protocol[R_contra]):
    def draft(self, body: R_contra) -> Draft: ...

    def mode(self, body: R_contra) -> Mode: ...

    async def prepare(self, body: R_contra, draft: Draft, tenant: str, store: Jobs) -> Draft:
        """The draft, completed with what the store holds (Responses' ``previous_response_id``)."""

    def render(self, job: Job) -> dict[str, Any]: ...

    def encoder(self, job: Job, body: R_contra) -> Encoder: ...


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, media_type="application/json", headers=headers
    )


class Create(Generic[R]):
    """The create endpoint of one surface."""

    def __init__(
        self,
        wire: type[R],
        surface: Surface[R],
        auth: Authenticator,
        intake: Intake,
        runtime: Runtime,
        store: Jobs,
        max_body_bytes: int,
    ) -> None:
        self._wire, self._surface, self._auth, self._intake = wire, surface, auth, intake
        self._runtime, self._store, self._max_body = runtime, store, max_body_bytes

    async def handle(self, request: Request) -> Response:
        caller = await self._auth.caller(request)
        tenant = caller.tenant
        key = idempotency.header(request)  # checked before the body is read
        raw = await read_bytes(request, self._max_body)
        key_held = idempotency.from_request(request, key, raw)
        body = parse(self._wire, load_json(raw))
        draft, mode = self._surface.draft(body), self._surface.mode(body)
        if (held := await self._intake.held(tenant, key_held)) is not None:
            return await self._answer(body, mode, held, None, REPLAYED)
        draft = await self._surface.prepare(body, draft, tenant, self._store)
        job = self._intake.prepare(tenant, draft, key_id=caller.key_id)
        # followed before it is stored: not a piece of its text can come before we listen
        following = None if mode is Mode.BACKGROUND else self._follow(job, mode)
        try:
            taken = await self._intake.accept(job, key_held)
        except BaseException:
            if following is not None:
                await following.aclose()
            raise
        if taken.replayed:  # a concurrent request with the same key won: answer with its job
            if following is not None:
                await following.aclose()
            return await self._answer(body, mode, taken.job, None, {**REPLAYED, **taken.headers})
        return await self._answer(body, mode, job, following, taken.headers)

    def _follow(self, job: Job, mode: Mode) -> Following:
        return self._runtime.follow(job, 0 if mode is Mode.STREAM else None)

    async def _answer(
        self,
        body: R,
        mode: Mode,
        job: Job,
        following: Following | None,
        headers: Mapping[str, str] | None,
    ) -> Response:
        if mode is Mode.BACKGROUND:
            return json_response(self._surface.render(job), 202, headers)
        following = following or self._follow(job, mode)
        if mode is Mode.STREAM:
            return stream(self._surface.encoder(job, body), following, headers)
        final = await _last(following)
        return json_response(self._surface.render(final), 200, headers)


async def _last(updates: Following) -> Job:
    async for update in updates:
        if isinstance(update, Job):
            return update
    raise AssertionError("a job's updates end with the job, final")
