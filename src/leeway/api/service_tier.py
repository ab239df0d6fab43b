"""``service_tier`` is a completion window. OpenAI's tiers (Responses, Chat Completions): ``flex`` →
the flex window, ``priority`` → the priority window, ``default`` and ``auto`` → the model's default
(or what ``metadata.completion_window`` says). Anthropic's (``auto``, ``standard_only``) are
accepted and leave the window to the model's default. A tier and a ``completion_window`` that
disagree are a 400 naming both; a response shows the tier its window is (``tier``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from leeway.errors import InvalidRequest
from leeway.jobs import WINDOW_ALIASES, Window

OpenAITier = Literal["auto", "default", "flex", "priority"]
AnthropicTier = Literal["auto", "standard_only"]
_WINDOWS: Mapping[str, Window] = {"flex": Window.FLEX, "priority": Window.PRIORITY}


def requested_window(tier: str | None, metadata: Mapping[str, str]) -> str | None:
    """The window a request asks for: its ``metadata.completion_window``, or its tier's."""
    given = metadata.get("completion_window")
    window = _WINDOWS.get(tier or "")
    if window is None:
        return given
    if given is not None and WINDOW_ALIASES.get(given, given) != window.value:
        raise InvalidRequest(
            f"service_tier {tier!r} runs in the {window.value!r} completion window, but "
            f"metadata.completion_window asks for {given!r}: send one of them, or both for the "
            "same window.",
            param="service_tier",
        )
    return given or window.value


def window_param(tier: str | None, metadata: Mapping[str, str]) -> str:
    """The field that chose the window, for errors about it."""
    if tier in _WINDOWS and "completion_window" not in metadata:
        return "service_tier"
    return "metadata.completion_window"


def tier(window: Window) -> str:
    """The OpenAI tier a job in ``window`` ran in."""
    return {Window.FLEX: "flex", Window.PRIORITY: "priority"}.get(window, "default")
