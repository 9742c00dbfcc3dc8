"""The dashboard server: Voilà 0.5 with a door in front of every route.

``xmailnb serve`` runs ``python -m xmailnb.dashboard.server NOTEBOOK ...``
with a ``voila.json`` made by :func:`xmailnb.dashboard.plan.plan`.  This is Voilà's
own application (:class:`voila.app.Voila`) with four changes, each made
through the hook Voilà or jupyter_server offers for it:

* **The door** (:class:`Door`, consulted by :class:`DoorApplication` before
  any route is looked up, so that every route — the page, ``/voila/*``,
  static files, the kernel API, websockets, unknown paths — is behind it):

  - on a loopback bind, the ``Host`` header must name loopback (a web page
    that rebinds its DNS name to 127.0.0.1 gets 403);
  - ``Sec-Fetch-Site: cross-site`` or ``same-site``, and an ``Origin`` other
    than the server's own, get 403 before anything else happens (no kernel
    is started): another site, or another port on 127.0.0.1, cannot drive
    the dashboard through the admin's browser;
  - everything else needs ``Authorization: token T``, or the login cookie
    *and* the browser key; without the cookie, a 401 page that says a token
    is needed and offers a form;
  - ``?token=T`` (the printed address) or ``?login=CODE`` (the one-time
    address the browser is opened with) log a browser in: a new login gets
    a session cookie (HTTP-only, SameSite=Strict, no Max-Age: gone with the
    browser session; signed with a secret made at start: useless after a
    restart) and a browser key, and the browser is sent to the same page
    without the secret, with a one-time page ticket in the query and the
    browser key in the fragment (``#xmailnb-key=``), which no browser
    sends anywhere.  The page's script (``door.js``) keeps the key in the
    origin's ``localStorage`` and sends it with the page's own requests (a
    header on ``fetch``, a parameter on the kernel's websocket).  Cookies
    do not tell ports apart: a page served on another port of 127.0.0.1
    receives this cookie, but never the key (storage is per origin, port
    included), so a stolen cookie opens no page, no kernel and no
    websocket; it gets only the page's static files and a page that asks
    for the token.  A reload (no ticket, no key header) gets a tiny page
    whose script trades the stored key for a fresh ticket.  (Tokens have
    at least 16 characters, 256 random bits when generated: guessing them
    over HTTP is hopeless, and a lock-out after wrong guesses would only
    let any local user lock the admin out.)

  The same check is the :class:`DoorIdentityProvider` (jupyter_server's
  identity hook) that Voilà's handlers ask, so they agree with the door.
* **Bounded kernels** (:class:`PageKernelManager`, Voilà's
  ``multi_kernel_manager_class``): a kernel no page has been connected to for
  ``page_timeout`` seconds is stopped (a page that never connected, e.g. a
  bare GET, included); a kernel whose page was connected and went away is
  stopped after ``page_grace`` seconds (time for a reconnection); a kernel
  that died and was restarted is stopped (its page has lost its widgets);
  :class:`PageHandler` refuses a page beyond ``max_pages`` with a "too many
  open pages" page instead of starting one more kernel, except for a
  browser that already holds a page (a reload: its old page is on its way
  out).  The preheated kernel is never culled.
* **The page's language**: Voilà passes ``Accept-Language`` to the kernel;
  the kernel reads it through a query socket reached with a per-run key
  (:class:`QuerySocketHandler`, see :mod:`xmailnb.dashboard.page`).
* **Logs**: the request log shows paths without query strings, refusals at
  debug level only; the one secret filter (:class:`xmailnb.logs.SecretFilter`)
  removes ``token=``/``login=`` values from every log record, tracebacks included.

The server is given only SHA-256 digests of its secrets, never a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import http.cookies
import json
import logging
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import tornado.web
from jupyter_core.utils import run_sync
from jupyter_server import DEFAULT_STATIC_FILES_PATH
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.httputil import HTTPServerRequest, split_host_and_port
from traitlets import Float, Integer, Unicode, default
from voila.app import Voila
from voila.request_info_handler import RequestInfoSocketHandler
from voila.tornado.handler import TornadoVoilaHandler

from ..i18n import LANGUAGES, detect_language, text
from ..logs import SecretFilter, follow_environment, log_unexpected
from .page import LANG_CLASS_PREFIX, accept_language
from .plan import is_loopback

__all__ = ["Door", "DoorApplication", "DoorIdentityProvider", "PageKernelManager", "XmailnbVoila", "main"]

log = logging.getLogger(__name__)

#: Server-side bound on a login cookie's age (the cookie itself has no
#: Max-Age: the browser drops it at the end of its session).
COOKIE_MAX_AGE_DAYS = 1
LOGIN_PATH = "/xmailnb/login"
TICKET_PATH = "/xmailnb/ticket"
#: The browser key travels in this header (``fetch``) or query parameter (websockets).
KEY_HEADER = "X-Xmailnb-Key"
KEY_PARAM = "xmailnb-key"
#: The one-time page ticket's query parameter.
TICKET_PARAM = "xmailnb-page"
TICKET_TTL = 60.0
#: At most this many logins are remembered (the oldest go first).
MAX_LOGINS = 64
#: Routes a logged-in browser loads without the key: code and styles for
#: ``<script src>`` and ``<link href>``, which cannot carry a header.  They
#: hold no data and change nothing.
_OPEN_PREFIXES = ("/voila/static/", "/voila/templates/", "/voila/labextensions/", "/voila/api/themes/",
                  "/static/", "/xmailnb/door.js")
#: Routes that are data, not pages: without the key, a plain refusal.
_API_PREFIXES = ("/api/", "/voila/api/", "/voila/query/", "/voila/execution/", "/xmailnb/")
_SECRET_PARAMS = ("token", "login")
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_KERNEL_ID = r"\w+-\w+-\w+-\w+-\w+"
_QUERY_ROUTE = re.compile(rf"/xmailnb/query/(?P<key>[A-Za-z0-9_-]{{16,128}})/(?P<kernel_id>{_KERNEL_ID})")
_SAFE_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~/-]*")


def _sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class Verdict:
    """What the door answers instead of letting a request through."""

    def __init__(self, status: int, kind: str, *, location: str = "", note: str = "", login: str = "") -> None:
        self.status, self.kind, self.location, self.note = status, kind, location, note
        #: The login id the "enter" answer puts into the cookie.
        self.login = login


class Door:
    """Who may come in.  Plain checks on a request; no I/O.

    Args:
        token_sha256: hex SHA-256 of the access token.
        login_code_sha256: hex SHA-256 of the one-time login code ("" for none).
        login_code_ttl: seconds the login code stays usable.
        query_key_sha256: hex SHA-256 of the kernels' query key.
        port: the server's port (the cookie's name carries it: cookies do not
            tell ports apart, and two dashboards may run side by side).
        loopback: bound to a loopback address (then the Host header must
            name loopback).
        page_lang: language forced with ``serve --lang``, or "".
    """

    def __init__(self, *, token_sha256: str, login_code_sha256: str, login_code_ttl: float,
                 query_key_sha256: str, port: int, loopback: bool, page_lang: str = "") -> None:
        self._token = bytes.fromhex(token_sha256)
        self._login_code: bytes | None = bytes.fromhex(login_code_sha256) if login_code_sha256 else None
        self._login_deadline = time.monotonic() + login_code_ttl
        self._query_key = bytes.fromhex(query_key_sha256) if query_key_sha256 else None
        self.cookie_name = f"xmailnb-{port}"
        #: The browser key's name in the page's localStorage.
        self.key_name = f"xmailnb-key-{port}"
        # Made at start: a cookie from an earlier run of the server is no login.
        self._cookie_secret = secrets.token_hex(32)
        # login id -> SHA-256 of its browser key, oldest first
        self._logins: dict[str, bytes] = {}
        # SHA-256 of a page ticket -> (login id, deadline)
        self._tickets: dict[bytes, tuple[str, float]] = {}
        self.loopback = loopback
        self.page_lang = page_lang if page_lang in LANGUAGES else ""

    # -- secrets -------------------------------------------------------------------------
    def token_ok(self, candidate: str) -> bool:
        """True for the access token (digests compared in constant time)."""
        return hmac.compare_digest(_sha256(candidate), self._token)

    def login_code_ok(self, candidate: str) -> bool:
        """True, once, for the one-time login code while it is fresh."""
        if self._login_code is None or time.monotonic() > self._login_deadline:
            return False
        if hmac.compare_digest(_sha256(candidate), self._login_code):
            self._login_code = None
            return True
        return False

    def query_key_ok(self, candidate: str) -> bool:
        return self._query_key is not None and hmac.compare_digest(_sha256(candidate), self._query_key)

    # -- logins: a cookie and a browser key ---------------------------------------------
    def new_login(self) -> tuple[str, str]:
        """A new browser login: ``(login id, browser key)``."""
        login, key = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        self._logins[login] = _sha256(key)
        while len(self._logins) > MAX_LOGINS:
            del self._logins[next(iter(self._logins))]
        return login, key

    def new_ticket(self, login: str) -> str:
        """A one-time page ticket for *login*, usable for :data:`TICKET_TTL` seconds."""
        now = time.monotonic()
        for digest in [d for d, (_l, deadline) in self._tickets.items() if deadline < now]:
            del self._tickets[digest]
        ticket = secrets.token_urlsafe(24)
        self._tickets[_sha256(ticket)] = (login, now + TICKET_TTL)
        return ticket

    def cookie_value(self, login: str) -> str:
        return tornado.web.create_signed_value(self._cookie_secret, self.cookie_name, login).decode("ascii")

    def cookie_login(self, request: HTTPServerRequest) -> str | None:
        """The login id of the request's cookie, when it is one of this run's logins."""
        try:
            morsel = request.cookies.get(self.cookie_name)
        except (http.cookies.CookieError, ValueError):  # a malformed Cookie header is no cookie
            return None
        if morsel is None:
            return None
        value = tornado.web.decode_signed_value(self._cookie_secret, self.cookie_name, morsel.value,
                                                max_age_days=COOKIE_MAX_AGE_DAYS)
        login = value.decode("ascii", "replace") if value else None
        return login if login in self._logins else None

    def cookie_ok(self, request: HTTPServerRequest) -> bool:
        return self.cookie_login(request) is not None

    def key_ok(self, request: HTTPServerRequest, login: str) -> bool:
        """The request carries *login*'s browser key (header or query parameter)."""
        expected = self._logins.get(login)
        if expected is None:
            return False
        given = [request.headers.get(KEY_HEADER, "")]
        given += [v for k, v in parse_qsl(request.query, keep_blank_values=True) if k == KEY_PARAM]
        return any(g and hmac.compare_digest(_sha256(g), expected) for g in given)

    def ticket_ok(self, request: HTTPServerRequest, login: str) -> bool:
        """The request carries a fresh page ticket of *login* (used up here)."""
        for name, value in parse_qsl(request.query, keep_blank_values=True):
            if name != TICKET_PARAM:
                continue
            found = self._tickets.get(_sha256(value))
            if found is not None and found[0] == login and found[1] >= time.monotonic():
                del self._tickets[_sha256(value)]
                return True
        return False

    def header_token_ok(self, request: HTTPServerRequest) -> bool:
        match = IdentityProvider.auth_header_pat.match(request.headers.get("Authorization", ""))
        return match is not None and self.token_ok(match.group(2).strip())

    def authenticated(self, request: HTTPServerRequest) -> bool:
        return self.cookie_ok(request) or self.header_token_ok(request)

    # -- where the request comes from ----------------------------------------------------
    def host_ok(self, request: HTTPServerRequest) -> bool:
        if not self.loopback:
            return True
        host, _port = split_host_and_port(request.host.lower())
        return host.strip("[]") in _LOOPBACK_NAMES

    def same_origin(self, request: HTTPServerRequest) -> bool:
        """No ``Origin`` (not a browser's cross-origin request), or our own."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        return origin.strip().lower() == f"{request.protocol}://{request.host}".lower()

    @staticmethod
    def cross_site(request: HTTPServerRequest) -> bool:
        # Fetch Metadata: "same-site" is another port or subdomain of the
        # same site, e.g. another web app on 127.0.0.1: not ours either.
        return request.headers.get("Sec-Fetch-Site", "").strip().lower() in ("cross-site", "same-site")

    # -- the decision --------------------------------------------------------------------
    def verdict(self, request: HTTPServerRequest) -> Verdict | None:
        """``None`` to let the request through, else what to answer."""
        if not self.host_ok(request):
            return Verdict(403, "host")
        if self.cross_site(request) or not self.same_origin(request):
            return Verdict(403, "cross_site")
        path = request.path
        query_route = _QUERY_ROUTE.fullmatch(path)
        if query_route is not None:
            return None if self.query_key_ok(query_route.group("key")) else Verdict(403, "refused")
        args = parse_qsl(request.query, keep_blank_values=True)
        if any(name in _SECRET_PARAMS for name, _ in args):
            if request.method not in ("GET", "HEAD"):
                return Verdict(403, "refused")
            ok = (any(self.token_ok(v) for k, v in args if k == "token")
                  or any(self.login_code_ok(v) for k, v in args if k == "login"))
            if not ok:
                return Verdict(401, "login", note="wrong")
            rest = [(k, v) for k, v in args if k not in (*_SECRET_PARAMS, TICKET_PARAM, KEY_PARAM)]
            target = path if _SAFE_PATH.fullmatch(path) else "/"
            return self.enter(target, rest)
        if path == LOGIN_PATH and request.method == "POST":
            return None  # the form's handler checks the token
        if self.header_token_ok(request):
            return None
        login = self.cookie_login(request)
        if login is None:
            return Verdict(401, "login")
        if path.startswith(_OPEN_PREFIXES):
            return None
        if self.key_ok(request, login) or (request.method in ("GET", "HEAD") and self.ticket_ok(request, login)):
            request.xmailnb_login = login  # type: ignore[attr-defined]
            return None
        if (request.method == "GET" and request.headers.get("Upgrade", "").lower() != "websocket"
                and not path.startswith(_API_PREFIXES)):
            # A reload, or a cookie without its key: the page's script
            # trades the stored key for a ticket, or asks for the token.
            return Verdict(200, "bootstrap")
        return Verdict(403, "refused")

    def enter(self, target: str, rest: list[tuple[str, str]]) -> Verdict:
        """Log a browser in and send it to *target* (see the module text)."""
        login, key = self.new_login()
        query = urlencode([*rest, (TICKET_PARAM, self.new_ticket(login))])
        return Verdict(303, "enter", location=f"{target}?{query}#{KEY_PARAM}={key}", login=login)

    def language(self, request: HTTPServerRequest) -> str:
        return self.page_lang or accept_language(request.headers.get("Accept-Language", "")) or detect_language()

    # -- answers -------------------------------------------------------------------------
    def let_in(self, handler: tornado.web.RequestHandler, verdict: Verdict) -> None:
        """Set the login cookie (a session cookie: no Max-Age, no Expires)
        and send the browser to the verdict's address."""
        handler.set_cookie(self.cookie_name, self.cookie_value(verdict.login), path="/", httponly=True,
                           samesite="Strict", secure=handler.request.protocol == "https")
        # Also tornado's XSRF cookie (double submit), which Voilà's page sends
        # back when it closes so that its kernel is stopped at once.
        handler.xsrf_token  # noqa: B018  (the property sets the cookie)
        handler.set_header("Referrer-Policy", "no-referrer")
        handler.set_header("Cache-Control", "no-store")
        handler.redirect(verdict.location, status=303)

    def answer(self, handler: tornado.web.RequestHandler, verdict: Verdict) -> None:
        if verdict.kind == "enter":
            self.let_in(handler, verdict)
            return
        lang = self.language(handler.request)
        handler.set_status(verdict.status)
        nonce = secrets.token_urlsafe(16) if verdict.kind == "bootstrap" else ""
        _page_headers(handler, nonce=nonce)
        handler.finish(door_page(verdict.kind, lang, note=verdict.note, host=handler.request.host, nonce=nonce,
                                 key_name=self.key_name))


def _page_headers(handler: tornado.web.RequestHandler, *, nonce: str = "") -> None:
    handler.set_header("Content-Type", "text/html; charset=utf-8")
    handler.set_header("Cache-Control", "no-store")
    # same-origin, not no-referrer: with no-referrer Chromium sends
    # "Origin: null" with the login form, which the door refuses.
    handler.set_header("Referrer-Policy", "same-origin")
    handler.set_header("X-Frame-Options", "DENY")
    script = f"; script-src 'nonce-{nonce}'; connect-src 'self'" if nonce else ""
    handler.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                       f"frame-ancestors 'none'{script}")


_PAGE_STYLE = (
    "body{font-family:'Noto Sans CJK JP','Noto Sans JP',system-ui,sans-serif;margin:0;background:#f4f5f7;"
    "color:#1f2933}main{max-width:36rem;margin:12vh auto;background:#fff;padding:2rem 2.25rem;"
    "border-radius:8px;box-shadow:0 2px 10px rgba(0,0,0,.08)}h1{font-size:1.35rem;margin:0 0 1rem}"
    "p{line-height:1.7}.note{color:#b42318;font-weight:600}form{margin-top:1.25rem;display:flex;gap:.5rem}"
    "input{flex:1;padding:.5rem;font:inherit;border:1px solid #9aa5b1;border-radius:4px}"
    "button,a.button{padding:.5rem 1rem;font:inherit;border:0;border-radius:4px;background:#1f6feb;color:#fff;"
    "text-decoration:none;cursor:pointer}"
)


# Keeps the browser key the login put into the fragment (a page refused
# for "too many pages" is the first this browser sees of the server).
_KEEP_KEY_SCRIPT = """(function () {
  var found = /(?:^#|&)xmailnb-key=([A-Za-z0-9_-]+)/.exec(window.location.hash);
  if (found) { try { window.localStorage.setItem(__NAME__, found[1]); } catch (e) { /* none to keep */ } }
})();"""

_BOOTSTRAP_SCRIPT = """(function () {
  var main = document.querySelector("main"), key = null;
  function ask() { main.hidden = false; }
  try { key = window.localStorage.getItem(__NAME__); } catch (e) { key = null; }
  if (!key) { ask(); return; }
  fetch(__TICKET__, {method: "POST", headers: {"X-Xmailnb-Key": key}, credentials: "same-origin", cache: "no-store"})
    .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
    .then(function (ticket) {
      var url = new URL(window.location.href);
      url.searchParams.set(__PARAM__, ticket);
      window.location.replace(url.pathname + url.search);
    })
    .catch(ask);
})();"""


def door_page(kind: str, lang: str, *, note: str = "", host: str = "", max_pages: int = 0, nonce: str = "",
              key_name: str = "") -> str:
    """The door's own pages (token needed, refused, too many pages, the
    reload's stepping stone), in *lang*."""
    def t(key: str, **params: Any) -> str:
        return text(key, lang, **params)

    esc = html.escape
    body: list[str] = []
    hidden = ""
    if kind == "bootstrap":
        # The login form, shown only when this browser has no key to trade
        # for a ticket (a cookie that came without its key, say).
        script = (_BOOTSTRAP_SCRIPT.replace("__NAME__", json.dumps(key_name))
                  .replace("__TICKET__", json.dumps(TICKET_PATH)).replace("__PARAM__", json.dumps(TICKET_PARAM)))
        keep = _KEEP_KEY_SCRIPT.replace("__NAME__", json.dumps(key_name))
        body.append(f'<script nonce="{esc(nonce)}">{keep}\n{script}</script>')
        kind, hidden = "login", " hidden"
    if kind == "login":
        title = t("serve.page.login.title")
        body.append(f"<p>{esc(t('serve.page.login.text'))}</p>")
        if note:
            body.append(f'<p class="note">{esc(t(f"serve.page.login.{note}"))}</p>')
        body.append(f'<form method="post" action="{LOGIN_PATH}"><input type="password" name="token" '
                    f'autocomplete="current-password" aria-label="{esc(t("serve.page.login.field"))}" '
                    f'placeholder="{esc(t("serve.page.login.field"))}" required>'
                    f'<button type="submit">{esc(t("serve.page.login.button"))}</button></form>')
    elif kind == "too_many":
        title = t("serve.page.too_many.title")
        body.append(f"<p>{esc(t('serve.page.too_many.text', max=max_pages))}</p>")
        body.append(f'<p><a class="button" href="/">{esc(t("serve.page.reload"))}</a></p>')
        if nonce:
            keep = _KEEP_KEY_SCRIPT.replace("__NAME__", json.dumps(key_name))
            body.append(f'<script nonce="{esc(nonce)}">{keep}</script>')
    elif kind == "cross_site":
        title = t("serve.page.cross_site.title")
        body.append(f"<p>{esc(t('serve.page.cross_site.text'))}</p>")
    elif kind == "host":
        title = t("serve.page.host.title")
        body.append(f"<p>{esc(t('serve.page.host.text', host=host[:100]))}</p>")
    else:
        title = t("serve.page.refused.title")
        body.append(f"<p>{esc(t('serve.page.refused.text'))}</p>")
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_PAGE_STYLE}</style></head>"
            f'<body><main class="xm-door xm-door-{kind}"{hidden}><h1>{esc(title)}</h1>{"".join(body)}</main>'
            '</body></html>')


class DoorHandler(tornado.web.RequestHandler):
    """Answers a request the door did not let through (any method, any path)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, door: Door, verdict: Verdict) -> None:
        self.door, self.verdict = door, verdict

    def prepare(self) -> None:
        self.door.answer(self, self.verdict)

    def check_xsrf_cookie(self) -> None:  # nothing is changed here
        pass


class DoorApplication(tornado.web.Application):
    """Voilà's tornado application with the door consulted before routing."""

    door: Door

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        verdict = self.door.verdict(request)
        if verdict is not None:
            return self.get_handler_delegate(request, DoorHandler, {"door": self.door, "verdict": verdict})
        return super().find_handler(request, **kwargs)


class DoorIdentityProvider(IdentityProvider):
    """jupyter_server's identity hook, answering as the door does: the user
    is the admin when the request carries the login cookie or the token in
    an ``Authorization`` header; nobody otherwise."""

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False  # the door has its own login page

    @property
    def logout_available(self) -> bool:
        return False

    def get_handlers(self) -> list[tuple[str, object]]:
        return []

    def get_user(self, handler: tornado.web.RequestHandler) -> User | None:
        door: Door | None = getattr(handler.application, "door", None)
        if door is None:
            return None
        if door.cookie_ok(handler.request):
            return User(username="admin", name="admin", display_name="admin")
        if door.header_token_ok(handler.request):
            # As in jupyter_server: a token in a header cannot come from a
            # forged cross-site request, so no XSRF token is asked for.
            handler._token_authenticated = True  # type: ignore[attr-defined]
            return User(username="admin", name="admin", display_name="admin")
        return None

    def should_check_origin(self, handler: tornado.web.RequestHandler) -> bool:
        return True


class LoginHandler(tornado.web.RequestHandler):
    """The login form's target: a right token sets the cookie (the door has
    already refused cross-site posts)."""

    def initialize(self, door: Door) -> None:
        self.door = door

    def check_xsrf_cookie(self) -> None:  # the door checked Origin and Sec-Fetch-Site
        pass

    def post(self) -> None:
        if self.door.token_ok(self.get_body_argument("token", "").strip()):
            self.door.let_in(self, self.door.enter("/", []))
            return
        self.door.answer(self, Verdict(401, "login", note="wrong"))


class TicketHandler(tornado.web.RequestHandler):
    """``POST /xmailnb/ticket``: a one-time page ticket for the browser whose
    key came with the request (the door let it through only then)."""

    def initialize(self, door: Door) -> None:
        self.door = door

    def check_xsrf_cookie(self) -> None:  # the key header is the proof; the door checked Origin
        pass

    def post(self) -> None:
        login = getattr(self.request, "xmailnb_login", None)
        if login is None:  # the token header: no browser to give a ticket to
            raise tornado.web.HTTPError(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(self.door.new_ticket(login))


class QuerySocketHandler(RequestInfoSocketHandler):  # type: ignore[misc]  # voila ships no type hints
    """Voilà's request-info socket for the preheated kernel, at a route the
    door lets through only with the per-run key (the kernel has no cookie)."""

    def open(self, key: str, kernel_id: str) -> None:
        super().open(kernel_id)


class StatusHandler(tornado.web.RequestHandler):
    """``/xmailnb/status`` (behind the door): the server answers, and how many
    kernels it holds; ``xmailnb serve`` and the tests wait on it."""

    def initialize(self, app: "XmailnbVoila") -> None:
        self.voila = app

    def get(self) -> None:
        km = self.voila.kernel_manager
        notebook = getattr(km, "notebook_path", None)
        preheated = bool(notebook) and km.get_pool_size(notebook) > 0 and km.has_unclaimed_kernel()
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"kernels": km.kernel_count(), "preheated": preheated,
                                "pages_loading": self.voila.pages_loading, "max_pages": self.voila.max_pages}))


class DoorScriptHandler(tornado.web.RequestHandler):
    """``/xmailnb/door.js``: the page's "connection lost" banner, with its
    words from the catalogs."""

    def get(self) -> None:
        words = {lang: {"message": text("serve.banner.disconnected", lang),
                        "reload": text("serve.banner.reload", lang)} for lang in LANGUAGES}
        door: Door | None = getattr(self.application, "door", None)
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        script = (_here() / "door.js").read_text(encoding="utf-8")
        self.finish(script.replace("__WORDS__", json.dumps(words, ensure_ascii=False))
                    .replace("__PREFIX__", json.dumps(LANG_CLASS_PREFIX))
                    .replace("__KEY_NAME__", json.dumps(door.key_name if door is not None else ""))
                    .replace("__KEY_HEADER__", json.dumps(KEY_HEADER))
                    .replace("__KEY_PARAM__", json.dumps(KEY_PARAM))
                    .replace("__TICKET_PARAM__", json.dumps(TICKET_PARAM)))


def _here() -> Path:
    return Path(__file__).resolve().parent


_KERNEL_IN_PAGE = re.compile(rf'"kernelId": "({_KERNEL_ID})"')


class PageHandler(TornadoVoilaHandler):  # type: ignore[misc]  # voila ships no type hints
    """Voilà's page handler, refusing a page beyond ``max_pages`` before a
    kernel is started or taken for it (a browser that holds a page already
    may open one more: a reload), and telling the kernel manager which
    browser the page's kernel belongs to."""

    _holds_slot = False
    _kernel_seen = False
    _kernel_id: str | None = None

    @property
    def _login(self) -> str | None:
        return getattr(self.request, "xmailnb_login", None)

    def write(self, chunk: Any) -> None:
        if not self._kernel_seen and isinstance(chunk, str):
            found = _KERNEL_IN_PAGE.search(chunk)
            if found is not None:
                self._kernel_seen = True
                self._kernel_id = found.group(1)
                km = self.settings["xmailnb_app"].kernel_manager
                if isinstance(km, PageKernelManager) and self._login is not None:
                    km.set_owner(found.group(1), self._login)
        super().write(chunk)

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        app: XmailnbVoila = self.settings["xmailnb_app"]
        if self.request.method == "GET" and not (self.path_args and self.path_args[0]):
            if not app.take_page_slot(self._login):
                door: Door = self.application.door
                lang = door.language(self.request)
                self.set_status(503)
                nonce = secrets.token_urlsafe(16)
                _page_headers(self, nonce=nonce)
                self.set_header("Retry-After", "10")
                self.finish(door_page("too_many", lang, max_pages=app.max_pages, nonce=nonce,
                                      key_name=door.key_name))
                return
            self._holds_slot = True
        await super().prepare(*args, **kwargs)

    def _release(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self.settings["xmailnb_app"].release_page_slot()

    def on_finish(self) -> None:
        self._release()
        super().on_finish()

    def on_connection_close(self) -> None:
        # The browser left while the page was being sent (closed at once,
        # or reloaded): its kernel goes like a closed page's.
        self._release()
        km = self.settings["xmailnb_app"].kernel_manager
        if self._kernel_id is not None and isinstance(km, PageKernelManager):
            km.release_later(self._kernel_id)
        super().on_connection_close()


class PageKernelManager(AsyncMappingKernelManager):
    """Kernels that live as long as their page.

    jupyter_server's culler stops kernels idle for a while *unless* a client
    is connected.  Here a kernel is stopped once no page has been connected
    to it for ``page_timeout`` seconds and it has been quiet as long (a page
    being rendered keeps its kernel busy; a page closed, or never opened by a
    browser, frees it), and in any case after ``page_limit`` seconds without
    a page.  A page left open keeps its kernel however quiet it is.  The
    preheated kernel waiting in Voilà's pool is left alone.
    """

    page_timeout = Float(60.0, config=True,
                         help="Seconds a kernel lives on once no page is connected to it and it is quiet.")
    page_limit = Float(600.0, config=True,
                       help="Seconds a kernel lives on without a page, however busy it is.")
    page_grace = Float(5.0, config=True,
                       help="Seconds a kernel whose page was connected and went away waits for it to come back.")

    @default("transport_encryption")
    def _transport_encryption_default(self) -> str:
        # CurveZMQ between the server and its kernels when the kernel supports
        # it: other local users cannot connect to (and read) a kernel's ports.
        return "auto"

    @default("cull_idle_timeout")
    def _cull_idle_timeout_default(self) -> int:
        return max(1, int(self.page_timeout))  # > 0 starts jupyter_server's periodic culler

    @default("cull_interval")
    def _cull_interval_default(self) -> int:
        return max(1, min(10, int(self.page_timeout // 4)))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        self._alone_since: dict[str, float] = {}
        self._activity_seen: dict[str, tuple[Any, float]] = {}
        self._starting = 0
        #: kernel -> the browser login whose page it serves
        self._owner: dict[str, str] = {}
        #: kernels a page's websocket has connected to
        self._connected_once: set[str] = set()
        #: kernels the culler's current round handed to this class (Voilà's
        #: pool skips the ones it holds before they reach it)
        self._judged: set[str] = set()

        #: kernel -> websockets connected now, counted by notify_connect and
        #: notify_disconnect (jupyter_server's public hooks, not its private dict)
        self._pages: dict[str, int] = {}

    def _connections(self, kernel_id: str) -> int:
        """Pages (websockets) connected to *kernel_id* now."""
        return self._pages.get(kernel_id, 0) if kernel_id in self else 0

    def set_owner(self, kernel_id: str, login: str) -> None:
        """*kernel_id* serves a page of the browser *login*."""
        if kernel_id in self:
            self._owner[kernel_id] = login

    def owns_page(self, login: str | None) -> bool:
        """The browser *login* holds the kernel of a page it has really
        opened (its websocket connected at least once; a bare GET does not
        count)."""
        return login is not None and any(o == login and k in self and k in self._connected_once
                                         for k, o in self._owner.items())

    def has_unclaimed_kernel(self) -> bool:
        """A kernel has started that no page has taken yet (with Voilà's
        preheat, the one waiting in its pool)."""
        return any(k not in self._owner and k not in self._connected_once for k in self.list_kernel_ids())

    def kernel_count(self) -> int:
        """Kernels running or being started."""
        return len(self) + self._starting

    async def start_kernel(self, **kwargs: Any) -> str:  # type: ignore[override]
        self._starting += 1
        try:
            kernel_id: str = await super().start_kernel(**kwargs)
        finally:
            self._starting -= 1
        self._alone_since[kernel_id] = time.monotonic()
        self.add_restart_callback(kernel_id, partial(self._on_restart, kernel_id), "restart")
        return kernel_id

    def _on_restart(self, kernel_id: str) -> None:
        asyncio.ensure_future(self._drop_restarted(kernel_id))

    async def _drop_restarted(self, kernel_id: str) -> None:
        # A restarted kernel has lost the page's widgets: the page cannot use
        # it; stopping it closes the page's websocket and the page says so.
        self.log.warning("A dashboard kernel died; it is stopped and its page asked to reload.")
        try:
            await self.shutdown_kernel(kernel_id, now=True)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        except Exception as exc:  # a bug boundary: the page is asked to reload anyway
            log_unexpected(log, "stopping a restarted kernel", exc)
        refill = getattr(self, "fill_if_needed", None)
        notebook = getattr(self, "notebook_path", None)
        if refill is not None and notebook:
            refill(delay=0, notebook_name=notebook)

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        self._pages[kernel_id] = self._pages.get(kernel_id, 0) + 1
        self._alone_since.pop(kernel_id, None)
        self._connected_once.add(kernel_id)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        left = self._pages.get(kernel_id, 0) - 1
        if left > 0:
            self._pages[kernel_id] = left
        else:
            self._pages.pop(kernel_id, None)
        if kernel_id in self and self._connections(kernel_id) <= 0:
            self._alone_since[kernel_id] = time.monotonic()
            # Its page went away (closed, reloaded): the kernel is given back
            # once a reconnection had its chance.
            self.release_later(kernel_id)

    def release_later(self, kernel_id: str) -> None:
        """Stop *kernel_id* in ``page_grace`` seconds unless a page is connected to it by then."""
        asyncio.get_event_loop().call_later(self.page_grace, self._release_if_alone, kernel_id)

    def _release_if_alone(self, kernel_id: str) -> None:
        if kernel_id in self and self._connections(kernel_id) <= 0:
            asyncio.ensure_future(self._release(kernel_id))

    async def _release(self, kernel_id: str) -> None:
        self.log.info("Stopping kernel %s: its page went away.", kernel_id)
        try:
            await self.shutdown_kernel(kernel_id, now=True)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        except KeyError:  # stopped meanwhile (the page's own shutdown request)
            pass
        except Exception as exc:  # a bug boundary: the culler gets it later
            log_unexpected(log, "stopping the kernel of a closed page", exc)
        self._owner.pop(kernel_id, None)

    async def cull_kernels(self) -> None:
        running = set(self.list_kernel_ids())
        # what is kept per kernel goes with the kernel
        tables: tuple[dict[str, Any], ...] = (self._alone_since, self._activity_seen, self._owner, self._pages)
        for table in tables:
            for kernel_id in table.keys() - running:
                del table[kernel_id]
        self._connected_once &= running
        self._judged = set()
        await super().cull_kernels()  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        # A kernel that did not reach cull_kernel_if_idle this round waits in
        # Voilà's preheat pool (its subclass returns early for those): a
        # page's clock starts when the kernel leaves the pool.
        now = time.monotonic()
        for kernel_id in running - self._judged:
            if kernel_id in self._alone_since:
                self._alone_since[kernel_id] = now

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        self._judged.add(kernel_id)
        if kernel_id not in self:
            return
        kernel = self.get_kernel(kernel_id)
        if getattr(kernel, "execution_state", None) == "dead":
            await self.shutdown_kernel(kernel_id)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
            return
        if self._connections(kernel_id) > 0:
            return
        now = time.monotonic()
        alone = now - self._alone_since.setdefault(kernel_id, now)
        # When jupyter_server's last_activity stamp last changed, on our
        # monotonic clock (seen at each round of the culler).
        stamp = getattr(kernel, "last_activity", None)
        seen = self._activity_seen.get(kernel_id)
        if seen is None or seen[0] != stamp:
            seen = self._activity_seen[kernel_id] = (stamp, now)
        quiet = now - seen[1]
        if (alone >= self.page_timeout and quiet >= self.page_timeout) or alone >= self.page_limit:
            self.log.info("Stopping kernel %s: no page connected for %d s.", kernel_id, alone)
            await self.shutdown_kernel(kernel_id)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated


def log_request(handler: tornado.web.RequestHandler) -> None:
    """tornado's request log without query strings (they may carry a token);
    refusals and other client errors at debug level (a page flooding the
    server with requests must not flood the admin's terminal)."""
    status = handler.get_status()
    request = handler.request
    access = logging.getLogger("tornado.access")
    line = "%d %s %s %.0fms"
    args = (status, request.method, request.path, 1000.0 * request.request_time())
    if status >= 500:
        access.error(line, *args)
    else:
        access.debug(line, *args)


def _install_log_filter(app_log: logging.Logger) -> None:
    redactor = SecretFilter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(redactor)
    for name in ("tornado", "asyncio", "concurrent"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
    for existing in [*root.handlers, *app_log.handlers]:
        existing.addFilter(redactor)
    follow_environment(handler=False)  # serve --verbose: the xmailnb records, through the root's handler


class XmailnbVoila(Voila):  # type: ignore[misc]  # voila ships no type hints
    """Voilà with the door, bounded kernels and the page's language (see the module text)."""

    token_sha256 = Unicode("", config=True, help="SHA-256 (hex) of the access token.")
    login_code_sha256 = Unicode("", config=True, help="SHA-256 (hex) of the one-time login code.")
    login_code_ttl = Float(600.0, config=True, help="Seconds the one-time login code stays usable.")
    query_key_sha256 = Unicode("", config=True, help="SHA-256 (hex) of the kernels' query key.")
    page_lang = Unicode("", config=True, help="Language forced on every page, or '' to follow the browser.")
    max_pages = Integer(4, config=True, help="Pages (kernels) open at once.")

    door: Door
    pages_loading = 0

    @default("identity_provider_class")
    def _identity_provider_class_default(self) -> type:
        return DoorIdentityProvider

    def initialize(self, argv: Any = None) -> None:
        # Ctrl-C stops the server even when it was started with SIGINT
        # ignored (in the background of a shell); Voilà handles SIGTERM.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        super().initialize(argv)
        if not re.fullmatch(r"[0-9a-f]{64}", self.token_sha256):
            # Never run open: xmailnb serve always gives a token.
            self.log.critical("xmailnb dashboard: no access token configured; refusing to start.")
            self.exit(2)
        self.voila_configuration.multi_kernel_manager_class = PageKernelManager
        headers = list(self.voila_configuration.http_header_envs)
        if "Accept-Language" not in headers:
            self.voila_configuration.http_header_envs = [*headers, "Accept-Language"]
        self.door = Door(token_sha256=self.token_sha256, login_code_sha256=self.login_code_sha256,
                         login_code_ttl=self.login_code_ttl, query_key_sha256=self.query_key_sha256,
                         port=self.port, loopback=is_loopback(self.ip or "127.0.0.1"), page_lang=self.page_lang)
        _install_log_filter(self.log)

    # -- page slots ----------------------------------------------------------------------
    def take_page_slot(self, login: str | None = None) -> bool:
        """Room for one more page?  Counts kernels running or starting (the
        preheated one included) and pages being rendered; takes a slot if so.
        A browser (*login*) that holds a page already gets one slot beyond
        the cap: it is reloading, and its old page's kernel goes within
        ``page_grace`` seconds of the old page closing."""
        pool = max(0, int(self.voila_configuration.default_pool_size))
        km = self.kernel_manager
        room = self.max_pages + pool
        if isinstance(km, PageKernelManager) and km.owns_page(login):
            room += 1
        if km.kernel_count() + self.pages_loading >= room:
            return False
        self.pages_loading += 1
        return True

    def release_page_slot(self) -> None:
        self.pages_loading = max(0, self.pages_loading - 1)

    # -- Voilà hooks ---------------------------------------------------------------------
    def init_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = super().init_settings()
        settings["xmailnb_app"] = self
        return settings

    def init_handlers(self) -> list[Any]:
        handlers = []
        for route in super().init_handlers():
            if route[1] is TornadoVoilaHandler:
                route = (route[0], PageHandler, *route[2:])
            handlers.append(route)
        own = [
            (LOGIN_PATH, LoginHandler, {"door": self.door}),
            (TICKET_PATH, TicketHandler, {"door": self.door}),
            ("/xmailnb/status", StatusHandler, {"app": self}),
            ("/xmailnb/door.js", DoorScriptHandler),
            (_QUERY_ROUTE.pattern, QuerySocketHandler),
        ]
        # Before Voilà's catch-all page route.
        return own + handlers

    def start(self) -> None:
        # Voilà's start(), with our application class (the door) and request log.
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        settings = self.init_settings()
        self.app = DoorApplication(**settings)
        self.app.door = self.door
        self.app.settings.update(self.tornado_settings)
        self.app.settings["log_function"] = log_request
        self.app.settings.setdefault("xsrf_cookie_kwargs", {"samesite": "Strict", "path": "/"})
        # jupyter_server's error pages need a static_path to render.
        self.app.settings.setdefault("static_path", DEFAULT_STATIC_FILES_PATH)
        self.app.add_handlers(".*$", self.init_handlers())
        self.listen()

    def stop(self) -> None:
        # Stop every kernel, but never hang on the way out.
        async def _shutdown() -> None:
            try:
                await asyncio.wait_for(self.kernel_manager.shutdown_all(now=True), 20)
            except Exception:
                log.warning("Some kernels did not stop in time.")

        try:
            run_sync(_shutdown)()
        except Exception as exc:  # a bug boundary: the connection files go anyway
            log_unexpected(log, "stopping the kernels", exc)
        finally:
            shutil.rmtree(self.connection_dir, ignore_errors=True)


def main() -> None:
    XmailnbVoila.launch_instance()


if __name__ == "__main__":
    main()
