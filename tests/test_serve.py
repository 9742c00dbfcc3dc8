"""``xmailnb serve``: the command it builds, the door in front of every
route, and a real dashboard server attacked over raw HTTP.

Threat model (issue 10): every local account can reach 127.0.0.1, and any web
page the admin visits can make the browser send requests to it.  So: a token
always, never on a command line or in a log; no answer without it on any
route; cross-site requests refused before a kernel starts; kernels bounded.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from dashboard_server import Dashboard
from helpers import run
from xmailnb.dashboard import plan as serving
from xmailnb.cli.serve import forced_language
from xmailnb.dashboard.page import accept_language, page_language
from xmailnb.errors import UsageError
from xmailnb.mailroot.resolve import resolve

pytestmark = pytest.mark.slow  # starts real dashboard servers

ROOT = Path(__file__).resolve().parent.parent
GOOD = "correct-horse-battery-staple-0123456789"


@pytest.fixture
def sandbox():
    return resolve(None)


# -- the plan: plain data, no server ------------------------------------------------------

def test_token_always_even_on_loopback_and_never_on_a_command_line(sandbox):
    plan = serving.plan(sandbox, lang=None, environ={"PATH": "/usr/bin", "XMAILNB_TOKEN": "leak-leak-leak-leak",
                                                     "JUPYTER_TOKEN": "leak2", "XMAILNB_LANG": "ja"})
    assert plan.token_generated and len(plan.token) >= 40  # 256 bits, URL-safe
    assert plan.url == f"http://127.0.0.1:{serving.DEFAULT_PORT}/"
    assert plan.login_url == f"{plan.url}?token={plan.token}"
    assert plan.open_url.startswith(f"{plan.url}?login=") and plan.token not in plan.open_url
    assert not any(plan.token in a for a in plan.argv)
    everything = " ".join([*plan.env.values(), str(plan.config)])
    assert plan.token not in everything and "leak" not in everything
    assert "XMAILNB_TOKEN" not in plan.env and "JUPYTER_TOKEN" not in plan.env
    # the server keeps only a digest
    assert plan.config["XmailnbVoila"]["token_sha256"] == serving.digest(plan.token)
    # no forced language: each page follows its browser (XMAILNB_LANG does not leak to the pages)
    assert "XMAILNB_LANG" not in plan.env and plan.config["XmailnbVoila"]["page_lang"] == ""
    assert plan.env["MAIL_ROOT"] == str(sandbox.path)
    assert plan.env[serving.QUERY_URL_ENV].startswith(f"ws://127.0.0.1:{serving.DEFAULT_PORT}/xmailnb/query/")
    # our template (no CDN), no way to switch back to the stock one from the URL
    assert "--template=xmailnb" in plan.argv
    assert "--VoilaConfiguration.allow_template_override=NO" in plan.argv
    assert "--show_tracebacks=False" in plan.argv and "--strip_sources=True" in plan.argv
    assert plan.argv[1:3] == ["-m", "xmailnb.dashboard.server"] and Path(plan.argv[3]).is_file()


def test_forced_language_reaches_the_pages(sandbox):
    plan = serving.plan(sandbox, lang="ja", token=GOOD, token_source="env")
    assert plan.env["XMAILNB_LANG"] == plan.env[serving.PAGE_LANG_ENV] == "ja"
    assert plan.config["XmailnbVoila"]["page_lang"] == "ja"
    assert plan.token == GOOD and not plan.token_generated


def test_config_file_is_private_and_holds_no_token(sandbox, tmp_path):
    plan = serving.plan(sandbox, lang=None, ip="0.0.0.0")
    path = plan.write_config(tmp_path)
    assert path.stat().st_mode & 0o077 == 0
    assert plan.token not in path.read_text() and serving.digest(plan.token) in path.read_text()


@pytest.mark.parametrize("token, key", [("", "serve.token.empty"), ("short-token", "serve.token.short"),
                                        ("x" * 15, "serve.token.short"), ("with space 0123456789", "serve.token.charset"),
                                        ("ｔｏｋｅｎｔｏｋｅｎｔｏｋｅｎｔｏｋｅｎ", "serve.token.charset"),
                                        ("y" * 600, "serve.token.long")])
def test_unusable_tokens_are_refused(token, key):
    with pytest.raises(UsageError) as info:
        serving.check_token(token, "XMAILNB_TOKEN")
    assert info.value.msg.key == key
    assert serving.check_token("z" * 16, "XMAILNB_TOKEN") == "z" * 16


def test_short_token_from_the_environment_is_a_clear_refusal(monkeypatch):
    monkeypatch.setenv("XMAILNB_TOKEN", "abc12345")
    r = run("serve", "--no-browser", "--lang", "en")
    assert r.code == 2
    assert "XMAILNB_TOKEN" in r.err and "8 characters" in r.err and "at least 16" in r.err
    r = run("serve", "--no-browser", "--lang", "ja")
    assert r.code == 2 and "16 文字以上" in r.err


def test_token_on_the_command_line_is_refused_and_not_echoed():
    secret = "s3cret-value-0123456789-abcdef"
    r = run("serve", "--token", secret, "--no-browser", "--lang", "en")
    assert r.code == 2
    assert "--token-file" in r.err and "XMAILNB_TOKEN" in r.err and "process list" in r.err
    assert secret not in r.err + r.out
    # the common options before the command work too (issue 13 #8)
    r = run("--lang", "ja", "serve", "--token", secret, "--no-browser")
    assert r.code == 2 and "--token-file" in r.err and "プロセス一覧" in r.err


def test_common_options_before_the_command():
    r = run("--lang", "ja", "--mailroot", "/nonexistent/mailroot", "diagnose")
    assert r.code == 2 and "/nonexistent/mailroot" in r.err and re.search(r"[\u3040-\u30ff]", r.err)
    # after the command still wins over before it
    r = run("--lang", "ja", "diagnose", "--lang", "en", "--mailroot", "/nonexistent/mailroot")
    assert r.code == 2 and not re.search(r"[\u3040-\u30ff]", r.err)


def test_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\r\n")  # an editor's BOM and CRLF
    path.chmod(0o600)
    assert serving.read_token_file(str(path)) == GOOD
    assert serving.resolve_token(str(path), {}) == (GOOD, "file")
    assert serving.resolve_token(None, {"XMAILNB_TOKEN": GOOD + "\n"}) == (GOOD, "env")
    assert serving.resolve_token(None, {})[1] == "generated"
    path.chmod(0o644)
    with pytest.raises(UsageError) as info:
        serving.read_token_file(str(path))
    assert info.value.msg.key == "serve.token_file.open" and "chmod 600" in info.value.render("en")
    path.chmod(0o600)
    path.write_text("short\n")
    with pytest.raises(UsageError) as info:
        serving.read_token_file(str(path))
    assert info.value.msg.key == "serve.token.short"
    with pytest.raises(UsageError) as info:
        serving.read_token_file(str(tmp_path / "missing"))
    assert info.value.msg.key == "serve.token_file.unreadable"
    with pytest.raises(UsageError):
        serving.read_token_file(str(tmp_path))  # a folder


def test_token_file_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    start = time.monotonic()
    r = run("serve", "--token-file", str(fifo), "--no-browser", "--lang", "en")
    assert r.code == 2 and str(fifo) in r.err
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("argv", [["--max-pages", "0"], ["--max-pages", "500"], ["--page-timeout", "1"],
                                  ["--port", "70000"]])
def test_out_of_range_options_are_usage_errors(argv):
    r = run("serve", *argv, "--no-browser", "--lang", "en")
    assert r.code == 2, r.err


def test_busy_port_is_a_clear_refusal():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("serve", "--port", str(port), "--no-browser", "--lang", "en")
    assert r.code == 1
    assert f"Port {port}" in r.err and "--port" in r.err


def test_dashboard_shipped_in_package_matches_repository():
    assert serving.dashboard_notebook().read_bytes() == (ROOT / "notebooks" / "dashboard.ipynb").read_bytes()


def test_template_links_nothing_from_another_host():
    folder = serving.share_dir() / "jupyter" / "voila" / "templates" / serving.TEMPLATE
    for path in folder.iterdir():
        body = path.read_text(encoding="utf-8")
        assert not re.search(r"""(href|src|import)\s*[=(]\s*["']https?://""", body), path.name
        assert "cdn" not in body.lower().replace("cdn #}", "").replace("a cdn", ""), path.name
    assert "xmailnb/door.js" in (folder / "index.html.j2").read_text(encoding="utf-8")


# -- the page's language ------------------------------------------------------------------

@pytest.mark.parametrize("header, expected", [
    ("ja", "ja"), ("ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "ja"), ("en-US,en;q=0.9,ja;q=0.8", "en"),
    ("fr-FR, ja;q=0.5, en;q=0.4", "ja"), ("fr, de", None), ("", None), ("ja;q=0, en;q=0.1", "en"),
    ("*", None), ("JA-jp", "ja"), ("en;q=abc, ja;q=0.2", "ja"),
])
def test_accept_language(header, expected):
    assert accept_language(header) == expected


def test_page_language_precedence():
    # serve --lang wins; then the browser; then the server's locale (C: English)
    assert page_language({"XMAILNB_PAGE_LANG": "en", "HTTP_ACCEPT_LANGUAGE": "ja"}) == "en"
    assert page_language({"HTTP_ACCEPT_LANGUAGE": "ja-JP,ja;q=0.9", "LANG": "C"}) == "ja"
    assert page_language({"HTTP_ACCEPT_LANGUAGE": "en-US", "LANG": "ja_JP.UTF-8"}) == "en"
    assert page_language({"LANG": "C"}) == "en"
    assert page_language({"LANG": "ja_JP.UTF-8"}) == "ja"


def test_a_preheated_kernel_gets_the_request_from_its_query_socket(monkeypatch):
    """The kernel's wait for the page (Voilà's protocol, without Voilà):
    the server's message lands in the kernel's environment."""
    import asyncio
    import json

    from tornado import web, websocket

    from xmailnb.dashboard.page import wait_for_page

    seen = []

    class Query(websocket.WebSocketHandler):
        def open(self, kernel_id):
            seen.append(kernel_id)
            self.write_message(json.dumps({"HTTP_ACCEPT_LANGUAGE": "ja-JP,ja;q=0.9", "QUERY_STRING": "a=1"}))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in ("HTTP_ACCEPT_LANGUAGE", "QUERY_STRING", "XMAILNB_PAGE_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("VOILA_KERNEL_ID", "k-1")
    monkeypatch.setenv("XMAILNB_PAGE_QUERY_URL", f"ws://127.0.0.1:{port}/xmailnb/query/key")
    monkeypatch.setenv("LANG", "C")
    ready = threading.Event()
    box = {}

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        box["server"] = web.Application([(r"/xmailnb/query/key/(.*)", Query)]).listen(port, "127.0.0.1")
        box["loop"] = loop
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        page = wait_for_page()
    finally:
        box["loop"].call_soon_threadsafe(box["loop"].stop)
        thread.join(10)
    assert seen == ["k-1"]
    assert page.lang == "ja"
    assert os.environ["QUERY_STRING"] == "a=1"


def test_the_dashboard_kernel_does_not_load_voila():
    """The notebook's imports and its wait for the page (run in every
    preheated kernel) leave Voilà's server, Jupyter Server and nbconvert out
    of the kernel (about 45 MiB each)."""
    import subprocess
    import sys

    code = ("import sys, xmailnb.dashboard.page, xmailnb.ui\n"
            "xmailnb.dashboard.page.wait_for_page()\n"
            "print(sorted(m for m in ('voila', 'jupyter_server', 'nbconvert', 'jupyterlab_server') if m in sys.modules))")
    with socket.socket() as s:  # nobody listens there: the wait gives up at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VOILA_PREHEAT": "True", "VOILA_KERNEL_ID": "k-1",
           "XMAILNB_PAGE_QUERY_URL": f"ws://127.0.0.1:{port}/xmailnb/query/key"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_serve_forces_a_language_only_when_asked():
    class Args:
        lang = None

    assert forced_language(Args(), {"LANG": "C"}) is None  # the server's locale never forces one
    assert forced_language(Args(), {"XMAILNB_LANG": "ja"}) == "ja"
    Args.lang = "en"
    assert forced_language(Args(), {"XMAILNB_LANG": "ja"}) == "en"


# -- the door, request by request ---------------------------------------------------------

def _door(**kw):
    from xmailnb.dashboard.server import Door

    args = dict(token_sha256=serving.digest(GOOD), login_code_sha256=serving.digest("one-time-code-0123456789"),
                login_code_ttl=600, query_key_sha256=serving.digest("query-key-0123456789abcdef"), port=8866,
                loopback=True)
    args.update(kw)
    return Door(**args)


def _req(uri="/", method="GET", **headers):
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    h = HTTPHeaders()
    h["Host"] = headers.pop("Host", "127.0.0.1:8866")
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return HTTPServerRequest(start_line=RequestStartLine(method, uri, "HTTP/1.1"), headers=h)


def _verdict(door, *args, **kw):
    v = door.verdict(_req(*args, **kw))
    return None if v is None else (v.status, v.kind, v.location)


def _login(door):
    """Log in by address as a browser does: ``(cookie header, browser key, page ticket)``."""
    from urllib.parse import parse_qs, urlsplit

    v = door.verdict(_req(f"/?token={quote(GOOD)}"))
    assert (v.status, v.kind) == (303, "enter")
    parts = urlsplit(v.location)
    key = parts.fragment.removeprefix("xmailnb-key=")
    return f"{door.cookie_name}={door.cookie_value(v.login)}", key, parse_qs(parts.query)["xmailnb-page"][0]


def test_door_requires_the_cookie_and_its_key_or_the_token_header():
    door = _door()
    cookie, key, ticket = _login(door)
    kid = "12345678-1234-1234-1234-123456789abc"
    assert _verdict(door) == (401, "login", "")
    # The cookie alone (what a page on another port of 127.0.0.1 receives)
    # opens no page, no kernel route and no websocket; static code only.
    assert _verdict(door, Cookie=cookie) == (200, "bootstrap", "")
    for path, headers in [(f"/api/kernels/{kid}/channels", {"Upgrade": "websocket"}), (f"/api/kernels/{kid}", {}),
                          ("/api/kernels", {}), ("/xmailnb/status", {}), (f"/voila/api/shutdown/{kid}", {})]:
        method = "POST" if "shutdown" in path else "GET"
        assert _verdict(door, path, method=method, Cookie=cookie, **headers) == (403, "refused", ""), path
    assert _verdict(door, "/xmailnb/ticket", method="POST", Cookie=cookie)[0] == 403
    assert _verdict(door, "/voila/static/voila.js", Cookie=cookie) is None
    # With its key (header, or the websocket's parameter) or a fresh ticket.
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key) is None
    assert _verdict(door, f"/api/kernels/{kid}/channels?session_id=1&xmailnb-key={key}", Cookie=cookie,
                    Upgrade="websocket") is None
    assert _verdict(door, "/xmailnb/ticket", method="POST", Cookie=cookie, X_Xmailnb_Key=key) is None
    assert _verdict(door, f"/?xmailnb-page={ticket}", Cookie=cookie) is None
    assert _verdict(door, f"/?xmailnb-page={ticket}", Cookie=cookie) == (200, "bootstrap", "")  # once
    # A key is no login without its cookie, nor with another login's cookie.
    assert _verdict(door, X_Xmailnb_Key=key)[0] == 401
    other_cookie, other_key, _ticket = _login(door)
    assert _verdict(door, "/api/kernels", Cookie=other_cookie, X_Xmailnb_Key=key)[0] == 403
    assert _verdict(door, "/api/kernels", Cookie=other_cookie, X_Xmailnb_Key=other_key) is None
    assert _verdict(door, Authorization=f"token {GOOD}") is None
    assert _verdict(door, Authorization="token wrong-wrong-wrong-wrong")[0] == 401
    # Bound to this run of the server: a restart (same token) knows no cookie of before.
    restarted = _door()
    assert _verdict(restarted, Cookie=cookie, X_Xmailnb_Key=key)[0] == 401
    assert _verdict(door, Cookie=f"{door.cookie_name}=1")[0] == 401
    assert _verdict(door, Cookie="garbage;;==\x00")[0] == 401


def test_door_bootstrap_page_trades_the_stored_key_and_otherwise_asks_for_the_token():
    from xmailnb.dashboard.server import door_page

    page = door_page("bootstrap", "en", nonce="N0nce", key_name="xmailnb-key-8866")
    assert '<script nonce="N0nce">' in page and '"xmailnb-key-8866"' in page and '"/xmailnb/ticket"' in page
    assert '<main class="xm-door xm-door-login" hidden>' in page and 'name="token"' in page


def test_door_login_by_address_redirects_without_the_secret():
    door = _door()

    def target(location):
        path, _, rest = location.partition("#")
        assert re.fullmatch(r"xmailnb-key=[A-Za-z0-9_-]{43}", rest), rest
        return re.sub(r"[?&]xmailnb-page=[A-Za-z0-9_-]{32}$", "", path)

    v = door.verdict(_req(f"/?token={quote(GOOD)}"))
    assert (v.status, v.kind, target(v.location)) == (303, "enter", "/")
    v = door.verdict(_req(f"/?x=1&token={quote(GOOD)}&y=2"))
    assert (v.status, v.kind, target(v.location)) == (303, "enter", "/?x=1&y=2")
    assert _verdict(door, "/?token=wrong-token-0123456789")[:2] == (401, "login")
    assert _verdict(door, f"/?token={quote(GOOD)}", method="POST")[0] == 403  # tokens in URLs only to log in
    # no open redirect: the target is always a path on this server
    assert _verdict(door, f"//evil.example/?token={quote(GOOD)}")[2].startswith("/?xmailnb-page=")
    assert _verdict(door, f"/\\evil.example?token={quote(GOOD)}")[2].startswith("/?xmailnb-page=")
    # the one-time address works once
    assert _verdict(door, "/?login=one-time-code-0123456789")[0] == 303
    assert _verdict(door, "/?login=one-time-code-0123456789")[0] == 401
    stale = _door(login_code_ttl=-1)
    assert _verdict(stale, "/?login=one-time-code-0123456789")[0] == 401


def test_door_refuses_cross_site_and_rebinding_even_with_the_cookie():
    door = _door()
    cookie, key, _ticket = _login(door)
    for site in ("cross-site", "same-site", "Cross-Site"):
        assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Sec_Fetch_Site=site)[:2] == (403, "cross_site")
    for site in ("same-origin", "none"):
        assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Sec_Fetch_Site=site) is None
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Origin="http://evil.example")[0] == 403
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Origin="null")[0] == 403
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Origin="http://127.0.0.1:9999")[0] == 403
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Origin="http://127.0.0.1:8866") is None
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Host="attacker.example:8866")[:2] == (403, "host")
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Host="localhost:8866") is None
    assert _verdict(door, Cookie=cookie, X_Xmailnb_Key=key, Host="[::1]:8866") is None
    # the login form itself is refused from another site
    assert _verdict(door, "/xmailnb/login", method="POST", Origin="http://evil.example")[0] == 403
    assert _verdict(door, "/xmailnb/login", method="POST", Origin="http://127.0.0.1:8866") is None
    # bound to another address, names are not checked (the token is)
    remote = _door(loopback=False)
    remote_cookie, remote_key, _ticket = _login(remote)
    assert _verdict(remote, Cookie=remote_cookie, X_Xmailnb_Key=remote_key, Host="mail.example.jp:8866") is None


def test_door_kernel_query_socket_needs_its_key():
    door = _door()
    kid = "12345678-1234-1234-1234-123456789abc"
    assert _verdict(door, f"/xmailnb/query/query-key-0123456789abcdef/{kid}") is None
    assert _verdict(door, f"/xmailnb/query/wrong-key-0123456789abcdef/{kid}")[0] == 403
    assert _verdict(door, f"/voila/query/{kid}")[0] == 401  # Voilà's own route: cookie needed


def test_door_pages_speak_the_browsers_language():
    from xmailnb.dashboard.server import door_page

    door = _door()
    assert door.language(_req(Accept_Language="ja-JP,ja;q=0.9")) == "ja"
    assert door.language(_req(Accept_Language="en-US")) == "en"
    assert _door(page_lang="en").language(_req(Accept_Language="ja")) == "en"
    for kind in ("login", "cross_site", "host", "too_many", "refused"):
        ja, en = door_page(kind, "ja", max_pages=4), door_page(kind, "en", max_pages=4)
        assert 'lang="ja"' in ja and re.search(r"[\u3040-\u30ff]", ja) and 'lang="en"' in en
        assert "--" not in re.sub(r"<style>.*?</style>", "", en)  # no command-line talk in a page


def test_redact():
    from xmailnb.dashboard.server import LOG_FILTER

    line = (f"500 GET /voila/x?a=1&token={GOOD}&login=abcdef&xmailnb-key=K3y-value&xmailnb-page=T1cket "
            f"(127.0.0.1) Authorization: token {GOOD}")
    cleaned = LOG_FILTER.scrub(line)
    assert GOOD not in cleaned and "abcdef" not in cleaned and "a=1" in cleaned
    assert "K3y-value" not in cleaned and "T1cket" not in cleaned


# -- a real server, attacked over raw HTTP ------------------------------------------------

MAX_PAGES, PAGE_TIMEOUT = 3, 8


@pytest.fixture(scope="module")
def door_server(tmp_path_factory):
    server = Dashboard(tmp_path_factory.mktemp("door"), "--max-pages", str(MAX_PAGES),
                       "--page-timeout", str(PAGE_TIMEOUT))
    yield server
    server.stop()


def _kernel_ids(server) -> list[str]:
    import psutil

    ids = []
    for pid in server.kernel_pids():
        m = re.search(r"kernel-([0-9a-f-]{36})\.json", " ".join(psutil.Process(pid).cmdline()))
        if m:
            ids.append(m.group(1))
    return ids


def _ws_headers(**extra) -> dict[str, str]:
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **extra}


def _routes(server, cookie) -> list[tuple[str, str, dict]]:
    """Every route family the dashboard has: the page, its static files (taken
    from the page itself), Voilà's and jupyter_server's APIs, websockets."""
    page = server.request("GET", "/", cookie=cookie)
    assert page.status == 200 and "jupyter-config-data" in page.body
    statics = sorted(set(re.findall(r'(?:src|href)="(/[^"]+)"', page.body)))
    assert any(s.startswith("/voila/static/") for s in statics)
    assert any(s.startswith("/voila/templates/") for s in statics)
    kid = re.search(r'"kernelId": "([0-9a-f-]{36})"', page.body).group(1)
    routes = [("GET", "/", {}), ("GET", "/?x=1", {}), ("HEAD", "/", {}), ("GET", "/index.html", {}),
              ("GET", "/tree", {}), ("GET", "/login", {}), ("GET", "/logout", {}), ("GET", "/static/x.js", {}),
              ("GET", "/voila/labextensions/@voila-dashboards/widgets-manager8/package.json", {}),
              ("GET", "/voila/api/themes/@jupyterlab/theme-light-extension/index.css", {}),
              ("GET", "/voila/files/dashboard.ipynb", {}), ("GET", "/voila/render/dashboard.ipynb", {}),
              ("GET", "/api/kernels", {}), ("POST", "/api/kernels", {}), ("GET", f"/api/kernels/{kid}", {}),
              ("DELETE", f"/api/kernels/{kid}", {}), ("POST", f"/voila/api/shutdown/{kid}", {}),
              ("GET", "/api/sessions", {}), ("GET", "/api/contents", {}), ("GET", "/xmailnb/status", {}),
              ("GET", "/xmailnb/door.js", {}), ("GET", f"/api/kernels/{kid}/channels", _ws_headers()),
              ("GET", f"/voila/query/{kid}", _ws_headers()),
              ("GET", f"/xmailnb/query/{'A' * 43}/{kid}", _ws_headers()),
              ("PUT", "/", {}), ("OPTIONS", "/", {}), ("GET", "/%2e%2e/%2e%2e/etc/passwd", {})]
    routes += [("GET", s, {}) for s in statics]
    return routes


def test_no_response_without_the_token_on_any_route(door_server):
    server = door_server
    cookie = server.login_cookie()
    routes = _routes(server, cookie)
    kernels = len(server.kernel_pids())
    wrong = {"none": {}, "wrong header": {"Authorization": "token wrong-token-0123456789"},
             "forged cookie": {"Cookie": f"xmailnb-{server.port}=2|1:0|10:1796000000|12:xmailnb-{server.port}|4:MQ==|00"},
             "another port's cookie": {"Cookie": cookie.replace(f"xmailnb-{server.port}", "xmailnb-1")}}
    for label, extra in wrong.items():
        for method, path, headers in routes:
            resp = server.request(method, path, headers={**headers, **extra})
            assert resp.status in (401, 403), (label, method, path, resp.status)
            assert "jupyter-config-data" not in resp.body and "voila" not in resp.body.lower(), (label, path)
    # with the login cookie the page's own files are served: the test can fail
    statics = [path for method, path, _ in routes if path.startswith(("/voila/static/", "/voila/templates/"))]
    for path in [*statics, "/xmailnb/status", "/xmailnb/door.js"]:
        assert server.request("GET", path, cookie=cookie).status == 200, path
    assert len(server.kernel_pids()) <= kernels + 1  # only the one page loaded above


def test_login_cookie_is_http_only_and_strict_and_the_address_loses_the_token(door_server):
    server = door_server
    resp = server.request("GET", f"/?token={quote(server.token, safe='')}&lang=x")
    location = resp.header("Location")
    assert resp.status == 303 and re.fullmatch(r"/\?lang=x&xmailnb-page=[\w-]{32}#xmailnb-key=[\w-]{43}", location)
    cookies = resp.headers.get_all("Set-Cookie")
    login = next(c for c in cookies if c.startswith(f"xmailnb-{server.port}="))
    attrs = {a.strip().lower() for a in login.split(";")[1:]}
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    # a session cookie: the browser forgets it when it closes
    assert not any(a.startswith(("expires", "max-age")) for a in attrs), attrs
    assert server.token not in " ".join(cookies)
    cookie = login.split(";")[0]
    # the cookie alone gets the page that asks for the token, and no kernel
    alone = server.request("GET", "/", cookie=cookie, headers={"Accept-Language": "en"})
    assert alone.status == 200 and "jupyter-config-data" not in alone.body and 'name="token"' in alone.body
    csp = alone.header("Content-Security-Policy")
    assert re.search(r"script-src 'nonce-[\w-]+'", csp) and "connect-src 'self'" in csp
    # the address the login sent the browser to opens the page, once
    page = server.request("GET", location.split("#")[0], cookie=cookie, key=False)
    assert page.status == 200 and "jupyter-config-data" in page.body and server.token not in page.body
    # that page's kernel: its websocket and API need the key, not just the cookie
    kid = re.search(r'"kernelId": "([0-9a-f-]{36})"', page.body).group(1)
    key = location.split("#xmailnb-key=")[1]
    assert server.request("GET", f"/api/kernels/{kid}/channels?session_id=x", cookie=cookie, key=False,
                          headers=_ws_headers()).status == 403
    assert server.request("GET", f"/api/kernels/{kid}", cookie=cookie, key=False).status == 403
    assert server.request("GET", f"/api/kernels/{kid}", cookie=cookie, key=False,
                          headers={"X-Xmailnb-Key": key}).status == 200
    again = server.request("GET", location.split("#")[0], cookie=cookie, key=False)
    assert again.status == 200 and "jupyter-config-data" not in again.body
    # a reload trades the key (kept by the page's script) for a new ticket
    ticket = server.request("POST", "/xmailnb/ticket", cookie=cookie, key=False,
                            headers={"X-Xmailnb-Key": key, "Origin": f"http://127.0.0.1:{server.port}"})
    assert ticket.status == 200 and re.fullmatch(r"[\w-]{32}", ticket.body)
    assert server.request("POST", "/xmailnb/ticket", cookie=cookie, key=False).status == 403
    # the login form
    form = server.request("POST", "/xmailnb/login", body=f"token={quote(server.token)}".encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                   "Origin": f"http://127.0.0.1:{server.port}"})
    assert form.status == 303 and any(c.startswith(f"xmailnb-{server.port}=") for c in form.headers.get_all("Set-Cookie"))
    bad = server.request("POST", "/xmailnb/login", body=b"token=wrong-token-0123456789",
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Origin": f"http://127.0.0.1:{server.port}", "Accept-Language": "en"})
    assert bad.status == 401 and "not right" in bad.body


def test_token_is_in_no_process_list_nor_kernel_environment(door_server):
    import psutil

    server = door_server
    server.request("GET", "/", cookie=server.login_cookie())  # a page's kernel too
    serve = psutil.Process(server.proc.pid)
    processes = [serve, *serve.children(recursive=True)]
    kernels = server.kernel_pids()
    assert len(processes) >= 3 and kernels
    for proc in processes:
        assert server.token not in " ".join(proc.cmdline()), proc.cmdline()
        if proc.pid != serve.pid:  # serve itself read XMAILNB_TOKEN; nothing below it has it
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
            assert server.token.encode() not in environ and b"XMAILNB_TOKEN" not in environ, proc.cmdline()


def test_cross_site_requests_are_refused_without_starting_a_kernel(door_server):
    server = door_server
    cookie = server.login_cookie()
    server.wait_kernels(lambda n: n <= 1, timeout=PAGE_TIMEOUT * 6)
    before = len(server.kernel_pids())
    statuses = []
    # 50 cross-site GETs (what a hostile page makes the admin's browser send), even with the cookie
    for i in range(50):
        statuses.append(server.request("GET", f"/?i={i}", cookie=cookie, headers={"Sec-Fetch-Site": "cross-site",
                                                                                "Sec-Fetch-Mode": "no-cors"}).status)
    statuses.append(server.request("GET", "/", cookie=cookie, headers={"Origin": "http://evil.example"}).status)
    statuses.append(server.request("POST", "/voila/api/shutdown/x", cookie=cookie,
                                   headers={"Origin": "http://evil.example"}).status)
    kid = _kernel_ids(server)[0]
    statuses.append(server.request("GET", f"/api/kernels/{kid}/channels", cookie=cookie,
                                   headers=_ws_headers(Origin="http://evil.example")).status)
    statuses.append(server.request("GET", "/", cookie=cookie, headers={"Host": f"rebind.example:{server.port}"}).status)
    assert statuses == [403] * len(statuses)
    time.sleep(2)
    assert len(server.kernel_pids()) == before
    refusal = server.request("GET", "/", headers={"Sec-Fetch-Site": "cross-site", "Accept-Language": "ja"})
    assert refusal.status == 403 and "別の Web サイト" in refusal.body


def test_pages_are_capped_and_their_kernels_culled(door_server):
    server = door_server
    cookie = server.login_cookie()
    server.wait_kernels(lambda n: n <= 1, timeout=PAGE_TIMEOUT * 6)
    results: list[tuple[int, str]] = []
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], len(server.kernel_pids()))
            time.sleep(0.2)

    barrier = threading.Barrier(20)

    def get(i):
        barrier.wait()  # all at once: "open at the same time" is what is capped
        resp = server.request("GET", f"/?page={i}", cookie=cookie,
                              headers={"Accept-Language": "en", "Sec-Fetch-Site": "same-origin"})
        results.append((resp.status, resp.body))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        threads = [threading.Thread(target=get, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        time.sleep(3)  # the pool refills
    finally:
        done.set()
        watcher.join()
    statuses = [status for status, _ in results]
    assert sorted(set(statuses)) == [200, 503], statuses
    assert 1 <= statuses.count(200) <= MAX_PAGES
    refused = next(body for status, body in results if status == 503)
    assert "Too many open pages" in refused and "Close another tab" in refused
    # pages + the preheated kernel (+1 while the pool refills)
    assert peak[0] <= MAX_PAGES + 2, peak[0]
    # no page ever connected: every page's kernel is stopped after the timeout
    server.wait_kernels(lambda n: n <= 1, timeout=PAGE_TIMEOUT * 8)
    assert server.request("GET", "/", cookie=cookie).status == 200


def test_no_token_in_the_log_even_after_a_server_error(door_server):
    server = door_server
    token = quote(server.token, safe="")
    cookie = server.login_cookie()
    # Voilà's template file handler fails with a 500 on this path.
    broken = "/voila/templates/xmailnb/x"
    assert server.request("GET", broken, cookie=cookie).status == 500
    assert server.request("GET", f"{broken}?token={token}").status == 303  # never reaches the handler
    assert server.request("GET", f"{broken}?token={token}", cookie=cookie).status == 303
    assert server.request("GET", f"{broken}?a=1", cookie=cookie, headers={"Authorization": f"token {server.token}"}
                          ).status == 500
    server.request("GET", f"/?token={token}x")
    server.request("GET", f"/voila/static/nope.js?token={token}")
    server.request("POST", "/xmailnb/login", body=f"token={token}".encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    time.sleep(1)
    said = server.said
    assert f"500 GET {broken}" in said  # the errors were logged (the test can fail) ...
    assert server.token not in said and token not in said and server.token[:16] not in said  # ... without the token


def test_one_time_login_address_opens_the_browser(tmp_path):
    opened = tmp_path / "opened.txt"
    fake_browser = tmp_path / "fake-browser"
    fake_browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    fake_browser.chmod(fake_browser.stat().st_mode | stat.S_IXUSR)
    server = Dashboard(tmp_path / "srv", env={"BROWSER": str(fake_browser)}, open_browser=True,
                       wait_preheated=False)
    try:
        deadline = time.monotonic() + 30
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        url = opened.read_text().strip()
        assert re.fullmatch(rf"http://127\.0\.0\.1:{server.port}/\?login=[\w-]{{40,}}", url), url
        assert server.token not in url
        path = url.split(f":{server.port}", 1)[1]
        first = server.request("GET", path)
        assert first.status == 303
        assert re.fullmatch(r"/\?xmailnb-page=[\w-]{32}#xmailnb-key=[\w-]{43}", first.header("Location"))
        assert f"xmailnb-{server.port}=" in first.header("Set-Cookie")
        assert server.request("GET", path).status == 401  # used up
        time.sleep(0.5)
        assert "one-time login address" in server.said
    finally:
        server.stop()


def test_real_server_starts_and_stops_on_ctrl_c(tmp_path):
    server = Dashboard(tmp_path, wait_preheated=False)
    try:
        said = server.said
        assert "practice sandbox" in said
        assert f"http://127.0.0.1:{server.port}/" in said and "XMAILNB_TOKEN" in said
        assert server.token not in said
        page = server.request("GET", "/", cookie=server.login_cookie())
        assert page.status == 200
        assert "cdn.jsdelivr" not in page.body and "fontawesome" not in page.body.lower()
        assert 'src="https://' not in page.body and 'href="https://' not in page.body
        # the stock template (with its CDN links) cannot be asked for from the URL
        other = server.request("GET", "/?template=lab", cookie=server.login_cookie())
        assert other.status in (200, 503) and "cdn.jsdelivr" not in other.body
        pids = [server.proc.pid, *server.kernel_pids()]
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert "Dashboard stopped." in server.said and "KeyboardInterrupt" not in server.said
    time.sleep(1)
    import psutil

    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_server_dies_with_serve_even_on_kill_9(tmp_path):
    import signal

    import psutil

    server = Dashboard(tmp_path, wait_preheated=False)
    children = psutil.Process(server.proc.pid).children(recursive=True)
    assert children
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    gone, alive = psutil.wait_procs(children, timeout=40)
    assert alive == [], [p.cmdline() for p in alive]
    # the port is free again
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", server.port))


def test_open_address_still_needs_the_token(tmp_path):
    server = Dashboard(tmp_path, "--ip", "0.0.0.0", wait_preheated=False)
    try:
        assert "other machines can reach the dashboard" in server.said
        assert server.request("GET", "/").status == 401
        assert server.request("GET", "/", headers={"Host": f"mail.example.jp:{server.port}"}).status == 401
        assert server.request("GET", "/", cookie=server.login_cookie()).status == 200
    finally:
        server.stop()
