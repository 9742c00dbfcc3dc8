"""``xmailnb serve``: the command it builds, and a real dashboard server
answering on loopback, with and without a token."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import interrupt, run
from xmailnb import serving
from xmailnb.errors import UsageError
from xmailnb.mailroot import resolve

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox():
    return resolve(None)


def test_loopback_by_default_without_token(sandbox):
    plan = serving.plan(sandbox, lang="ja")
    assert "--Voila.ip=127.0.0.1" in plan.argv
    assert plan.token == "" and "token" not in plan.config["Voila"]
    assert plan.url == f"http://127.0.0.1:{serving.DEFAULT_PORT}/"
    assert plan.env["MAIL_ROOT"] == str(sandbox.path)
    assert plan.env["XMAILNB_LANG"] == "ja"
    # our template (no CDN), no way to switch back to the stock one from the URL
    assert "--template=xmailnb" in plan.argv
    assert "--VoilaConfiguration.allow_template_override=NO" in plan.argv
    assert "--show_tracebacks=False" in plan.argv and "--strip_sources=True" in plan.argv
    assert plan.argv[1:3] == ["-m", "voila"] and Path(plan.argv[3]).is_file()


def test_other_address_gets_a_generated_token_kept_off_the_command_line(sandbox):
    plan = serving.plan(sandbox, lang="en", ip="0.0.0.0", port=9999,
                        environ={"JUPYTER_TOKEN": "leak", "PATH": "/usr/bin"})
    assert plan.token_generated and len(plan.token) >= 32
    assert plan.config["Voila"]["token"] == plan.token
    assert plan.url == f"http://127.0.0.1:9999/?token={plan.token}"
    assert not any(plan.token in a for a in plan.argv)
    assert plan.token not in plan.env.values() and "JUPYTER_TOKEN" not in plan.env
    given = serving.plan(sandbox, lang="en", ip="192.0.2.1", token="s3cret-token")
    assert given.token == "s3cret-token" and not given.token_generated


def test_config_file_is_private(sandbox, tmp_path):
    plan = serving.plan(sandbox, lang="en", ip="0.0.0.0")
    path = plan.write_config(tmp_path)
    assert path.stat().st_mode & 0o077 == 0
    assert plan.token in path.read_text()


def test_empty_token_on_open_address_is_refused(sandbox):
    with pytest.raises(UsageError):
        serving.plan(sandbox, lang="en", ip="0.0.0.0", token="")
    r = run("serve", "--ip", "0.0.0.0", "--token", "", "--no-browser", "--lang", "en")
    assert r.code == 2 and "token" in r.err


def test_busy_port_is_a_clear_refusal():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("serve", "--port", str(port), "--no-browser", "--lang", "en")
    assert r.code == 1
    assert f"Port {port}" in r.err and "--port" in r.err


def test_bad_port_is_a_usage_error():
    assert run("serve", "--port", "70000", "--no-browser").code == 2


def test_dashboard_shipped_in_package_matches_repository():
    assert serving.dashboard_notebook().read_bytes() == (ROOT / "notebooks" / "dashboard.ipynb").read_bytes()


def test_template_links_nothing_from_another_host():
    folder = serving.share_dir() / "jupyter" / "voila" / "templates" / serving.TEMPLATE
    for path in folder.iterdir():
        body = path.read_text(encoding="utf-8")
        assert not re.search(r"""(href|src|import)\s*[=(]\s*["']https?://""", body), path.name
        assert "cdn" not in body.lower().replace("cdn #}", "").replace("a cdn", ""), path.name


class Server:
    """``xmailnb serve`` as a user starts it; stderr goes to a file (a pipe
    nobody reads could fill up and block the server)."""

    def __init__(self, port: int, *extra: str, env: dict[str, str]):
        self.port = port
        self.log = Path(env["XMAILNB_DATA_DIR"]).parent / f"serve-{port}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "xmailnb", "serve", "--port", str(port),
                                          "--no-browser", "--lang", "en", *extra],
                                         env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            if "Press Ctrl-C" in self.said:
                return
            time.sleep(0.2)
        self.stop()
        raise AssertionError("server did not start:\n" + self.said)

    @property
    def said(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, **headers: str) -> tuple[int, str, str]:
        """GET without following redirects: (status, Location, body)."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
            with opener.open(request, timeout=60) as resp:
                return resp.status, "", resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Location", ""), ""

    def stop(self) -> tuple[int, str]:
        interrupt(self.proc)
        return self.proc.returncode, self.said


@pytest.fixture
def server_env(tmp_path):
    env = dict(os.environ)
    env.pop("MAIL_ROOT", None)
    env["XMAILNB_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_real_server_answers_on_loopback_and_stops_on_ctrl_c(server_env):
    server = Server(free_port(), env=server_env)
    try:
        assert "practice sandbox" in server.said
        assert f"http://127.0.0.1:{server.port}/" in server.said
        status, _, body = server.get("/")
        assert status == 200
        assert "cdn.jsdelivr" not in body and "fontawesome" not in body.lower()
        assert 'src="https://' not in body and 'href="https://' not in body
        # a page that rebinds its DNS name to 127.0.0.1 is not served
        assert server.get("/", Host=f"attacker.example:{server.port}")[0] == 403
        # the stock template (with its CDN links) cannot be asked for from the URL
        status, _, body = server.get("/?template=lab")
        assert status == 200 and "cdn.jsdelivr" not in body
    finally:
        code, said = server.stop()
    assert code == 0 and "Dashboard stopped." in said and "KeyboardInterrupt" not in said


def test_open_address_refuses_requests_without_the_token(server_env):
    server = Server(free_port(), "--ip", "0.0.0.0", env=server_env)
    try:
        token = re.search(r"\?token=([\w-]+)", server.said).group(1)
        assert "Access token" in server.said
        status, location, _ = server.get("/")
        assert status in (302, 403) and (status == 403 or "/login" in location)
        assert server.get("/?token=wrong-token")[0] in (302, 403)
        assert server.get("/api/kernels")[0] in (302, 403)
        status, _, body = server.get(f"/?token={token}")
        assert status == 200 and "jupyter-config-data" in body
    finally:
        code, _said = server.stop()
    assert code == 0
