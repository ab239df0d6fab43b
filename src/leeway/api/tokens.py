"""Token counting: ``POST /v1/messages/count_tokens`` (Anthropic's ``{"input_tokens"}``) and
``POST /v1/responses/input_tokens`` (OpenAI's ``{"object": "response.input_tokens",
"input_tokens"}``). The body is read as its surface's create would read it (the same messages,
tools, instructions and ``previous_response_id``) and counted by the model's own tokenizer and
chat template: exactly the input tokens a create with that body is billed."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import messages, responses
from leeway.api.auth import Authenticator
from leeway.api.body import load_json, parse, read_bytes
from leeway.api.create import json_response
from leeway.api.intake import Intake
from leeway.errors import InvalidRequest, UnsupportedParameter
from leeway.store import Jobs

# the fields each count takes: its create's, less what only shapes the reply or how it is run
_MESSAGES = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config"}
)
_RESPONSES = frozenset(
    {
        *("model", "input", "instructions", "previous_response_id", "tools", "tool_choice"),
        *("parallel_tool_calls", "reasoning", "text", "truncation", "conversation"),
    }
)


class TokenRoutes:
    def __init__(
        self,
        auth: Authenticator,
        intake: Intake,
        surface: responses.Responses,
        store: Jobs,
        max_body_bytes: int,
    ) -> None:
        self._auth, self._intake, self._responses = auth, intake, surface
        self._store, self._max = store, max_body_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages/count_tokens", self.messages, methods=["POST"]),
            Route("/v1/responses/input_tokens", self.responses, methods=["POST"]),
        ]

    async def messages(self, request: Request) -> Response:
        await self._auth.tenant(request)
        body = await self._body(request, _MESSAGES)
        draft = messages.draft(parse(messages.CreateMessage, {**body, "max_tokens": 1}))
        _, counted = self._intake.count(draft)
        return json_response({"input_tokens": counted.tokens})

    async def responses(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        body = await self._body(request, _RESPONSES)
        wire = parse(responses.CreateResponse, body)
        draft = responses.draft(wire)
        draft = await self._responses.prepare(wire, draft, tenant, self._store)
        _, counted = self._intake.count(draft)
        return json_response({"object": "response.input_tokens", "input_tokens": counted.tokens})

    async def _body(self, request: Request, fields: frozenset[str]) -> dict[str, Any]:
        body = load_json(await read_bytes(request, self._max))
        if unknown := sorted(set(body) - fields):
            raise UnsupportedParameter(
                f"Unknown parameter for counting tokens: '{unknown[0]}'.", param=unknown[0]
            )
        if "model" not in body:
            raise InvalidRequest(
                "Missing required parameter: 'model' (each model has its own tokenizer).",
                param="model",
            )
        return body
