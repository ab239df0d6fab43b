"""Named SQL queries and numbered migrations, read from ``sql/<dialect>/``."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(dialect: str) -> dict[str, str]:
    """``{name: sql}`` from the ``-- name: x`` sections of the dialect's unnumbered ``*.sql``
    files (``queries.sql``, ``batches.sql``)."""
    folder = resources.files("leeway.store").joinpath("sql", dialect)
    found: dict[str, str] = {}
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if f.name.endswith(".sql") and not f.name[:3].isdigit():
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
