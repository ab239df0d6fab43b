"""What every surface's wire models share: strict parsing, metadata, refusing what is not built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from leeway.errors import InvalidRequest, UnsupportedParameter

MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]
Temperature = Annotated[float, Field(ge=0, le=2, strict=False)]
TopP = Annotated[float, Field(ge=0, le=1, strict=False)]
PositiveInt = Annotated[int, Field(ge=1)]


class Wire(BaseModel):
    """A wire object: unknown fields are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Request(BaseModel):
    """A create request: unknown fields are collected and checked by ``reject_unsupported``."""

    model_config = ConfigDict(extra="allow", strict=True)


def reject_unsupported(body: Request, not_yet: Mapping[str, Any]) -> None:
    """400 naming the first parameter that is unknown, or known but not built yet and set to
    something other than its do-nothing value (``not_yet`` maps name → that value)."""
    for name, value in (body.model_extra or {}).items():
        if name not in not_yet:
            raise UnsupportedParameter(f"Unknown parameter: '{name}'.", param=name)
        if value is not None and value != not_yet[name]:
            raise UnsupportedParameter(
                f"The '{name}' parameter is not supported by this server yet; remove it "
                "from the request.",
                param=name,
            )


_METADATA: TypeAdapter[dict[str, str]] = TypeAdapter(Metadata)


def check_metadata(raw: Any, param: str = "metadata") -> dict[str, str]:
    """``metadata`` from a body read without a wire model: at most 16 string pairs."""
    if raw is None:
        return {}
    try:
        return _METADATA.validate_python(raw)
    except ValidationError as e:
        raise InvalidRequest(
            f"{param} must be an object of at most 16 keys (up to 64 characters) with string "
            f"values (up to 512 characters): {e.errors()[0]['msg']}.",
            param=param,
        ) from e
