"""Rendering the dashboard's pages: Jinja2 templates shipped in the package (autoescaped), the
filters they format numbers and times with, and the headers every page carries (a strict Content
Security Policy: scripts, styles and everything else only from this server, no inline script)."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

from leeway.api.dashboard.sessions import Viewer

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC = {  # name -> media type: the only files /dashboard/static serves
    "chart.umd.min.js": "text/javascript",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "chart.js.LICENSE.md": "text/plain",
}


def when(at: float | None) -> str:
    if at is None:
        return "—"
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def usd(value: float) -> str:
    return f"${value:,.6f}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("leeway.api.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, seconds=seconds, percent=percent, usd=usd)
    return env


_ENV = _environment()


def page(template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    html = _ENV.get_template(template).render(viewer=viewer, **context)
    return HTMLResponse(html, status, headers=HEADERS)


def static(name: str) -> Response | None:
    if (media := STATIC.get(name)) is None:
        return None
    body = resources.files("leeway.api.dashboard").joinpath("static", name).read_bytes()
    headers = {**HEADERS, "Cache-Control": "public, max-age=3600"}
    return Response(body, media_type=media, headers=headers)
