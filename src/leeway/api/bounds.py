"""How much one request may hold: the bounded types the wire models use, each with the official API's
limit it follows (or, where the official APIs set none, why this one). Over a bound → 400 naming the
field and the bound (``leeway.api.errors.from_validation`` writes pydantic's message).

The whole body is capped first (``max_body_bytes``, 16 MiB; Anthropic's Messages API takes 32 MB),
so what is left to bound is what costs more than its size: what is echoed back on every read
(``user``), what runs per generated token (stop sequences: their matcher costs the same per token
whatever their number, and building it costs their total length), what becomes a grammar (schemas
and tool parameters), and free-form JSON nested deeper than the serializer writes (orjson stops at
255 levels; a job is stored as JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from leeway.errors import InvalidRequest

# OpenAI: "string too long. Expected a string with maximum length 10485760" (any text field).
MAX_TEXT = 10 * 1024 * 1024
# OpenAI's ``user`` (and ``safety_identifier``): "Expected a string with maximum length 64".
MAX_USER = 64
# Ids a client sends back (previous_response_id, call ids, item ids) and model names; OpenAI's and
# Anthropic's own ids are under 64 characters; this leaves room for other servers' ids.
MAX_ID = 256
# OpenAI Chat ``stop``: "Up to 4 sequences". Anthropic documents no bound for ``stop_sequences``;
# 64 keeps the matcher's set-up under ~3 ms (bench/hardening.py stops). Each at most 256 chars.
MAX_CHAT_STOPS, MAX_STOPS, MAX_STOP_CHARS = 4, 64, 256
# OpenAI: "Invalid 'tools': array too long. Expected an array with maximum length 128".
MAX_TOOLS = 128
# All of a request's tools together, as JSON: they become one grammar, parsed where tokens are
# decoded (no official bound; 1 MiB keeps that parse in the milliseconds).
MAX_TOOLS_BYTES = 1024 * 1024
# OpenAI: a function's description is at most 1024 characters.
MAX_TOOL_DESCRIPTION = 1024
# Messages (or input items) per request. Anthropic: "a limit of 100,000 messages in a single
# request"; OpenAI's Responses refuses an input array over 16,384 items. One bound for every
# surface: each message is formatted into the prompt before the context's limit can be checked.
MAX_MESSAGES = 16_384
# Free-form JSON (schemas, tool parameters and inputs, cache_control, …): nesting depth. OpenAI's
# structured outputs allow 10 levels of object nesting (about 21 levels of JSON); the serializer
# stops at 255, and a free-form value is stored a few levels down inside a job.
MAX_DEPTH = 64
# A schema (an output format's, a tool's parameters): serialized size. OpenAI's structured outputs
# allow 5,000 properties and 120,000 characters of names and enum values per schema.
MAX_SCHEMA_BYTES = 256 * 1024

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
User = Annotated[str, StringConstraints(max_length=MAX_USER)]
Id = Annotated[str, StringConstraints(max_length=MAX_ID)]
Stop = Annotated[str, StringConstraints(max_length=MAX_STOP_CHARS)]
ChatStops = Annotated[list[Stop], Field(max_length=MAX_CHAT_STOPS)]
Stops = Annotated[list[Stop], Field(max_length=MAX_STOPS)]
ToolDescription = Annotated[str, StringConstraints(max_length=MAX_TOOL_DESCRIPTION)]


def _shallow(value: Any) -> Any:
    """``value`` if it nests at most ``MAX_DEPTH`` levels (walked without recursion, stopping at
    the first level too deep)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"nests deeper than {MAX_DEPTH} levels, the most this server accepts")
        stack.extend((child, depth + 1) for child in children)
    return value


def _tools_sized(value: Any) -> Any:
    """A list of tools of at most ``MAX_TOOLS_BYTES`` as JSON (what is not JSON, or nests too
    deep, is left for the tools' own checks to name)."""
    if isinstance(value, list) and len(value) <= MAX_TOOLS:
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:
            return value
        if size > MAX_TOOLS_BYTES:
            raise ValueError(
                f"the tools are {size:,} bytes as JSON; together they may be at most "
                f"{MAX_TOOLS_BYTES:,} bytes"
            )
    return value


def _schema_sized(value: Any) -> Any:
    """``value`` if it serializes to at most ``MAX_SCHEMA_BYTES`` (and nests at most ``MAX_DEPTH``
    levels). Serialized first: orjson refuses (fast) what nests past 255 levels."""
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        size = None
    if size is None:
        raise ValueError(f"nests deeper than {MAX_DEPTH} levels, the most this server accepts")
    if size > MAX_SCHEMA_BYTES:
        raise ValueError(
            f"is {size:,} bytes as JSON; a schema may be at most {MAX_SCHEMA_BYTES:,} bytes"
        )
    return _shallow(value)


T = TypeVar("T")
Many = Annotated[list[T], Field(max_length=MAX_MESSAGES)]  # messages, items, parts, blocks
Messages = Annotated[list[T], Field(min_length=1, max_length=MAX_MESSAGES)]
Tools = Annotated[list[T], BeforeValidator(_tools_sized), Field(max_length=MAX_TOOLS)]

Json = Annotated[Any, AfterValidator(_shallow)]  # any JSON value, nesting bounded
JsonObject = Annotated[dict[str, Any], AfterValidator(_shallow)]
JsonList = Annotated[list[Any], AfterValidator(_shallow)]
Schema = Annotated[dict[str, Any], AfterValidator(_schema_sized)]


def query_int(params: Mapping[str, str], name: str, default: int, least: int, most: int) -> int:
    """An integer query parameter from ``least`` to ``most``: ASCII digits only (``str.isdigit``
    also takes '²' and other digits ``int`` refuses)."""
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and least <= int(raw) <= most):
        raise InvalidRequest(
            f"{name} must be an integer from {least} to {most}, not {raw[:40]!r}.", param=name
        )
    return int(raw)


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The body's size as its ``Content-Length`` declares it, if that is a plain number."""
    raw = headers.get("content-length")
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    return int(raw)
