"""The log file: where an internal error leaves its traceback, without secrets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from helpers import CSR_ARGS, run, tree
from xmailnb import logs
from xmailnb.errors import UsageError
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.mailroot.store import committed_entries


def test_unexpected_error_goes_to_the_state_folder_with_traceback_and_no_secrets():
    log = logging.getLogger("xmailnb.test")
    try:
        raise RuntimeError("boom with token=abcdef0123456789 and -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
    except RuntimeError as exc:
        path = logs.log_unexpected(log, "testing", exc)
    assert path == logs.log_path() and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "Traceback" in text and "unexpected error while testing" in text
    assert "abcdef0123456789" not in text and "MIIB" not in text
    assert path.parent.stat().st_mode & 0o077 == 0


# -- the log a user switches on: --verbose, XMAILNB_LOG -------------------------------

LOG_PREFIX = "xmailnb: "


def _signed_sandbox(tmp_path):
    """A sandbox with a CSR signed by its practice CA, not installed yet."""
    mr = create_sandbox(tmp_path / "MailRoot")
    r = run("csr", "--mailroot", str(mr.path), *CSR_ARGS)
    assert r.code == 0, r.err
    assert [line for line in r.err.splitlines() if line.startswith(LOG_PREFIX)] == []
    r = run("practice-ca", "sign", "--mailroot", str(mr.path), "--json")
    assert r.code == 0, r.err
    return mr, r.json["files"]


def _log_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(LOG_PREFIX)]


def _assert_no_key_material(mr, text: str) -> None:
    assert "PRIVATE KEY" not in text
    key_lines = [line for line in mr.server_key.read_text().splitlines()[1:-1] if len(line) > 16]
    assert key_lines and not [line for line in key_lines if line in text]


@pytest.mark.parametrize("how", ["--verbose", "XMAILNB_LOG=debug", "XMAILNB_LOG=info"])
def test_a_switched_on_log_shows_the_store_change_on_stderr(tmp_path, monkeypatch, how):
    mr, files = _signed_sandbox(tmp_path)
    flag = [how] if how == "--verbose" else []
    if how.startswith("XMAILNB_LOG="):
        monkeypatch.setenv("XMAILNB_LOG", how.partition("=")[2])
    r = run("install", "--mailroot", str(mr.path), "--cert", files["server"], "--chain", files["intermediate"],
            "--lang", "en", *flag)
    assert r.code == 0, r.err
    entry = committed_entries()[-1]
    assert entry.action == "install"
    store_lines = [line for line in _log_lines(r.err) if " xmailnb.mailroot.store: " in line]
    assert store_lines == [
        f"xmailnb: INFO xmailnb.mailroot.store: install in {mr.path}: wrote server.cert, server.key; "
        f"removed none; previous versions archived as {entry.id} ({entry.path}): none"]
    if how != "XMAILNB_LOG=debug":
        assert _log_lines(r.err) == store_lines
    _assert_no_key_material(mr, r.err)
    assert "Installed." in r.err  # the command's own messages stay


def test_without_verbose_stderr_has_no_log_lines(tmp_path):
    mr, files = _signed_sandbox(tmp_path)
    r = run("install", "--mailroot", str(mr.path), "--cert", files["server"], "--chain", files["intermediate"],
            "--lang", "en")
    assert r.code == 0, r.err
    assert _log_lines(r.err) == []
    assert "Installed." in r.err


def test_verbose_before_the_command_works_too(tmp_path):
    mr, files = _signed_sandbox(tmp_path)
    r = run("--verbose", "install", "--mailroot", str(mr.path), "--cert", files["server"],
            "--chain", files["intermediate"])
    assert r.code == 0, r.err
    assert len([line for line in _log_lines(r.err) if " xmailnb.mailroot.store: install in " in line]) == 1


def test_an_unknown_xmailnb_log_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    mr, files = _signed_sandbox(tmp_path)
    before = tree(mr.path)
    monkeypatch.setenv("XMAILNB_LOG", "loud")
    r = run("install", "--mailroot", str(mr.path), "--cert", files["server"], "--chain", files["intermediate"],
            "--lang", "en")
    assert r.code == 2
    assert r.err == "XMAILNB_LOG=loud is not a log level.\nSet XMAILNB_LOG to debug or info, or unset it.\n"
    assert tree(mr.path) == before
    r = run("install", "--mailroot", str(mr.path), "--cert", files["server"], "--chain", files["intermediate"],
            "--lang", "ja")
    assert r.code == 2 and "XMAILNB_LOG=loud はログレベルとして使えません。" in r.err


def test_the_log_handler_is_gone_after_the_command():
    root = logging.getLogger("xmailnb")
    handlers, level = list(root.handlers), root.level
    assert run("--verbose", "sandbox").code == 0
    assert root.handlers == handlers and root.level == level


def test_one_scrubber_for_every_log_the_dashboard_server_included():
    from xmailnb.dashboard import server

    token = "Zq9" * 16
    line = (f"500 GET /voila/x?a=1&token={token}&login=abcdef&xmailnb-key=K3y-value&xmailnb-page=T1cket "
            f"(127.0.0.1) Authorization: token {token} -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
    assert logs.scrub(line) == (
        "500 GET /voila/x?a=1&token=[hidden]&login=[hidden]&xmailnb-key=[hidden]&xmailnb-page=[hidden] "
        "(127.0.0.1) Authorization: token [hidden] [private key hidden]")
    assert logs.scrub("GET /hub/api?access_token=abcdef0123456789&x=1") == "GET /hub/api?access_token=[hidden]&x=1"
    assert server.SecretFilter is logs.SecretFilter
    record = logging.LogRecord("tornado.access", logging.ERROR, __file__, 1, "%s", (line,), None)
    assert logs.SecretFilter().filter(record) and record.getMessage() == logs.scrub(line)


def test_servers_started_by_a_verbose_command_get_its_level():
    assert logs.child_environ(logging.INFO, {"A": "1"}) == {"A": "1", "XMAILNB_LOG": "info"}
    assert logs.child_environ(logging.DEBUG, {"XMAILNB_LOG": "info"}) == {"XMAILNB_LOG": "debug"}
    assert logs.child_environ(None, {"A": "1"}) == {"A": "1"}


def test_serve_verbose_hands_the_level_to_the_dashboard_server(monkeypatch):
    from xmailnb.cli import serve

    seen: dict[str, str] = {}

    def plan(mailroot, **kw):
        seen.update(kw["environ"])
        raise UsageError.of("serve.no_notebook", "serve.no_notebook.fix", path="-")

    monkeypatch.setattr(serve.serving, "plan", plan)
    assert run("serve", "--verbose", "--no-browser").code == 2
    assert seen["XMAILNB_LOG"] == "info"
    seen.clear()
    assert run("serve", "--no-browser").code == 2
    assert "XMAILNB_LOG" not in seen and seen


@pytest.mark.parametrize("value, expected", [
    ("info", "xmailnb: INFO xmailnb.kernel: saved with token=[hidden]\n"),
    ("", ""),
    ("loud", ""),  # the command that started the process refused it already
])
def test_a_started_server_follows_xmailnb_log_through_the_filter(value, expected):
    code = ("import logging; from xmailnb import logs; logs.follow_environment(); "
            "logging.getLogger('xmailnb.kernel').info('saved with token=%s', 'abcdef0123456789')")
    env = {**os.environ, "XMAILNB_LOG": value}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == expected


def test_a_dashboard_kernel_logs_to_the_terminal_not_to_the_page(tmp_path):
    from jupyter_client.manager import KernelManager

    code = ("from xmailnb.dashboard.page import wait_for_page\npage = wait_for_page()\nimport logging\n"
            "logging.getLogger('xmailnb.mailroot.store').info('install in /x: token=%s', 'abcdef0123456789')")
    with open(tmp_path / "stderr", "w+b") as terminal:
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env={**os.environ, "XMAILNB_LOG": "info"}, stderr=terminal, stdout=subprocess.DEVNULL)
        kc = km.client()
        try:
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            msg_id = kc.execute(code)
            page = []
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] in ("stream", "error"):
                    page.append(msg["content"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        terminal.seek(0)
        lines = [line for line in terminal.read().decode().splitlines() if line.startswith(LOG_PREFIX)]
    assert page == []
    assert lines == ["xmailnb: INFO xmailnb.mailroot.store: install in /x: token=[hidden]"]
