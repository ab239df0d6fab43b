"""Named SQL queries and numbered migrations, read from ``sql/<dialect>/``."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(dialect: str, file: str = "queries.sql") -> dict[str, str]:
    """``{name: sql}`` from the ``-- name: x`` sections of ``file`` (``queries.sql``)."""
    text = resources.files("leeway.store").joinpath("sql", dialect, file).read_text()
    parts = _NAME.split(text)[1:]
    return {name: sql.strip() for name, sql in zip(parts[::2], parts[1::2], strict=True)}


def migrations(dialect: str) -> list[tuple[int, str]]:
    """``[(number, sql)]`` of ``NNN_*.sql`` files, in order."""
    folder = resources.files("leeway.store").joinpath("sql", dialect)
    found = [
        (int(f.name[:3]), f.read_text())
        for f in folder.iterdir()
        if f.name[:3].isdigit() and f.name.endswith(".sql")
    ]
    return sorted(found)
