"""The trainee server's slim hub login (xmailnb.classroom.hubauth) against
JupyterHub's own: same answers to the same requests.

A fake hub (its OAuth token endpoint and ``/api/user``) and a small Tornado
app that asks the identity provider who is calling, once with
:class:`xmailnb.classroom.hubauth.HubIdentityProvider` and once with
``jupyterhub.singleuser.extension.JupyterHubIdentityProvider``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import socket
import subprocess
import sys
import warnings
from urllib.parse import parse_qs, urlencode, urlparse

from tornado import web
from tornado.httpclient import AsyncHTTPClient

from xmailnb.classroom.hubauth import check_scopes

CLIENT_ID = "jupyterhub-user-alice"
API_TOKEN = "server-api-token"
ACCESS = ["access:servers!server=alice/", "access:servers!user=alice"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- scopes ----------------------------------------------------------------------------------

SCOPES = ["access:servers", "access:servers!server=alice/", "access:servers!server=bob/",
          "access:servers!user=alice", "access:servers!user=bob", "access:servers!group=class",
          "access:services", "read:users!user=alice", "access:servers!server=alice/other"]


def test_scopes_are_granted_exactly_as_jupyterhub_grants_them():
    from jupyterhub.services.auth import check_scopes as hub_check_scopes

    required_sets = [set(ACCESS), {"access:servers!server=alice/"}, {"access:servers"},
                     {"access:servers!user=alice"}, {"access:services!service=board"}]
    cases = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JupyterHub warns that it cannot resolve groups without its database
        for required in required_sets:
            for n in range(0, 3):
                for have in itertools.combinations(SCOPES, n):
                    assert check_scopes(required, set(have)) == hub_check_scopes(required, set(have)), (required, have)
                    cases += 1
    assert cases > 100


# -- the OAuth login, end to end --------------------------------------------------------------

class FakeHub:
    """The hub's side: codes issued on "authorize", tokens and their owners."""

    def __init__(self) -> None:
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {
            "t-bob": {"name": "bob", "kind": "user", "scopes": ["access:servers!server=bob/"]},
            "t-admin": {"name": "admin", "kind": "user", "scopes": ["access:servers"]},
            "t-alice": {"name": "alice", "kind": "user", "scopes": ["access:servers!server=alice/"]},
            "t-alice-user": {"name": "alice", "kind": "user", "scopes": ["access:servers!user=alice"]},
            "t-noscope": {"name": "alice", "kind": "user", "scopes": ["read:users!user=alice"]},
        }
        self.token_requests: list[dict] = []

    def authorize(self, login_url: str, name: str, scopes: list[str]) -> tuple[str, str]:
        """What the hub does when the user approves: a code for the redirect."""
        query = parse_qs(urlparse(login_url).query)
        code = f"code-{len(self.codes)}"
        self.codes[code] = {"name": name, "scopes": scopes, "challenge": query["code_challenge"][0],
                            "redirect_uri": query["redirect_uri"][0], "client_id": query["client_id"][0]}
        return code, query["state"][0]

    def app(self) -> web.Application:
        hub = self

        class User(web.RequestHandler):
            def get(self):
                token = self.request.headers.get("Authorization", "").partition(" ")[2]
                model = hub.tokens.get(token)
                if model is None:
                    raise web.HTTPError(403)
                self.finish(json.dumps(model))

        class Token(web.RequestHandler):
            def check_xsrf_cookie(self):
                pass

            def post(self):
                args = {k: v[0] for k, v in parse_qs(self.request.body.decode()).items()}
                hub.token_requests.append(args)
                grant = hub.codes.pop(args.get("code", ""), None)
                verifier = args.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if (grant is None or args.get("client_secret") != API_TOKEN or args.get("client_id") != CLIENT_ID
                        or args.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["challenge"]):
                    self.set_status(400)
                    self.finish(json.dumps({"error": "invalid_grant"}))
                    return
                token = f"t-oauth-{len(hub.tokens)}"
                hub.tokens[token] = {"name": grant["name"], "kind": "user", "scopes": grant["scopes"]}
                self.finish(json.dumps({"access_token": token, "token_type": "Bearer"}))

        return web.Application([(r"/hub/api/user", User), (r"/hub/api/oauth2/token", Token)])


def _server_app(provider_class, authorizer_class) -> web.Application:
    """A single-user server's page and API, behind the identity provider."""
    from jupyter_server.base.handlers import JupyterHandler

    identity = provider_class()
    authorizer = authorizer_class(identity_provider=identity)

    class Page(JupyterHandler):
        @web.authenticated
        def get(self):
            allowed = self.authorizer.is_authorized(self, self.current_user, "read", "page")
            self.finish(json.dumps({"user": self.current_user.username, "authorized": allowed}))

        @web.authenticated
        def post(self):
            self.finish(json.dumps({"user": self.current_user.username}))

    handlers = [("/user/alice/", Page)]
    handlers += [("/user/alice" + path, *rest) for path, *rest in identity.get_handlers()]
    return web.Application(handlers, cookie_secret=b"s" * 32, identity_provider=identity, authorizer=authorizer,
                           login_url="/user/alice/login", xsrf_cookies=True, base_url="/user/alice/",
                           xsrf_cookie_kwargs={"path": "/user/alice/"})


PROVIDERS = {
    "xmailnb": ("xmailnb.classroom.hubauth:HubIdentityProvider", "xmailnb.classroom.hubauth:HubAuthorizer"),
    "jupyterhub": ("jupyterhub.singleuser.extension:JupyterHubIdentityProvider",
                   "jupyterhub.singleuser.extension:JupyterHubAuthorizer"),
}


def _load(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _scenario(provider: str, hub_port: int) -> list:
    """Every request a browser or another server might make; what each got."""
    hub = FakeHub()
    results: list = []

    async def go():
        hub_server = hub.app().listen(hub_port, "127.0.0.1")
        app = _server_app(_load(PROVIDERS[provider][0]), _load(PROVIDERS[provider][1]))
        port = _port()
        server = app.listen(port, "127.0.0.1")
        base = f"http://127.0.0.1:{port}/user/alice/"
        client = AsyncHTTPClient()

        async def fetch(url, **kw):
            """One request, through the server's own login page if it sends
            the browser there (xmailnb's way to the hub: one hop more)."""
            kw.setdefault("follow_redirects", False)
            kw.setdefault("raise_error", False)
            response = await client.fetch(url, **kw)
            location = response.headers.get("Location", "")
            if response.code == 302 and urlparse(location).path == "/user/alice/login":
                response = await client.fetch(f"http://127.0.0.1:{port}{location}", **kw)
            return response

        def cookies(response) -> dict[str, str]:
            jar = {}
            for header in response.headers.get_list("Set-Cookie"):
                name, _, rest = header.partition("=")
                jar[name] = header
            return jar

        def jar_header(jar: dict[str, str]) -> str:
            pairs = (h.split(";", 1)[0] for h in jar.values())
            return "; ".join(p for p in pairs if not p.endswith("="))  # cleared cookies are not sent back

        try:
            # 1. no credentials: sent to the hub's authorize URL, with a state cookie
            r = await fetch(base, headers={"Sec-Fetch-Mode": "navigate"})
            login = r.headers.get("Location", "")
            query = parse_qs(urlparse(login).query)
            state_cookies = cookies(r)
            results.append(("anonymous", r.code, urlparse(login).path, sorted(query),
                            query.get("client_id"), query.get("code_challenge_method"),
                            sorted((n, "httponly" in h.lower(), "secure" in h.lower())
                                   for n, h in state_cookies.items())))
            # 2. the hub says yes; the callback with the state and the state cookie
            code, state = hub.authorize(login, "alice", ["access:servers!server=alice/"])
            r = await fetch(f"{base}oauth_callback?" + urlencode({"code": code, "state": state}),
                            headers={"Cookie": jar_header(state_cookies), "X-Forwarded-Proto": "https"})
            login_cookies = cookies(r)
            token_cookie = login_cookies.get(CLIENT_ID, "")
            results.append(("callback", r.code, r.headers.get("Location"), bool(token_cookie),
                            "httponly" in token_cookie.lower(), "secure" in token_cookie.lower(),
                            "_xsrf" in login_cookies))
            results.append(("pkce sent", "code_verifier" in hub.token_requests[-1]))
            session = {CLIENT_ID: token_cookie}
            # 3. the cookie opens the page
            r = await fetch(base, headers={"Cookie": jar_header(session), "Sec-Fetch-Mode": "navigate"})
            results.append(("cookie", r.code, r.body.decode() if r.code == 200 else ""))
            # 4. a cookie-authenticated cross-site POST without the XSRF token is not let in
            r = await fetch(base, method="POST", body=b"x",
                            headers={"Cookie": jar_header(session), "Sec-Fetch-Mode": "cors",
                                     "Sec-Fetch-Site": "cross-site"})
            results.append(("post without xsrf", r.code))
            # 5. tokens in the Authorization header
            for token in ("t-alice", "t-alice-user", "t-admin", "t-bob", "t-noscope", "nonsense"):
                r = await fetch(base, headers={"Authorization": f"token {token}"})
                results.append(("header", token, r.code, r.body.decode() if r.code == 200 else ""))
                r = await fetch(base, headers={"Authorization": f"Bearer {token}"})
                results.append(("bearer", token, r.code))
            # 6. a token in the URL of a page: ignored (no ?token= logins)
            r = await fetch(base + "?token=t-alice", headers={"Sec-Fetch-Mode": "navigate"})
            results.append(("url token", r.code, urlparse(r.headers.get("Location", "")).path))
            # 7. a callback whose state does not match its cookie, or without a cookie
            r = await fetch(base, headers={"Sec-Fetch-Mode": "navigate"})
            jar = cookies(r)
            code, state = hub.authorize(r.headers["Location"], "alice", ["access:servers!server=alice/"])
            r = await fetch(f"{base}oauth_callback?" + urlencode({"code": code, "state": state + "x"}),
                            headers={"Cookie": jar_header(jar)})
            results.append(("wrong state", r.code, CLIENT_ID in cookies(r)))
            r = await fetch(f"{base}oauth_callback?" + urlencode({"code": code, "state": state}))
            results.append(("no state cookie", r.code, CLIENT_ID in cookies(r)))
            # 8. bob logs in through OAuth at alice's server: no entry
            r = await fetch(base, headers={"Sec-Fetch-Mode": "navigate"})
            jar = cookies(r)
            code, state = hub.authorize(r.headers["Location"], "bob", ["access:servers!server=bob/"])
            r = await fetch(f"{base}oauth_callback?" + urlencode({"code": code, "state": state}),
                            headers={"Cookie": jar_header(jar)})
            bob = {CLIENT_ID: cookies(r).get(CLIENT_ID, "")}
            r = await fetch(base, headers={"Cookie": jar_header(bob), "Sec-Fetch-Mode": "navigate"})
            results.append(("bob's cookie", r.code))
            # 9. a forged cookie (not signed with the server's secret)
            r = await fetch(base, headers={"Cookie": f"{CLIENT_ID}=t-alice", "Sec-Fetch-Mode": "navigate"})
            results.append(("forged cookie", r.code, urlparse(r.headers.get("Location", "")).path))
        finally:
            server.stop()
            hub_server.stop()

    asyncio.run(go())
    return results


def _xmailnb_only(hub_port: int) -> list:
    """What JupyterHub does differently and xmailnb's login must still get
    right: where a login may lead back to, and cookies sent from a sibling site."""
    hub = FakeHub()
    results: list = []

    async def go():
        hub_server = hub.app().listen(hub_port, "127.0.0.1")
        app = _server_app(_load(PROVIDERS["xmailnb"][0]), _load(PROVIDERS["xmailnb"][1]))
        port = _port()
        server = app.listen(port, "127.0.0.1")
        origin = f"http://127.0.0.1:{port}"
        client = AsyncHTTPClient()

        async def fetch(url, **kw):
            return await client.fetch(origin + url, follow_redirects=False, raise_error=False, **kw)

        def cookies(response) -> dict[str, str]:
            return {h.partition("=")[0]: h.split(";", 1)[0].partition("=")[2]
                    for h in response.headers.get_list("Set-Cookie")}

        async def login(next_url: str) -> tuple[str, dict[str, str]]:
            r = await fetch("/user/alice/login?" + urlencode({"next": next_url}))
            jar = cookies(r)
            code, state = hub.authorize(r.headers["Location"], "alice", ["access:servers!server=alice/"])
            r = await fetch("/user/alice/oauth_callback?" + urlencode({"code": code, "state": state}),
                            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
            return r.headers.get("Location", ""), cookies(r)

        try:
            for next_url in ("/user/alice/?page=2", "https://evil.example/", "//evil.example/user/alice/",
                             "/user/bob/"):
                location, _jar = await login(next_url)
                results.append(("next", next_url, location))
            _location, jar = await login("/user/alice/")
            session = f"{CLIENT_ID}={jar[CLIENT_ID]}; _xsrf={jar['_xsrf']}"
            for site in ("same-origin", "same-site", "cross-site"):
                r = await fetch("/user/alice/", method="POST", body=b"x",
                                headers={"Cookie": session, "X-XSRFToken": jar["_xsrf"],
                                         "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": site})
                results.append(("post with xsrf", site, r.code))
        finally:
            server.stop()
            hub_server.stop()

    asyncio.run(go())
    return results


def test_a_login_leads_back_only_to_this_server_and_other_sites_cannot_post():
    got = _run_isolated("xmailnb", "_xmailnb_only")
    assert got == [
        ["next", "/user/alice/?page=2", "/user/alice/?page=2"],
        ["next", "https://evil.example/", "/user/alice/"],
        ["next", "//evil.example/user/alice/", "/user/alice/"],
        ["next", "/user/bob/", "/user/alice/"],
        ["post with xsrf", "same-origin", 200],
        ["post with xsrf", "same-site", 403],
        ["post with xsrf", "cross-site", 403],
    ]


def _run_isolated(provider: str, scenario: str = "_scenario") -> list:
    """Each provider in its own interpreter: both read the environment once,
    and JupyterHub's patches XSRF handling on Jupyter Server's classes."""
    hub_port = _port()
    env_code = (
        "import json, os, sys\n"
        f"os.environ.update(JUPYTERHUB_API_TOKEN={API_TOKEN!r}, JUPYTERHUB_CLIENT_ID={CLIENT_ID!r},\n"
        f"    JUPYTERHUB_API_URL='http://127.0.0.1:{hub_port}/hub/api', JUPYTERHUB_SERVICE_PREFIX='/user/alice/',\n"
        f"    JUPYTERHUB_OAUTH_ACCESS_SCOPES=json.dumps({ACCESS!r}), JUPYTERHUB_BASE_URL='/',\n"
        "    JUPYTERHUB_HOST='', JUPYTERHUB_OAUTH_CALLBACK_URL='/user/alice/oauth_callback')\n"
        "for k in ('JUPYTERHUB_COOKIE_OPTIONS', 'JUPYTERHUB_ALLOW_TOKEN_IN_URL', 'JUPYTERHUB_PUBLIC_URL'):\n"
        "    os.environ.pop(k, None)\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
        "import test_classroom_hubauth as t\n"
        + (f"print(json.dumps(t._scenario({provider!r}, {hub_port})))\n" if scenario == "_scenario"
           else f"print(json.dumps(t.{scenario}({hub_port})))\n")
    )
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_slim_login_answers_every_request_as_jupyterhub_does():
    ours = _run_isolated("xmailnb")
    theirs = _run_isolated("jupyterhub")
    assert ours == theirs
    got = {r[0] if r[0] not in ("header", "bearer") else (r[0], r[1]): r for r in ours}
    # and what those answers are, in plain words
    assert got["anonymous"][1] == 302 and got["anonymous"][2] == "/hub/api/oauth2/authorize"
    assert got["anonymous"][5] == ["S256"]
    assert all(httponly for _name, httponly, _secure in got["anonymous"][6])
    assert got["callback"][1:6] == [302, "/user/alice/", True, True, True]
    assert got["pkce sent"][1] is True
    assert got["cookie"][1] == 200 and json.loads(got["cookie"][2]) == {"user": "alice", "authorized": True}
    assert got["post without xsrf"][1] == 403
    for token in ("t-alice", "t-alice-user", "t-admin"):
        assert got[("header", token)][2] == 200
        assert got[("bearer", token)][2] == 200
    for token in ("t-bob", "t-noscope"):
        assert got[("header", token)][2] == 403
        assert got[("bearer", token)][2] == 403
    assert got[("header", "nonsense")][2] == 302
    assert got["url token"][1] == 302
    assert got["wrong state"][1:] == [403, False]
    assert got["no state cookie"][1:] == [403, False]
    assert got["bob's cookie"][1] == 403
    assert got["forged cookie"][1] == 302


def test_a_trainee_server_does_not_load_the_hub_database_layer():
    code = ("import sys, xmailnb.classroom.singleuser\n"
            "print(sorted(m for m in ('sqlalchemy', 'alembic', 'aiohttp', 'jupyterhub.orm', 'jupyterhub.scopes',"
            " 'jupyterhub.services.auth') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
