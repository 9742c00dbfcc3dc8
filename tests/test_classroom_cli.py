"""`xmailnb classroom`: class folder, accounts, hashes, names, configuration,
the hub's authenticator and the board's report endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from helpers import CSR_ARGS, free_block, run, tree
from xmailnb.classroom import hubconfig, procs, roster
from xmailnb.classroom.readout import snapshot
from xmailnb.classroom.report import BOARD_CLASSES

pytestmark = pytest.mark.slow  # JupyterHub processes


def _run_async(coro):
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps
    an event loop running in the main thread for the whole session."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _init(tmp_path, *trainees, trainer="sato", extra=()):
    return run("classroom", "init", str(tmp_path / "class"), "--trainer", trainer,
               "--trainees", ",".join(trainees or ("alice", "bob")), *extra)


def _all_bytes(root):
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            yield os.path.join(dirpath, name), open(os.path.join(dirpath, name), "rb").read()


def test_init_creates_the_class_with_hashed_passwords_only(tmp_path):
    result = _init(tmp_path, extra=("--json",))
    assert result.code == 0, result.err
    doc = json.loads(result.out)  # exactly one JSON document on stdout
    assert set(doc) == {"accounts", "url", "url_hint", "slips"}
    assert [(a["name"], a["role"]) for a in doc["accounts"]] == [("sato", "trainer"), ("alice", "trainee"),
                                                                ("bob", "trainee")]
    assert all(set(a) == {"name", "password", "role"} for a in doc["accounts"])
    assert doc["url_hint"].endswith("/hub/login")
    passwords = {a["name"]: a["password"] for a in doc["accounts"]}
    assert len(set(passwords.values())) == 3 and all(len(p) >= 12 for p in passwords.values())
    root = tmp_path / "class"
    # Stored only as hashes: no password in any file of the class.
    for path, data in _all_bytes(root):
        for password in passwords.values():
            assert password.encode() not in data, path
    room = roster.load(root)
    hashes = roster.password_hashes(room)
    for name, password in passwords.items():
        assert hashes[name].startswith("scrypt$")
        assert roster.verify_password(password, hashes[name])
        assert not roster.verify_password(password + "x", hashes[name])
    assert stat.S_IMODE(os.stat(root / "hub" / "passwords.json").st_mode) == 0o600
    for folder in (root, root / "hub", root / "users", root / "users" / "alice"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    # One sandbox each, each its own, with its own practice ports.
    for name in passwords:
        box = room.sandbox(name)
        assert (box / "server.tab").is_file() and (box / "sslconf" / "xmailnb-sandbox.txt").is_file()
    ports = [p for a in room.accounts for p in (a.smtp_port, a.pop3s_port)]
    assert len(ports) == len(set(ports))
    assert "passwords" in result.err and "only this once" in result.err


def test_init_prints_a_table_in_the_users_language(tmp_path):
    result = _init(tmp_path, extra=("--lang", "ja"))
    assert result.code == 0
    assert "講師" in result.out and "受講者" in result.out
    assert roster.load(tmp_path / "class").lang == "ja"
    assert all(a.lang == "ja" for a in roster.load(tmp_path / "class").accounts)


@pytest.mark.parametrize("names,trainer,key", [
    (("Alice",), "sato", "classroom.name.invalid"),
    (("1bob",), "sato", "classroom.name.invalid"),
    (("a" * 33,), "sato", "classroom.name.invalid"),
    (("al.ice",), "sato", "classroom.name.invalid"),
    (("alice", "alice"), "sato", "classroom.name.duplicate"),
    (("sato",), "sato", "classroom.name.duplicate"),
    (("admin",), "sato", "classroom.name.reserved"),
    (("bob",), "../x", "classroom.name.invalid"),
    (("bob",), "", "classroom.name.invalid"),
])
def test_bad_names_are_refused_and_nothing_is_created(tmp_path, names, trainer, key):
    result = _init(tmp_path, *names, trainer=trainer, extra=("--json",))
    assert result.code == 1
    assert json.loads(result.out)["error"]["key"] == key
    assert not (tmp_path / "class").exists()


def test_a_bad_name_is_explained_in_japanese(tmp_path):
    result = _init(tmp_path, "Tanaka", extra=("--lang", "ja"))
    assert result.code == 1 and "ログイン名に使えません" in result.err and "英小文字" in result.err


def test_a_used_folder_is_refused(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "notes.txt").write_text("mine")
    result = _init(tmp_path)
    assert result.code == 1 and "not empty" in result.err
    assert sorted(os.listdir(tmp_path / "class")) == ["notes.txt"]
    other = tmp_path / "other"
    assert run("classroom", "init", str(other), "--trainer", "t", "--trainees", "a").code == 0
    before = tree(other)
    result = run("classroom", "init", str(other), "--trainer", "t", "--trainees", "b")
    assert result.code == 1 and "classroom add" in result.err
    assert tree(other) == before


def test_add_gives_new_trainees_their_own_sandbox_and_password(tmp_path):
    first = json.loads(_init(tmp_path, extra=("--json",)).out)
    root = tmp_path / "class"
    old_hashes = roster.password_hashes(roster.load(root))
    result = run("classroom", "add", str(root), "carol", "dave", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert [(a["name"], a["role"]) for a in doc["accounts"]] == [("carol", "trainee"), ("dave", "trainee")]
    room = roster.load(root)
    hashes = roster.password_hashes(room)
    assert {k: hashes[k] for k in old_hashes} == old_hashes  # the others' passwords still work
    for account in doc["accounts"]:
        assert roster.verify_password(account["password"], hashes[account["name"]])
        assert (room.sandbox(account["name"]) / "server.tab").is_file()
    ports = [p for a in room.accounts for p in (a.smtp_port, a.pop3s_port)]
    assert len(ports) == len(set(ports)) == 10
    assert len(first["accounts"]) == 3
    before = tree(root)
    result = run("classroom", "add", str(root), "erin", "alice")
    assert result.code == 1 and "alice" in result.err
    assert tree(root) == before  # not even erin was added
    result = run("classroom", "add", str(tmp_path / "nothing"), "x")
    assert result.code == 2 and "no class" in result.err


def test_config_names_everything_and_holds_no_secret(tmp_path):
    doc = json.loads(_init(tmp_path, extra=("--json",)).out)
    root = tmp_path / "class"
    result = run("classroom", "config", str(root), "--port", "8100")
    assert result.code == 0
    text = result.out
    for account in doc["accounts"]:
        assert account["password"] not in text
    assert "scrypt$" not in text
    compile(text, "jupyterhub_config.py", "exec")
    from traitlets.config import Config

    c = Config()
    exec(text, {"get_config": lambda: c})
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8100/"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8101"
    assert c.JupyterHub.authenticator_class == "xmailnb.classroom.hub.ClassAuthenticator"
    assert c.Spawner.cmd[-1] == "xmailnb.classroom.singleuser"
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["class-board"]["url"] == "http://127.0.0.1:8103"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    # Only the trainer can open the board.
    assert roles["xmailnb-trainer"]["users"] == ["sato"]
    assert roles["xmailnb-trainer"]["scopes"] == ["access:services!service=class-board"]
    assert "custom:xmailnb:report!user" in c.Spawner.server_token_scopes
    assert callable(c.JupyterHub.default_url)
    remote = run("classroom", "config", str(root), "--ip", "0.0.0.0", "--port", "8100", "--allow-http").out
    assert "'http://0.0.0.0:8100/'" in remote and "'http://127.0.0.1:8101'" in remote


def test_serve_refuses_a_busy_port_clearly(tmp_path):
    _init(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("classroom", "serve", str(tmp_path / "class"), "--port", str(port))
    assert result.code == 1 and f"Port {port}" in result.err and "--port" in result.err


def test_the_hub_authenticator_checks_the_hashes(tmp_path):
    from xmailnb.classroom.hub import ClassAuthenticator

    doc = json.loads(_init(tmp_path, extra=("--json",)).out)
    passwords = {a["name"]: a["password"] for a in doc["accounts"]}
    auth = ClassAuthenticator(class_dir=str(tmp_path / "class"))

    def login(name, password):
        return _run_async(auth.authenticate(None, {"username": name, "password": password}))

    assert login("alice", passwords["alice"]) == "alice"
    assert login("alice", passwords["bob"]) is None
    assert login("mallory", passwords["alice"]) is None
    assert login("alice", "") is None
    assert auth.check_allowed("bob") and not auth.check_allowed("mallory")
    # Added while the hub runs: can log in at once.
    added = json.loads(run("classroom", "add", str(tmp_path / "class"), "carol", "--json").out)
    assert login("carol", added["accounts"][0]["password"]) == "carol"


def test_malformed_hashes_never_match():
    for stored in ("", "plain", "scrypt$1$2$3$x$y", "scrypt$99999999$8$1$AAAA$AAAA", "bcrypt$..."):
        assert roster.verify_password("anything", stored) is False


def test_the_report_is_the_one_progress_rule(tmp_path):
    from xmailnb.checks.progress import step_progress
    from xmailnb.mailroot.sandbox import create_sandbox

    mr = create_sandbox(tmp_path / "sandbox-MailRoot")
    doc = snapshot(mr)
    assert doc["steps"] == {str(k): str(v) for k, v in step_progress(mr).states.items()}
    assert doc["generation"] == 0 and doc["problems"]
    assert set(doc["problems"][0]["message"]) == {"ja", "en"}
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    assert snapshot(mr)["steps"]["csr"] == "done"
    assert BOARD_CLASSES == {"done": "xm-ok", "attention": "xm-warn", "broken": "xm-error", "todo": "xm-pending"}


def test_leftovers_are_only_this_class_processes(tmp_path):
    _init(tmp_path)
    room = roster.load(tmp_path / "class")
    other = tmp_path / "class-other"
    env = dict(os.environ)
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            env={**env, "XMAILNB_DATA_DIR": str(room.data_dir("alice"))})
    theirs = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              env={**env, "XMAILNB_CLASS_DIR": str(other)})
    try:
        deadline = time.monotonic() + 5
        while mine.pid not in procs.leftover_pids(room) and time.monotonic() < deadline:
            time.sleep(0.05)
        found = procs.leftover_pids(room)
        assert mine.pid in found and theirs.pid not in found
        procs.stop_leftover_servers(room)
        assert mine.wait(timeout=10) is not None
        assert theirs.poll() is None
    finally:
        for p in (mine, theirs):
            p.kill()
            p.wait()


def test_plan_rejects_ports_without_room_for_the_internal_ones(tmp_path):
    from xmailnb.errors import UsageError

    _init(tmp_path)
    with pytest.raises(UsageError):
        hubconfig.plan(roster.load(tmp_path / "class"), port=65534)


def test_serve_says_how_to_install_the_proxy(tmp_path, monkeypatch):
    _init(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no configurable-http-proxy anywhere
    port = free_block()  # the class's port and the three after it
    result = run("classroom", "serve", str(tmp_path / "class"), "--port", str(port), "--lang", "ja")
    assert result.code == 2
    assert "configurable-http-proxy" in result.err and "npm install -g" in result.err and "apt-get" in result.err


def test_classroom_help_in_both_languages():
    for lang in ("en", "ja"):
        result = run("classroom", "init", "--help", "--lang", lang)
        assert result.code == 0


def test_serve_off_loopback_wants_https_or_says_allow_http(tmp_path):
    _init(tmp_path)
    root = tmp_path / "class"
    before = tree(root)
    result = run("classroom", "serve", str(root), "--ip", "0.0.0.0", "--json")
    assert result.code == 2
    error = json.loads(result.out)["error"]
    assert error["key"] == "classroom.serve.http_refused" and error["field"] == "ip"
    assert "--ssl-cert" in error["fix"] and "--allow-http" in error["fix"]
    assert tree(root) == before  # nothing started, nothing written
    ja = run("classroom", "serve", str(root), "--ip", "192.0.2.10", "--lang", "ja")
    assert ja.code == 2 and "暗号化されずに" in ja.err and "--allow-http" in ja.err
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    for argv, expected in (((("--ssl-cert", str(cert))), "classroom.ssl.pair"),
                           (("--ssl-cert", str(cert), "--ssl-key", str(tmp_path / "none")), "classroom.ssl.missing")):
        result = run("classroom", "config", str(root), "--ip", "0.0.0.0", *argv, "--json")
        assert json.loads(result.out)["error"]["key"] == expected
    from traitlets.config import Config

    doc = json.loads(run("classroom", "config", str(root), "--ip", "0.0.0.0", "--port", "8100",
                         "--ssl-cert", str(cert), "--ssl-key", str(key), "--json").out)
    assert doc["url"] == "https://127.0.0.1:8100/hub/login"
    c = Config()
    exec(doc["config"], {"get_config": lambda: c})
    assert c.JupyterHub.bind_url == "https://0.0.0.0:8100/"
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == (str(cert), str(key))
    assert c.ConfigurableHTTPProxy.log_level == "error"  # a quiet terminal
    allowed = json.loads(run("classroom", "config", str(root), "--ip", "0.0.0.0", "--allow-http", "--json").out)
    assert allowed["url"] == "http://127.0.0.1:8000/hub/login"


def test_each_trainees_server_writes_to_its_own_log(tmp_path, monkeypatch):
    from xmailnb.classroom import hub
    from xmailnb.errors import InputError

    _init(tmp_path)
    root = tmp_path / "class"
    path = hub.server_log(str(root), "alice")
    assert path == root / "hub" / "logs" / "alice.log"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    path.write_bytes(b"old\n")
    monkeypatch.setattr(hub, "MAX_SERVER_LOG", 3)
    assert hub.server_log(str(root), "alice") == path  # grown too large: set aside, a new one begun
    assert (path.parent / "alice.log.1").read_bytes() == b"old\n" and path.read_bytes() == b""
    with pytest.raises(InputError):
        hub.server_log(str(root), "../bob")


def _config(root, *extra):
    from traitlets.config import Config

    result = run("classroom", "config", str(root), "--port", "8100", *extra)
    assert result.code == 0, result.err
    c = Config()
    exec(result.out, {"get_config": lambda: c})
    return c


def _spawned_env(c, root) -> dict:
    """The environment JupyterHub gives alice's server under config *c*."""
    from types import SimpleNamespace

    from xmailnb.classroom.hub import ClassSpawner

    spawner = ClassSpawner(config=c, class_dir=str(root),
                           user=SimpleNamespace(name="alice", escaped_name="alice", url="/user/alice/"),
                           hub=SimpleNamespace(public_host="", api_url="http://127.0.0.1:8101/hub/api",
                                               base_url="/hub/"))
    return spawner.get_env()


@pytest.mark.parametrize("extra, env, value", [(("--verbose",), {}, "info"),
                                               ((), {"XMAILNB_LOG": "debug"}, "debug")])
def test_serve_verbose_reaches_the_trainees_servers_and_the_board(tmp_path, monkeypatch, extra, env, value):
    _init(tmp_path, "alice")
    root = tmp_path / "class"
    monkeypatch.delenv("XMAILNB_LOG", raising=False)
    quiet = _config(root)
    assert "XMAILNB_LOG" not in _spawned_env(quiet, root)
    assert all("XMAILNB_LOG" not in s["environment"] for s in quiet.JupyterHub.services)

    for name, val in env.items():
        monkeypatch.setenv(name, val)
    loud = _config(root, *extra)
    # JupyterHub starts a server with the environment it is told to give:
    # the hub's own (which has XMAILNB_LOG) does not reach it by itself.
    assert _spawned_env(loud, root)["XMAILNB_LOG"] == value
    services = {s["name"]: s for s in loud.JupyterHub.services}
    assert services["class-board"]["environment"]["XMAILNB_LOG"] == value


def test_a_class_server_follows_the_log_it_is_given_without_showing_tokens():
    # What the trainee's server and the board do first in main().
    code = ("import logging\n"
            "from xmailnb.logs import follow_in_service\n"
            "logging.basicConfig(level=logging.WARNING)\n"
            "follow_in_service()\n"
            "logging.getLogger('xmailnb.classroom.x').info('token=abcdef0123456789 seen')\n")
    env = {**os.environ, "XMAILNB_LOG": "info"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "seen" in result.stderr and "abcdef0123456789" not in result.stderr
    quiet = {k: v for k, v in env.items() if k != "XMAILNB_LOG"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=quiet, timeout=120)
    assert "seen" not in result.stderr
