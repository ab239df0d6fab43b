"""Query parameters read strictly: every parameter a route does not know, and every bad value, is a
400 naming it. A list is given as repeated names (``group_by=a&group_by=b``), with brackets as the
OpenAI SDK sends it (``group_by[]=a``), or comma-separated (``group_by=a,b``)."""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import QueryParams

from leeway.errors import InvalidRequest, UnsupportedParameter

_TRUE, _FALSE = ("true", "1"), ("false", "0")


class Params:
    def __init__(self, query: QueryParams, known: Collection[str]) -> None:
        self._query = query
        for name in query:
            if name.removesuffix("[]") not in known:
                raise UnsupportedParameter(f"Unknown parameter: '{name}'.", param=name)

    def text(self, name: str) -> str | None:
        return self._query.get(name)

    def whole(self, name: str, default: int, *, lo: int, hi: int) -> int:
        found = self.maybe_whole(name, lo=lo, hi=hi)
        return default if found is None else found

    def maybe_whole(self, name: str, *, lo: int, hi: int) -> int | None:
        raw = self._query.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise InvalidRequest(
                f"{name} must be an integer from {lo} to {hi}, not {raw!r}.", param=name
            )
        return value

    def flag(self, name: str) -> bool | None:
        raw = self._query.get(name)
        if raw is None:
            return None
        if raw.lower() not in (*_TRUE, *_FALSE):
            raise InvalidRequest(f"{name} must be true or false, not {raw!r}.", param=name)
        return raw.lower() in _TRUE

    def choice(self, name: str, allowed: Collection[str], default: str) -> str:
        raw = self._query.get(name, default)
        if raw not in allowed:
            raise InvalidRequest(
                f"{name} must be one of {', '.join(map(repr, allowed))}, not {raw!r}.", param=name
            )
        return raw

    def names(
        self, name: str, allowed: Collection[str] | None = None, *, commas: bool = True
    ) -> list[str] | None:
        """The values given (None if the parameter is absent), each one of ``allowed`` if
        given. ``commas``: False for values that hold commas themselves (they are not split)."""
        raw = [*self._query.getlist(name), *self._query.getlist(f"{name}[]")]
        if not raw:
            return None
        pieces = [v for item in raw for v in (item.split(",") if commas else [item])]
        values = [v.strip() for v in pieces if v.strip()]
        if not values:
            raise InvalidRequest(f"{name} must name at least one value.", param=name)
        for value in values:
            if allowed is not None and value not in allowed:
                raise InvalidRequest(
                    f"{name} may hold {', '.join(map(repr, allowed))}, not {value!r}.", param=name
                )
        return values
