"""The table of surfaces: each built once, with the rendering options the settings ask for, and used
wherever a job is shown (its create and GET, its webhook, a batch's item and output files)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from leeway.api.chat import Chat, CreateChatCompletion
from leeway.api.create import Surface
from leeway.api.messages import CreateMessage, Messages
from leeway.api.responses import CreateResponse, Responses
from leeway.jobs import Job
from leeway.jobs import Surface as Kind
from leeway.settings import Settings


class Surfaces:
    def __init__(self, settings: Settings) -> None:
        self.responses = Responses(strict_incomplete=settings.strict_incomplete)
        self.chat = Chat()
        self.messages = Messages()
        # the create route of each: (path, wire model, surface)
        self.creates: tuple[tuple[str, type[BaseModel], Surface[Any]], ...] = (
            ("/v1/responses", CreateResponse, self.responses),
            ("/v1/chat/completions", CreateChatCompletion, self.chat),
            ("/v1/messages", CreateMessage, self.messages),
        )

    def render(self, job: Job) -> dict[str, Any]:
        """The job as its own surface shows it (a failed chat completion or message raises the
        error its create would have answered with)."""
        if job.surface is Kind.CHAT:
            return self.chat.render(job)
        if job.surface is Kind.MESSAGES:
            return self.messages.render(job)
        return self.responses.render(job)
