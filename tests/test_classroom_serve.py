"""`xmailnb classroom serve` as processes: a hub killed with SIGKILL leaves
its proxy, board, culler, a trainee's server and its kernel behind; the next
`serve` stops exactly those (by their recorded ids, identity checked) and
starts; the terminal stays quiet."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import free_block
from xmailnb.classroom import procs, roster
from xmailnb.dashboard.plan import check_port
from xmailnb.errors import InputError

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("configurable-http-proxy") is None,
                                 reason="the classroom needs configurable-http-proxy (npm install -g "
                                        "configurable-http-proxy, or apt-get install node-configurable-http-proxy)"),
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process records need /proc")]

READY = 240.0  # a loaded 2-core machine starts a hub in 20-40 s


def _xmailnb(*argv: str) -> list[str]:
    return [sys.executable, "-m", "xmailnb.cli.main", *argv]


def _serve(root: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMAILNB_")}
    return subprocess.Popen(_xmailnb("classroom", "serve", str(root), "--port", str(port), "--json",
                                     "--lang", "en"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def _ready(proc: subprocess.Popen) -> dict:
    """The one JSON document `serve --json` prints once the class is open."""
    lines = []
    deadline = time.monotonic() + READY
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"serve ended: {proc.wait()} {proc.stderr.read()}")
        lines.append(line)
        if line.rstrip("\n") == "}":
            return json.loads("".join(lines))
    pytest.fail("serve did not get ready")


def _start_server(base: str, name: str, password: str) -> None:
    """Log in as *name* with the login form and ask for their server, as the
    browser does after a login."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(base + "/hub/login", timeout=60).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    form = urllib.parse.urlencode({"username": name, "password": password, "_xsrf": xsrf}).encode()
    opener.open(urllib.request.Request(base + "/hub/login?next=%2Fhub%2Fhome", data=form), timeout=60).read()
    opener.open(base + "/hub/spawn", timeout=180).read()


def _role(ident: procs.ProcessId) -> str:
    for needle, role in (("configurable-http-proxy", "proxy"), ("xmailnb.classroom.board", "board"),
                         ("xmailnb.classroom.culler", "culler"), ("xmailnb.classroom.singleuser", "server"),
                         ("ipykernel", "kernel")):
        if needle in ident.cmdline:
            return role
    return ident.cmdline


def _alive(ident: procs.ProcessId) -> bool:
    return procs.identify(ident.pid) == ident


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_a_hub_killed_hard_leaves_nothing_that_blocks_the_next_serve(tmp_path):
    root = tmp_path / "class"
    from helpers import run

    doc = run("classroom", "init", str(root), "--trainer", "sato", "--trainees", "alice,bob", "--json").json
    password = {a["name"]: a["password"] for a in doc["accounts"]}
    room = roster.load(root)
    port = free_block()
    serve = _serve(root, port)
    stranger = None
    try:
        info = _ready(serve)
        assert info["url"] == f"http://127.0.0.1:{port}/hub/login"
        hub = procs.identify(info["pid"])
        _start_server(info["url"].rsplit("/hub/", 1)[0], "alice", password["alice"])

        def recorded_roles():
            cmds = [p.cmdline for p in procs.recorded(room) if _alive(p)]
            return (any("configurable-http-proxy" in c for c in cmds)
                    and any("xmailnb.classroom.board" in c for c in cmds)
                    and any("xmailnb.classroom.culler" in c for c in cmds)
                    and any("xmailnb.classroom.singleuser" in c for c in cmds)
                    and any("ipykernel" in c for c in cmds))

        _wait(recorded_roles, READY, "the trainee's server and its kernel to be recorded")
        # The server's (and its kernel's) messages go to its own log, not the terminal.
        assert (root / "hub" / "logs" / "alice.log").is_file()
        # A process that got a recorded id after the class's own ended: the
        # record names its id, but not its start time.
        stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        _wait(lambda: "time.sleep" in getattr(procs.identify(stranger.pid), "cmdline", ""), 30, "the stranger")
        os.kill(serve.pid, signal.SIGSTOP)  # so that it cannot clean up after the hub
        record_file = root / "hub" / "processes.json"
        record = json.loads(record_file.read_text())
        mine = procs.identify(stranger.pid)
        record["processes"].append({"pid": mine.pid, "start": mine.start - 1, "cmdline": mine.cmdline})
        record_file.write_text(json.dumps(record))
        left = [p for p in procs.recorded(room) if _alive(p) and p.pid != hub.pid and p.pid != stranger.pid]
        os.kill(hub.pid, signal.SIGKILL)
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait(timeout=30)
        serve.stdout.close()
        serve.stderr.close()
        time.sleep(1)
        survivors = [p for p in left if _alive(p)]
        # What holds the class's ports and memory outlives the hub (the culler
        # may end by itself once the hub's API is gone).
        assert {_role(p) for p in survivors} - {"culler"} == {"proxy", "board", "server", "kernel"}
        with pytest.raises(InputError):
            check_port("127.0.0.1", port, domain="classroom")  # the proxy still holds the class's port

        again = _serve(root, port)
        try:
            info = _ready(again)
            assert info["url"] == f"http://127.0.0.1:{port}/hub/login"
            assert [p for p in survivors if _alive(p)] == []
            assert procs.identify(stranger.pid) == mine  # a reused id is never stopped
            again.send_signal(signal.SIGINT)
            assert again.wait(timeout=120) == 0
            err = again.stderr.read()
        finally:
            if again.poll() is None:
                again.kill()
                again.wait()
        # Some leftovers end on their own once the hub is gone (the culler):
        # the message counts those that were still running.
        lines = err.splitlines()
        stopped = re.fullmatch(r"Stopped (\d+) processes the class had left behind "
                               r"\(a hub that was killed outright\)\.", lines[0])
        assert stopped and 3 <= int(stopped.group(1)) <= len(survivors), lines[0]
        # Quiet: what the trainer reads, nothing else (no proxy lines, no warnings).
        assert lines[1:] == [
            f"The class is open at http://127.0.0.1:{port}/hub/login (class folder {root}).",
            "The trainer sato lands on the class board; each of the 2 trainees on their own workbook.",
            "Press Ctrl-C to stop the class (the hub, its proxy and every trainee's server).",
            "The class was stopped: hub, proxy and every trainee's server.",
        ]
        assert procs.leftover_pids(room) == []
        check_port("127.0.0.1", port, domain="classroom")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if stranger is not None:
            stranger.kill()
            stranger.wait()
        procs.stop_leftover_servers(room, grace=5)


def test_the_class_is_served_over_https_with_the_given_certificate(tmp_path):
    import http.client
    import ssl

    import pki
    from helpers import run

    root = tmp_path / "class"
    assert run("classroom", "init", str(root), "--trainer", "sato", "--trainees", "alice").code == 0
    leaf = pki.self_signed_leaf("127.0.0.1", sans=["127.0.0.1"])
    cert, key = tmp_path / "class.crt", tmp_path / "class.key"
    cert.write_bytes(leaf.pem)
    key.write_bytes(leaf.key_pem())
    key.chmod(0o600)
    port = free_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMAILNB_")}
    serve = subprocess.Popen(_xmailnb("classroom", "serve", str(root), "--port", str(port), "--json", "--lang", "en",
                                      "--ssl-cert", str(cert), "--ssl-key", str(key)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             start_new_session=True)
    try:
        info = _ready(serve)
        assert info["url"] == f"https://127.0.0.1:{port}/hub/login"
        context = ssl.create_default_context(cafile=str(cert))  # verifies the chain and the name
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        conn.connect()
        served = conn.sock.getpeercert(binary_form=True)  # before the answer: a closing answer drops the socket
        conn.request("GET", "/hub/login")
        response = conn.getresponse()
        assert response.status == 200 and b'name="password"' in response.read()
        assert served == leaf.der
        conn.close()
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            plain.request("GET", "/hub/login")
            plain.getresponse().read()
        assert json.loads((root / "hub" / "address.json").read_text()) == {"served": info["url"]}
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=120) == 0
        assert serve.stderr.read().splitlines() == [
            f"The class is open at https://127.0.0.1:{port}/hub/login (class folder {root}).",
            "The trainer sato lands on the class board; the trainee on their own workbook.",
            "Press Ctrl-C to stop the class (the hub, its proxy and every trainee's server).",
            "The class was stopped: hub, proxy and every trainee's server.",
        ]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        procs.stop_leftover_servers(roster.load(root), grace=5)
