"""The dashboard's live check and notice steps: workbook settings and step progress."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from helpers import CSR_ARGS, run
from xmailnb.flows import practice
from xmailnb.mailroot.resolve import resolve
from xmailnb.flows.notice import notice_text
from xmailnb.checks.progress import Step, events, step_progress
from xmailnb.ui import NoticeStep, ProbeStep
from xmailnb.mailroot.workbook import probe_settings


def installed(mailroot: Path):
    mr = resolve(mailroot)
    assert run("csr", "--mailroot", str(mailroot), *CSR_ARGS).code == 0
    issue = practice.sign_pending_csr(mr)
    r = run("install", "--mailroot", str(mailroot), "--cert", str(issue.server), "--chain", str(issue.intermediate))
    assert r.code == 0, r.err
    return mr


def closed_port() -> int:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HangUp:
    """A port that answers every connection by closing it: reached, then failed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.close()


def probes(mr) -> list[dict]:
    return [e for e in events(mr) if e.get("event") == "probe"]


def test_probe_step_remembers_named_ports_and_records_the_check(mailroot):
    mr = installed(mailroot)
    step = ProbeStep(mailroot, lang="en")
    assert "xm-probe-host" in step.host._dom_classes and "xm-probe-ports" in step.ports._dom_classes
    # Nothing listens: the check reached no server and remembers nothing.
    port = closed_port()
    step.ports.value = f"smtps={port},submission={port}"
    step.run_button.click()
    assert step.wait(30)
    assert [r.name for r in step.results] == ["smtps", "submission"]
    assert probe_settings(mr).ports is None
    assert [str(e["passed"]) for e in probes(mr)] == ["False"]
    # A server answers (and hangs up): the ports the check used are remembered.
    hangup = HangUp()
    port = hangup.port
    try:
        step.ports.value = f"smtps={port},submission={port}"
        step.run_button.click()
        assert step.wait(30)
    finally:
        hangup.close()
    assert [r.reachable for r in step.results] == [True, True]
    assert probe_settings(mr).ports == {"smtps": port, "submission": port}
    assert len(probes(mr)) == 2 and probes(mr)[1]["passed"] is False
    assert str(step_progress(mr)[Step.PROBE]) == "broken"  # it ran and failed (DESIGN §6)
    # A new view of the same MailRoot starts from what was named; the
    # notice now offers submission, on the port named.
    again = ProbeStep(mailroot, lang="ja")
    assert again.ports.value == f"smtps={port},submission={port}"
    assert f"Port {port} with STARTTLS" in notice_text(mr, "en")
    # Empty field: XMail's stock listeners, in this very run.
    again.ports.value = ""
    again.run_button.click()
    assert again.wait(30)
    assert [r.name for r in again.results] == ["smtp", "smtps", "pop3", "pop3s", "ctrls"]


def test_practice_ports_are_used_and_remembered_and_the_notice_offers_them(mailroot):
    mr = installed(mailroot)
    step = ProbeStep(mailroot, lang="en")
    step.start_button.click()
    try:
        used = dict(step.server.ports)
        step.run_button.click()
        assert step.wait(30)
        assert all(r.status == "info" for r in step.results), [r.message.render("en") for r in step.results]
    finally:
        step.stop_button.click()
    # As the Ports field's hint says: remembered, and the notice offers them.
    assert probe_settings(mr).ports == used
    text = notice_text(mr, "en")
    assert f"Port {used['pop3s']} with SSL/TLS" in text and f"Port {used['smtp']} with STARTTLS" in text
    assert "Port 465" not in text and "Port 995" not in text
    last = probes(mr)[-1]
    assert last["passed"] is True and last["worst"] == "info"
    assert str(step_progress(mr)[Step.PROBE]) == "done"


@pytest.mark.parametrize("host", ["a" * 300, "bad host!"])
def test_bad_host_is_refused_beside_the_field(mailroot, host):
    step = ProbeStep(mailroot, lang="en")
    step.host.value = host
    step.run_button.click()
    assert step.future is None
    assert "xm-error" in step.host_note._dom_classes and "xm-error" in step.message._dom_classes
    assert len(step.host_note.value) < 600


def test_notice_step_shows_the_core_text_and_counts_once(mailroot):
    mr = installed(mailroot)
    assert run("settings", "--mailroot", str(mailroot), "--set", "EnablePOP3-TLS=0").code == 0
    step = NoticeStep(mailroot, lang="en")
    assert step.text.value == notice_text(mr, "en")
    assert "110" not in step.text.value and "587" not in step.text.value
    step.refresh()
    step.set_lang("ja")
    assert step.text.value == notice_text(mr, "ja")
    notices = [e for e in events(mr) if e.get("event") == "notice"]
    assert len(notices) == 1
    assert str(step_progress(mr)[Step.NOTICE]) == "done"
