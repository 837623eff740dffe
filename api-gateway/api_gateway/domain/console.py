"""The web console's session: the user's own token in an HttpOnly cookie, and its CSRF token.

    csrf = csrf_token(secret)                        # what the page sends as X-CSRF-Token
    value = session_cookie(secret, max_age_s=3600, secure=True)   # a Set-Cookie value
    decide(method, path, headers, cookie_secret)     # use the cookie's token for a request?

The console is a client of the public APIs with the token of the user who logged in. The
token lives only in a cookie the page's scripts cannot read (``HttpOnly``, ``SameSite=Strict``,
``Secure`` under TLS), so a script injected into the page could act during the session but
never carry the token away. A cookie authorizes a request only when the request proves it
comes from the console itself:

- ``X-CSRF-Token`` equal to ``csrf_token(secret)``: an HMAC of the session's token, which
  only a page that read ``/console/session`` (same origin) knows; any method;
- ``GET /console/session`` with the ``X-Stackling-Console`` header (a header no form or
  link of another site can send, and the gateway answers no CORS preflight): how a
  reloaded page learns its CSRF token;
- ``GET /v1/events``, the read-only event stream, which ``EventSource`` opens without
  custom headers: the cookie's ``SameSite=Strict`` and the same-origin check cover it.

A request from another site (``Sec-Fetch-Site`` cross-site or same-site) never uses the
cookie, and a request that carries ``X-Auth-Token`` is left as its client sent it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

COOKIE_NAME = "stackling_session"
CSRF_HEADER = "X-CSRF-Token"
CONSOLE_HEADER = "X-Stackling-Console"
SESSION_PATH = "/console/session"
EVENTS_PATH = "/v1/events"
_CSRF_CONTEXT = b"stackling-console-csrf-v1"
# Fetch metadata a browser sends; "none" is a typed URL or bookmark (a navigation).
_OWN_SITE = (b"same-origin", b"none")


def csrf_token(secret: str) -> str:
    """The CSRF token of a session: derived from its token, so nothing is stored for it."""
    digest = hmac.new(secret.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_cookie(secret: str, *, max_age_s: int, secure: bool) -> str:
    """``Set-Cookie`` for the session; it expires with the token (``max_age_s``)."""
    parts = [
        f"{COOKIE_NAME}={secret}",
        "Path=/",
        f"Max-Age={max(0, max_age_s)}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def cleared_cookie(*, secure: bool) -> str:
    return session_cookie("", max_age_s=0, secure=secure)


def read_cookie(cookie_headers: Iterable[bytes], name: str = COOKIE_NAME) -> str | None:
    """The value of cookie ``name`` among ``Cookie`` header values, or None."""
    for header in cookie_headers:
        for pair in header.decode("latin-1").split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name and value:
                return value
    return None


def without_cookie(cookie_header: bytes, name: str = COOKIE_NAME) -> bytes:
    """A ``Cookie`` header value less cookie ``name`` (the services never see the token)."""
    pairs = [p.strip() for p in cookie_header.decode("latin-1").split(";")]
    kept = [p for p in pairs if p and p.partition("=")[0] != name]
    return "; ".join(kept).encode("latin-1")


class Use(Enum):
    """What to do with a request that carries the session cookie."""

    IGNORE = "ignore"  # leave the request as it is (it stays unauthenticated)
    TOKEN = "token"  # authorize it with the cookie's token
    REFUSE = "refuse"  # a CSRF token that does not match: 403


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    fetch_site: bytes | None  # Sec-Fetch-Site
    csrf: str | None  # X-CSRF-Token
    console: bool  # X-Stackling-Console present


def decide(request: Request, secret: str) -> Use:
    """Whether the session cookie (token ``secret``) may authorize ``request``."""
    if request.fetch_site is not None and request.fetch_site not in _OWN_SITE:
        return Use.IGNORE
    if request.csrf is not None:
        if hmac.compare_digest(request.csrf.encode(), csrf_token(secret).encode()):
            return Use.TOKEN
        return Use.REFUSE
    reading = request.method in ("GET", "HEAD")
    if reading and request.path == SESSION_PATH and request.console:
        return Use.TOKEN
    if reading and request.path == EVENTS_PATH:
        return Use.TOKEN
    return Use.IGNORE
