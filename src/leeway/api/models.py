"""``GET /v1/models`` and ``GET /v1/models/{id}``: the models this server serves, each with its
completion windows and its prices per window (per million tokens, input and output, as
configured), in OpenAI's shapes (``Model``, a list object) or, to an Anthropic client (an
``anthropic-version`` or ``x-api-key`` header), Anthropic's (``type: "model"``, ``display_name``,
RFC 3339 ``created_at``, a page with ``first_id``, ``last_id``, ``has_more``; ``after_id``,
``before_id``, ``limit`` 1 to 1000, 20 by default). A model is found by its id or an alias; it
is shown under its id."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api.auth import Authenticator
from leeway.api.create import json_response
from leeway.catalog import ModelConfig
from leeway.errors import InvalidRequest, ModelNotFound
from leeway.settings import Settings

_CREATED = 0  # no release date is known: the epoch, as Anthropic's API shows such a model


def anthropic_client(request: Request) -> bool:
    return "anthropic-version" in request.headers or "x-api-key" in request.headers


def prices(model: ModelConfig) -> dict[str, dict[str, float]]:
    """Per window the model has a price for: per million tokens, input and output."""
    return {w.value: {"input": p.input, "output": p.output} for w, p in model.prices.items()}


def openai_model(model: ModelConfig) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": _CREATED,
        "owned_by": "leeway",
        "completion_windows": [w.value for w in model.windows],
        "prices": prices(model),
    }


def anthropic_model(model: ModelConfig) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.id.rsplit("/", 1)[-1],
        "created_at": "1970-01-01T00:00:00Z",
        "lifecycle": "active",
        "max_input_tokens": model.context,
        "max_tokens": model.context,
        "completion_windows": [w.value for w in model.windows],
        "prices": prices(model),
    }


class ModelRoutes:
    def __init__(self, settings: Settings, auth: Authenticator) -> None:
        self._settings, self._auth = settings, auth

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.list, methods=["GET"]),
            Route("/v1/models/{id:path}", self.get, methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        await self._auth.tenant(request)
        models = list(self._settings.models)
        if not anthropic_client(request):
            return json_response({"object": "list", "data": [openai_model(m) for m in models]})
        return json_response(_anthropic_page(models, request))

    async def get(self, request: Request) -> Response:
        await self._auth.tenant(request)
        name = request.path_params["id"]
        model = self._settings.model(name)
        if model is None:
            raise ModelNotFound(
                f"The model '{name}' does not exist. GET /v1/models lists the models this "
                "server serves.",
                param="model",
            )
        shown = anthropic_model(model) if anthropic_client(request) else openai_model(model)
        return json_response(shown)


def _anthropic_page(models: list[ModelConfig], request: Request) -> dict[str, Any]:
    q = request.query_params
    raw = q.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise InvalidRequest(
            f"limit must be an integer from 1 to 1000, not {raw!r}.", param="limit"
        )
    ids = [m.id for m in models]
    for cursor in ("after_id", "before_id"):
        if (given := q.get(cursor)) is not None and given not in ids:
            raise InvalidRequest(f"{cursor}: no model with id {given!r}.", param=cursor)
    limit = int(raw)
    if (before := q.get("before_id")) is not None:
        shown = models[max(0, ids.index(before) - limit) : ids.index(before)]
        more = ids.index(before) - limit > 0
    else:
        start = ids.index(q["after_id"]) + 1 if "after_id" in q else 0
        shown = models[start : start + limit]
        more = start + limit < len(models)
    data = [anthropic_model(m) for m in shown]
    return {
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }
