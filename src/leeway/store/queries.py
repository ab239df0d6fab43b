"""Named SQL queries and numbered migrations, read from ``sql/<dialect>/``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(dialect: str) -> dict[str, str]:
    """``{name: sql}`` from the ``-- name: x`` sections of the dialect's unnumbered ``*.sql``
    files (``queries.sql``, ``batches.sql``, …; not ``schema.sql``)."""
    folder = resources.files("leeway.store").joinpath("sql", dialect)
    found: dict[str, str] = {}
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if f.name.endswith(".sql") and not f.name[:3].isdigit() and f.name != "schema.sql":
            parts = _NAME.split(f.read_text())[1:]
            found.update(
                (name, sql.strip()) for name, sql in zip(parts[::2], parts[1::2], strict=True)
            )
    return found


def migrations(dialect: str) -> list[tuple[int, str]]:
    """``[(number, sql)]`` of ``NNN_*.sql`` files, in order."""
    folder = resources.files("leeway.store").joinpath("sql", dialect)
    found = [
        (int(f.name[:3]), f.read_text())
        for f in folder.iterdir()
        if f.name[:3].isdigit() and f.name.endswith(".sql")
    ]
    return sorted(found)


_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@dataclass(frozen=True, slots=True)
class Numbered:
    """A named query in ``$n`` style (asyncpg's): ``:name`` became ``$n``, one per distinct name."""

    sql: str
    names: tuple[str, ...]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (every name the query uses must be there)."""
        return [params[name] for name in self.names]


def numbered(sql: str) -> Numbered:
    """``:name`` parameters to ``$1, $2, …`` (a name used twice is one parameter; ``::type``
    casts are left alone)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return Numbered(_PARAM.sub(number, sql), tuple(names))
