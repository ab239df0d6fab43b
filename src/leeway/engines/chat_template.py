"""A model's own chat template (Jinja, from its GGUF metadata or its tokenizer), rendered the way
Hugging Face renders it, with tools shown as ``engines.tool_prompt`` describes."""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from leeway.engines import tool_prompt
from leeway.errors import ConfigError
from leeway.jobs import Message
from leeway.structured import Tools


class ChatTemplate:
    def __init__(self, source: str, bos: str, eos: str) -> None:
        if not source:
            raise ConfigError("The model has no chat template in its metadata.")
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self._template = env.from_string(source)
        self._renders_tools = "tools" in source  # it renders tools itself
        self._bos, self._eos = bos, eos
        self._tool_turns = self._shows_tool_turns()

    def prompt(self, messages: Sequence[Message], tools: Tools | None = None) -> str:
        extra: dict[str, object] = {}
        if self._renders_tools and (tools is not None or any(m.calls for m in messages)):
            chat, extra["tools"] = tool_prompt.native(messages, tools)
        elif tools is not None or any(m.calls or m.role == "tool" for m in messages):
            chat = tool_prompt.plain(messages, tools, self._tool_turns)
        else:
            chat = [{"role": m.role, "content": m.content} for m in messages]
        return self._template.render(
            messages=chat,
            add_generation_prompt=True,
            bos_token=self._bos,
            eos_token=self._eos,
            **extra,
        )

    def _shows_tool_turns(self) -> bool:
        """Whether the template renders a message of role ``tool`` (and does not drop it)."""
        probe = [{"role": "user", "content": "q"}, {"role": "tool", "content": "tool-probe-7"}]
        try:
            text = self._template.render(
                messages=probe, add_generation_prompt=True, bos_token=self._bos, eos_token=self._eos
            )
        except TemplateError:  # a template may raise on roles it does not know
            return False
        return "tool-probe-7" in text
