"""The trainee server's login through the hub: a slim JupyterHub OAuth client.

A trainee's server needs only the client side of JupyterHub's OAuth: send
the browser to the hub to log in, take the code back, keep the token in a
cookie and ask the hub's REST API whose it is and what it may do.
``jupyterhub.services.auth.HubOAuth`` does exactly that, but importing it
pulls ``jupyterhub.scopes`` and ``jupyterhub.utils`` and with them the hub's
database layer (SQLAlchemy, Alembic, the ORM), aiohttp and the hub's own
handlers: about 46 MiB in every trainee's server, none of it used there
(``docs/performance.md``, figure 7b).

This module is the same protocol and the same checks, following
JupyterHub 6.1's ``HubOAuth``, ``JupyterHubIdentityProvider`` and
``JupyterHubAuthorizer`` step by step (BSD-3-Clause, © Jupyter Development
Team), over Tornado's HTTP client:

* the token comes from the ``Authorization`` header (``token``/``bearer``),
  a ``?token=`` only on websockets (or if ``JUPYTERHUB_ALLOW_TOKEN_IN_URL``),
  else from the signed, HttpOnly cookie named after the OAuth client id;
  a cookie opens only page views, websockets and same-origin resources
  unless the request carries the XSRF token (JupyterHub's rule), checked
  with Tornado's own XSRF token (the ``_xsrf`` cookie under the server's
  prefix, as Jupyter Server sets it) where JupyterHub binds its token to
  the hub session; a cookie never opens a non-read request sent from
  another site or a sibling subdomain (``Sec-Fetch-Site``), which is what
  JupyterHub's binding protects against;
* the hub's ``GET /api/user`` names the owner of a token and its scopes
  (answers cached five minutes per token and session, as JupyterHub does);
* a user gets in only with one of ``JUPYTERHUB_OAUTH_ACCESS_SCOPES``
  (this server's ``access:servers!server=NAME/`` or
  ``access:servers!user=NAME``, or unfiltered ``access:servers``), checked
  by the identity provider and again by the authorizer;
* the OAuth login starts at the server's own ``login`` page (Jupyter
  Server's ``login_url``, one redirect more than JupyterHub, which swaps
  the application's ``login_url`` during each request) and uses a random
  state kept in a signed, HttpOnly cookie (10 minutes) and on the server,
  and PKCE (S256); a user the hub knows but without access is refused
  there (403);
* cookies get ``secure`` when the browser sees HTTPS, plus
  ``JUPYTERHUB_COOKIE_OPTIONS``, and the ``__Host-`` prefix when enabled.

Only public interfaces are used: Jupyter Server's ``IdentityProvider``
(``get_user``, ``get_handlers``, ``is_token_authenticated``) and
``Authorizer``, Tornado's handlers and XSRF check.  Nothing is patched at
run time.  ``tests/test_classroom_hubauth.py`` checks it against the real
``JupyterHubIdentityProvider``, and the browser test against a real hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import re
import secrets
import ssl
import string
import time
import weakref
from typing import Any
from urllib.parse import urlencode, urlparse

from jupyter_server.auth import Authorizer, IdentityProvider, User
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.logout import LogoutHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient
from tornado.httputil import url_concat
from tornado.web import HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler
from traitlets import Instance, default

__all__ = ["HubAuthorizer", "HubIdentityProvider", "HubLoginHandler", "HubOAuthClient", "check_scopes"]

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
STATE_SECONDS = 600
_AUTH_HEADER = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)


def _bool_env(key: str, default: bool = False) -> bool:
    value = os.environ.get(key, "")
    if value == "":
        return default
    return value.lower() not in {"0", "false"}


def check_scopes(required: set[str] | str, have: set[str]) -> set[str]:
    """The required scopes that ``have`` grants (truthy when any is).

    JupyterHub's ``check_scopes`` without a database: a filtered scope
    ``base!kind=value`` is granted by the same scope, by the unfiltered
    ``base``, and a ``!server=USER/NAME`` filter also by ``!user=USER``;
    an unfiltered required scope only by the unfiltered scope; group
    filters (which need the hub's database) grant nothing.
    """
    required = {required} if isinstance(required, str) else set(required)
    have = set(have)
    granted = set()
    for scope in required:
        base, _, filter_ = scope.partition("!")
        if base in have or (filter_ and scope in have):
            granted.add(scope)
            continue
        kind, _, value = filter_.partition("=")
        if kind == "server" and value and f"{base}!user={value.partition('/')[0]}" in have:
            granted.add(scope)
    return granted


def get_browser_protocol(request: Any) -> str:
    """The protocol the browser sees (the outermost proxy's), as JupyterHub tells it."""
    headers = request.headers
    forwarded = headers.get("Forwarded")
    if forwarded:
        fields: dict[str, str] = {}
        for field in forwarded.split(",", 1)[0].strip().split(";"):
            key, _, value = field.partition("=")
            fields[key.strip().lower()] = value.strip()
        if fields.get("proto", "").lower() in {"http", "https"}:
            return fields["proto"].lower()
    proto = headers.get("X-Scheme", headers.get("X-Forwarded-Proto", None))
    if proto:
        proto = proto.split(",")[0].strip().lower()
        if proto in {"http", "https"}:
            return str(proto)
    return str(request.protocol)


class _Expiring:
    """A dict whose entries expire ``max_age`` seconds after being set."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._data: dict[str, tuple[float, Any]] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.purge()
        self._data[key] = (time.monotonic(), value)

    def get(self, key: str, default: Any = None) -> Any:
        entry = self._data.get(key)
        if entry is None or time.monotonic() - entry[0] > self.max_age:
            self._data.pop(key, None)
            return default
        return entry[1]

    def __contains__(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def pop(self, key: str, default: Any = None) -> Any:
        value = self.get(key, default)
        self._data.pop(key, None)
        return value

    def purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, (t, _) in self._data.items() if now - t > self.max_age]:
            self._data.pop(key, None)

    def __len__(self) -> int:
        self.purge()
        return len(self._data)


_MISSING = object()


class HubOAuthClient:
    """JupyterHub's ``HubOAuth`` for one single-user server, configured from
    the environment the spawner gives it (``JUPYTERHUB_*``)."""

    pkce_enabled = True

    def __init__(self, api_token: str | None = None) -> None:
        env = os.environ
        self.api_token = api_token if api_token is not None else env.get("JUPYTERHUB_API_TOKEN", "")
        self.oauth_client_id = env.get("JUPYTERHUB_CLIENT_ID", "")
        if not self.api_token or not self.oauth_client_id:
            raise ValueError("JUPYTERHUB_API_TOKEN and JUPYTERHUB_CLIENT_ID cannot be empty")
        self.hub_host = env.get("JUPYTERHUB_HOST", "")
        base = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
        self.base_url = "/" + base.strip("/") + "/" if base.strip("/") else "/"
        self.hub_prefix = url_path_join(env.get("JUPYTERHUB_BASE_URL") or "/", "hub") + "/"
        self.api_url = env.get("JUPYTERHUB_API_URL") or "http://127.0.0.1:8081" + url_path_join(
            self.hub_prefix, "api")
        self.keyfile = env.get("JUPYTERHUB_SSL_KEYFILE", "")
        self.certfile = env.get("JUPYTERHUB_SSL_CERTFILE", "")
        self.client_ca = env.get("JUPYTERHUB_SSL_CLIENT_CA", "")
        self.allow_token_in_url = _bool_env("JUPYTERHUB_ALLOW_TOKEN_IN_URL", default=False)
        self.allow_websocket_cookie_auth = _bool_env("JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH", default=True)
        options = env.get("JUPYTERHUB_COOKIE_OPTIONS")
        self.cookie_options: dict[str, Any] = json.loads(options) if options else {}
        self.cookie_host_prefix_enabled = _bool_env("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED")
        scopes = env.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES") or env.get("JUPYTERHUB_OAUTH_SCOPES")
        if scopes:
            self.access_scopes: set[str] = set(json.loads(scopes))
        elif env.get("JUPYTERHUB_SERVICE_NAME"):
            self.access_scopes = {f"access:services!service={env['JUPYTERHUB_SERVICE_NAME']}"}
        else:
            self.access_scopes = set()
        self.oauth_redirect_uri = env.get("JUPYTERHUB_OAUTH_CALLBACK_URL") or url_path_join(
            self.base_url, "oauth_callback")
        self.oauth_authorization_url = self.hub_host + url_path_join(self.hub_prefix, "api/oauth2/authorize")
        self.oauth_token_url = url_path_join(self.api_url, "oauth2/token")
        self.login_url = url_concat(self.oauth_authorization_url, {
            "client_id": self.oauth_client_id, "redirect_uri": self.oauth_redirect_uri,
            "response_type": "code"})
        self.cache = _Expiring(CACHE_SECONDS)
        self._oauth_states = _Expiring(STATE_SECONDS)
        self.log = log

    # -- cookies ---------------------------------------------------------
    @property
    def cookie_path(self) -> str:
        return "/" if self.cookie_host_prefix_enabled else self.base_url

    @property
    def cookie_name(self) -> str:
        return ("__Host-" if self.cookie_host_prefix_enabled else "") + self.oauth_client_id

    @property
    def state_cookie_name(self) -> str:
        return self.cookie_name + "-oauth-state"

    def _clear_cookie(self, handler: RequestHandler, cookie_name: str, **kwargs: Any) -> None:
        if cookie_name.startswith("__Host-"):
            kwargs["path"] = "/"
            kwargs["secure"] = True
        handler.clear_cookie(cookie_name, **kwargs)

    def set_cookie(self, handler: RequestHandler, access_token: str) -> None:
        """Keep the OAuth token in a signed HttpOnly cookie (``secure`` on HTTPS)."""
        kwargs: dict[str, Any] = {"path": self.cookie_path, "httponly": True}
        if get_browser_protocol(handler.request) == "https" or self.cookie_host_prefix_enabled:
            kwargs["secure"] = True
        kwargs.update(self.cookie_options)
        handler.set_secure_cookie(self.cookie_name, access_token, **kwargs)
        # the page's scripts send the XSRF token back: Tornado sets its cookie
        # (under the server's prefix, xsrf_cookie_kwargs) when first asked for it
        _ = handler.xsrf_token

    def clear_cookie(self, handler: RequestHandler) -> None:
        self._clear_cookie(handler, self.cookie_name, path=self.cookie_path)

    # -- the hub's API ---------------------------------------------------
    def _ssl_options(self) -> ssl.SSLContext | None:
        if not self.keyfile or not self.certfile:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.client_ca or None)
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        context.load_default_certs()
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    async def _api_request(self, method: str, url: str, *, allow_403: bool = False,
                           headers: dict[str, str] | None = None, body: bytes | None = None) -> Any:
        headers = dict(headers or {})
        headers.setdefault("Authorization", f"token {self.api_token}")
        try:
            response = await httpclient.AsyncHTTPClient().fetch(
                url, method=method, headers=headers, body=body, raise_error=False,
                follow_redirects=False, request_timeout=20, ssl_options=self._ssl_options())
        except Exception as exc:
            log.error("Error connecting to %s: %s", self.api_url, exc)
            raise HTTPError(500, f"Failed to connect to Hub API at {self.api_url!r}.") from None
        text = (response.body or b"").decode("utf8", "replace")
        status = response.code
        if status == 403 and allow_403:
            return None
        if status == 403:
            log.error("I don't have permission to check authorization with JupyterHub: %s", text)
            raise HTTPError(500, "Permission failure checking authorization, I may need a new token")
        if status >= 500 or status < 200:
            log.error("Upstream failure verifying auth token: [%i] %s", status, text)
            raise HTTPError(502, "Failed to check authorization (upstream problem)")
        if status >= 400:
            log.warning("Failed to check authorization: [%i] %s", status, text)
            msg = "Failed to check authorization"
            try:
                answer = json.loads(text)
                msg += ": " + str(answer.get("error_description", answer.get("error", "Unknown error")))
            except Exception:
                pass
            raise HTTPError(500, msg)
        return json.loads(text)

    async def user_for_token(self, token: str, use_cache: bool = True, session_id: str = "",
                             *, sync: bool = False) -> dict[str, Any] | None:
        """The hub's model of the token's owner (with the token's scopes), or None."""
        if sync:
            raise ValueError("only the asynchronous form is supported")
        key = "token:{}:{}".format(session_id, hashlib.sha256(token.encode("utf8", "replace")).hexdigest())
        if use_cache and key in self.cache:
            return self.cache.get(key)  # type: ignore[no-any-return]
        data = await self._api_request("GET", url_path_join(self.api_url, "user"),
                                       headers={"Authorization": "token " + token}, allow_403=True)
        if use_cache:
            self.cache[key] = data
        return data  # type: ignore[no-any-return]

    async def token_for_code(self, code: str, *, code_verifier: str | None = None,
                             sync: bool = False) -> str:
        """The last step of the OAuth login: the hub's token for a code."""
        params = {"client_id": self.oauth_client_id, "client_secret": self.api_token,
                  "grant_type": "authorization_code", "code": code,
                  "redirect_uri": self.oauth_redirect_uri}
        if code_verifier:
            params["code_verifier"] = code_verifier
        reply = await self._api_request(
            "POST", self.oauth_token_url, body=urlencode(params).encode("utf8"),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return str(reply["access_token"])

    # -- who is asking ---------------------------------------------------
    def get_session_id(self, handler: RequestHandler) -> str:
        return handler.get_cookie("jupyterhub-session-id", "") or ""

    def _get_token_url(self, handler: RequestHandler) -> str:
        fetch_mode = handler.request.headers.get("Sec-Fetch-Mode", "unspecified")
        if self.allow_token_in_url or fetch_mode == "websocket":
            return handler.get_argument("token", "")
        return ""

    def _get_token_cookie(self, handler: RequestHandler) -> str | None:
        fetch_mode = handler.request.headers.get("Sec-Fetch-Mode", "unset")
        if fetch_mode == "websocket" and not self.allow_websocket_cookie_auth:
            return None
        token = handler.get_secure_cookie(self.cookie_name)
        return token.decode("ascii", "replace") if token else None

    def get_token(self, handler: RequestHandler, in_cookie: bool = True) -> str | None:
        token: str | None = self._get_token_url(handler)
        if not token:
            m = _AUTH_HEADER.match(handler.request.headers.get("Authorization", ""))
            if m:
                token = m.group(1)
        if not token and in_cookie:
            token = self._get_token_cookie(handler)
        return token

    def _cookie_refused(self, handler: RequestHandler) -> str:
        """Why the login cookie may not open this request ("" if it may).

        JupyterHub's rule (``_needs_check_xsrf``): page views, websockets
        and same-origin resources need no XSRF token, everything else does.
        A request that needs one is refused outright when the browser says
        it comes from another site or a sibling subdomain.
        """
        headers = handler.request.headers
        fetch_mode = headers.get("Sec-Fetch-Mode", "unspecified")
        fetch_site = headers.get("Sec-Fetch-Site", "unspecified")
        read_only = handler.request.method in {"GET", "HEAD", "OPTIONS"}
        if (fetch_mode == "websocket" or (read_only and fetch_mode in {"navigate", "unspecified"})
                or (read_only and fetch_mode == "no-cors" and fetch_site == "same-origin")):
            return ""
        if handler.settings.get("disable_check_xsrf", False):
            return ""
        if fetch_site in {"cross-site", "same-site"}:
            return f"sent from {fetch_site}"
        try:
            # Tornado's own check (RequestHandler's, not a subclass's that
            # may defer it until the user is known)
            RequestHandler.check_xsrf_cookie(handler)
        except HTTPError as exc:
            return exc.log_message or "XSRF check failed"
        return ""

    async def _get_user_cookie(self, handler: RequestHandler) -> dict[str, Any] | None:
        token = self._get_token_cookie(handler)
        if not token:
            return None
        refused = self._cookie_refused(handler)
        if refused:
            log.debug("Not accepting cookie auth on %s %s: %s", handler.request.method,
                      handler.request.path, refused)
            return None
        model = await self.user_for_token(token, session_id=self.get_session_id(handler))
        if model is None:
            log.warning("Token stored in cookie may have expired")
            self._clear_cookie(handler, self.cookie_name, path=self.cookie_path)
        return model

    async def identify(self, handler: RequestHandler) -> tuple[dict[str, Any] | None, bool]:
        """The hub's user model for a request (token first, then the cookie),
        and whether a token (not the cookie) identified it."""
        session_id = self.get_session_id(handler)
        token = self.get_token(handler, in_cookie=False)
        if token:
            model = await self.user_for_token(token, session_id=session_id)
            if model:
                return model, True
        return await self._get_user_cookie(handler), False

    async def get_user(self, handler: RequestHandler, *, sync: bool = False) -> dict[str, Any] | None:
        """The hub's user model for a request, as ``HubOAuth.get_user``."""
        if sync:
            raise ValueError("only the asynchronous form is supported")
        return (await self.identify(handler))[0]

    def check_scopes(self, required: set[str] | str, user: dict[str, Any]) -> set[str]:
        return check_scopes(required, set(user["scopes"]))

    def _persist_url_token_if_set(self, handler: RequestHandler) -> None:
        url_token = self._get_token_url(handler)  # only one this server took from the URL
        if not url_token:
            return
        fetch_mode = handler.request.headers.get("Sec-Fetch-Mode", "navigate")
        if isinstance(handler, WebSocketHandler) or fetch_mode != "navigate":
            return
        self.set_cookie(handler, url_token)

    def login_redirect(self, handler: RequestHandler, next_url: str) -> str:
        """The hub's authorize URL for a new login, its state cookie set."""
        verifier, challenge, method = self.generate_pkce_code_challenge()
        state = self.set_state_cookie(handler, next_url=next_url, code_verifier=verifier)
        return url_concat(self.login_url, {"code_challenge": challenge, "code_challenge_method": method,
                                           "state": state})

    # -- the OAuth dance -------------------------------------------------
    def generate_pkce_code_challenge(self) -> tuple[str, str, str]:
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("utf-8")).digest())
        return verifier, challenge.decode("utf-8").rstrip("="), "S256"

    def set_state_cookie(self, handler: RequestHandler, next_url: str | None = None, *,
                         code_verifier: str | None = None) -> str:
        extra: dict[str, Any] = {}
        if code_verifier:
            extra["code_verifier"] = code_verifier
        if handler.get_cookie(self.state_cookie_name):
            # a login already under way in this browser: a cookie of its own
            suffix = "".join(random.choice(string.ascii_letters) for _ in range(8))
            cookie_name = f"{self.state_cookie_name}-{suffix}"
            extra["cookie_name"] = cookie_name
        else:
            cookie_name = self.state_cookie_name
        state_id = secrets.token_urlsafe(16)
        self._oauth_states[state_id] = {"next_url": next_url, **extra}
        kwargs: dict[str, Any] = {"path": self.cookie_path, "httponly": True, "max_age": STATE_SECONDS}
        public_url = os.environ.get("JUPYTERHUB_PUBLIC_URL")
        if public_url:
            if urlparse(public_url).scheme == "https":
                kwargs["secure"] = True
        elif get_browser_protocol(handler.request) == "https":
            kwargs["secure"] = True
        fixed = set(kwargs) | {"expires_days", "expires"}
        for key, value in self.cookie_options.items():
            if key.lower() not in fixed:
                kwargs[key] = value
        handler.set_secure_cookie(cookie_name, state_id, **kwargs)
        return state_id

    def _state(self, state_id: str) -> dict[str, Any]:
        state: dict[str, Any] = self._oauth_states.get(state_id) or {}
        return state

    def get_next_url(self, state_id: str = "") -> str:
        return self._state(state_id).get("next_url") or self.base_url

    def get_code_verifier(self, state_id: str = "") -> str | None:
        return self._state(state_id).get("code_verifier")

    def get_state_cookie_name(self, state_id: str = "") -> str:
        return self._state(state_id).get("cookie_name") or self.state_cookie_name

    def clear_oauth_state(self, state_id: str) -> None:
        self._oauth_states.pop(state_id, None)
        self._oauth_states.purge()

    def clear_oauth_state_cookies(self, handler: RequestHandler) -> None:
        for name in list(handler.request.cookies):
            if name.startswith(self.state_cookie_name):
                self._clear_cookie(handler, name, path=self.cookie_path)


class HubUser(User):
    """A jupyter_server user carrying the hub's model."""

    hub_user: dict[str, Any]

    def __init__(self, hub_user: dict[str, Any]) -> None:
        self.hub_user = hub_user
        kwargs: dict[str, Any] = {"username": hub_user["name"]}
        info = hub_user.get("user_info") or {}
        for key in ("name", "display_name", "initials", "avatar_url", "color"):
            if key in info:
                kwargs[key] = info[key]
        super().__init__(**kwargs)


class HubLogoutHandler(LogoutHandler):
    @allow_unauthenticated
    def get(self) -> None:
        hub_auth = _hub_auth_of(self.identity_provider)
        hub_auth.clear_cookie(self)
        self.redirect(hub_auth.hub_host + url_path_join(hub_auth.hub_prefix, "logout"))


class HubLoginHandler(RequestHandler):
    """``<prefix>login``, Jupyter Server's ``login_url``: starts the OAuth
    login at the hub, or refuses a user the hub knows who has no access."""

    def initialize(self, hub_auth: HubOAuthClient) -> None:
        self.hub_auth = hub_auth

    def _next_url(self) -> str:
        """Where to go after the login: a page of this server, nowhere else."""
        next_url = self.get_argument("next", "")
        base = self.hub_auth.base_url
        if next_url.startswith(base) and not next_url.startswith("//") and "\\" not in next_url:
            return next_url
        return base

    @allow_unauthenticated
    async def get(self) -> None:
        user = await self.hub_auth.get_user(self)
        if user is not None:
            if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, user):
                log.warning("Not allowing %s %s", user.get("kind"), user.get("name"))
                raise HTTPError(403, "{kind} {name} is not allowed.".format(**user))
            self.redirect(self._next_url())
            return
        self.redirect(self.hub_auth.login_redirect(self, self._next_url()))


class HubOAuthCallbackHandler(RequestHandler):
    """``<prefix>oauth_callback``: finishes the OAuth login (state and PKCE checked)."""

    def initialize(self, hub_auth: HubOAuthClient) -> None:
        self.hub_auth = hub_auth

    async def prepare(self) -> None:
        user = await self.hub_auth.get_user(self)
        allowed = user is not None and self.hub_auth.check_scopes(self.hub_auth.access_scopes, user)
        self.current_user = user if allowed else None

    @allow_unauthenticated
    async def get(self) -> None:
        hub_auth = self.hub_auth
        error = self.get_argument("error", "")
        if error:
            raise HTTPError(400, f"Error in oauth: {self.get_argument('error_description', error)}")
        code = self.get_argument("code", "")
        if not code:
            raise HTTPError(400, "OAuth callback made without a token")
        arg_state = self.get_argument("state", None)
        if arg_state is None:
            raise HTTPError(400, "OAuth state is missing. Try logging in again.")
        cookie_name = hub_auth.get_state_cookie_name(arg_state)
        cookie_state = self.get_secure_cookie(cookie_name)
        if cookie_state:
            hub_auth.clear_oauth_state_cookies(self)
        elif self.current_user:
            # a stale login finishing after another one: just go on
            hub_auth.clear_oauth_state_cookies(self)
            self.redirect(hub_auth.get_next_url(arg_state))
            return
        state = cookie_state.decode("ascii", "replace") if isinstance(cookie_state, bytes) else cookie_state
        if arg_state != state:
            log.warning("oauth state argument does not match its cookie %s", cookie_name)
            raise HTTPError(403, "oauth state does not match. Try logging in again.")
        next_url = hub_auth.get_next_url(state)
        code_verifier = hub_auth.get_code_verifier(state)
        hub_auth.clear_oauth_state(state)
        hub_auth.clear_oauth_state_cookies(self)
        token = await hub_auth.token_for_code(code, code_verifier=code_verifier)
        model = await hub_auth.user_for_token(token, session_id=hub_auth.get_session_id(self))
        if model is None:
            raise HTTPError(500, "oauth callback failed to identify a user")
        hub_auth.set_cookie(self, token)
        self.redirect(next_url or hub_auth.base_url)


def _hub_auth_of(identity_provider: IdentityProvider) -> HubOAuthClient:
    if not isinstance(identity_provider, HubIdentityProvider):
        raise TypeError("the hub's login needs xmailnb.classroom.hubauth.HubIdentityProvider")
    return identity_provider.hub_auth


class HubIdentityProvider(IdentityProvider):
    """JupyterHub's single-user identity provider on :class:`HubOAuthClient`:
    only users with this server's access scopes are identified at all."""

    logout_handler_class = HubLogoutHandler
    hub_auth = Instance(HubOAuthClient)
    token_generated = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the requests a token (not the login cookie) identified
        self._by_token: weakref.WeakSet[RequestHandler] = weakref.WeakSet()

    @default("hub_auth")
    def _default_hub_auth(self) -> HubOAuthClient:
        return HubOAuthClient()

    @property
    def token(self) -> str:  # type: ignore[override]
        return self.hub_auth.api_token

    async def get_user(self, handler: RequestHandler) -> HubUser | None:
        user, by_token = await self.hub_auth.identify(handler)
        if user is None:
            return None
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, user):
            # the login page refuses them (403) when they are sent there
            self.log.warning("Not allowing %s %s", user.get("kind"), user.get("name"))
            return None
        if by_token:
            self._by_token.add(handler)
            self.hub_auth._persist_url_token_if_set(handler)
        return HubUser(user)

    def is_token_authenticated(self, handler: RequestHandler) -> bool:
        return handler in self._by_token

    def get_handlers(self) -> list[Any]:
        kwargs = {"hub_auth": self.hub_auth}
        return [("/login", HubLoginHandler, kwargs), ("/logout", self.logout_handler_class),
                ("/oauth_callback", HubOAuthCallbackHandler, kwargs)]

    def validate_security(self, app: Any, ssl_options: Any = None) -> None:
        return


class HubAuthorizer(Authorizer):
    """Checks the access scopes again on every authorized action."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        hub_auth = _hub_auth_of(self.identity_provider)
        if not isinstance(user, HubUser):
            return False
        return bool(hub_auth.check_scopes(hub_auth.access_scopes, user.hub_user))
