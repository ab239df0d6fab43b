"""Signing in to the dashboard with an API key, and the sessions that follow.

The key is posted once (a form field, never a URL) and checked like any request's key; the browser
then holds only a random session token in a cookie that is ``HttpOnly`` (no script reads it) and
``SameSite=Strict`` (no other site's page sends it). The store keeps the token's SHA-256 with the
key's id, so every process sharing the store knows the session, and each request rechecks the key:
a key revoked or expired, or its tenant archived, ends its sessions at once.

Forms are protected against cross-site requests twice: every POST carries the session's own random
token in a hidden field (``csrf``, compared in constant time), and a POST whose ``Origin`` header
names another site is refused before anything else (the sign-in form too, which has no session)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from leeway.api.auth import Caller, admit
from leeway.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from leeway.keys import Holder, key_hash
from leeway.store.operator_views import Session

COOKIE = "leeway_session"
PATH = "/dashboard"
LIFETIME = 12 * 3600.0  # seconds a sign-in lasts
MAX_FORM = 16 * 1024


class SessionStore(Protocol):
    async def key_holder(self, digest: str) -> Holder | None: ...

    async def add_session(self, session: Session, token_hash: str) -> None: ...

    async def session(self, token_hash: str, now: float) -> tuple[Session, Holder] | None: ...

    async def end_session(self, token_hash: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at the dashboard: the key's caller, and the token its forms must post back."""

    caller: Caller
    csrf: str
    token_hash: str

    @property
    def admin(self) -> bool:
        return self.caller.admin

    @property
    def tenant(self) -> str | None:
        """The only tenant this viewer may see; None: every tenant (an admin key)."""
        return None if self.caller.admin else self.caller.tenant


class Sessions:
    def __init__(self, store: SessionStore, clock: Callable[[], float] = time.time) -> None:
        self._store, self._clock = store, clock

    async def sign_in(self, key: str) -> str:
        """A new session's token for this key (``AuthenticationFailed`` if the key is not one that
        works now)."""
        key = key.strip()
        holder = await self._store.key_holder(key_hash(key)) if key else None
        if holder is None:
            raise AuthenticationFailed("That is not a Leeway API key.")
        now = self._clock()
        caller = admit(holder, now)
        token = secrets.token_urlsafe(32)
        session = Session(caller.key_id, secrets.token_urlsafe(32), now, now + LIFETIME)
        await self._store.add_session(session, token_digest(token))
        return token

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in viewer of this request; None if its session is missing, expired or its
        key no longer works."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        digest, now = token_digest(token), self._clock()
        found = await self._store.session(digest, now)
        if found is None:
            return None
        session, holder = found
        try:
            caller = admit(holder, now)
        except AuthenticationFailed:
            return None
        return Viewer(caller, session.csrf, digest)

    async def sign_out(self, viewer: Viewer) -> None:
        await self._store.end_session(viewer.token_hash)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME),
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


async def read_form(request: Request) -> dict[str, str]:
    """A POSTed form (``application/x-www-form-urlencoded``), first value of each field; refused if
    it comes from another site's page."""
    check_origin(request)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise InvalidRequest(f"The form is larger than {MAX_FORM} bytes.")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def check_origin(request: Request) -> None:
    """A browser names the page a POST comes from in ``Origin``: it must be this site."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site form (SameSite=Strict keeps the cookie home)
        return
    own = f"{request.url.scheme}://{request.url.netloc}"
    parts = urlsplit(origin)
    if f"{parts.scheme}://{parts.netloc}" != own:
        raise PermissionDenied("This form was posted from another site.", param="Origin")


def check_csrf(viewer: Viewer, form: Mapping[str, str]) -> None:
    """The form must carry the session's own token (not guessable from another site)."""
    sent = form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise PermissionDenied(
            "This form's token does not match your session; reload the page and try again.",
            param="csrf",
        )
