"""The ACME panel, headless: progress per authorization, dns-01 confirmation,
result and errors in both languages, and one real order against pebble."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from test_acme import http_args, issue_args, new_mailroot, run, start_pebble  # noqa: F401
from xmailnb.flows import acme as acmeflow
from xmailnb.flows.acme import AcmeError, Event, TxtRecord
from xmailnb.i18n import Msg
from xmailnb.ui.acme_panel import AcmePanel

pytestmark = pytest.mark.slow  # a pebble ACME server


def classes(widget) -> set[str]:
    return set(widget._dom_classes)


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class FakeFlow:
    """acmeflow's surface, scripted: events, an optional dns-01 wait, a result or an error."""

    def __init__(self, *, error=None, dns=False):
        self.error, self.dns, self.confirmed = error, dns, None
        self.settings = None

    def load_settings(self, mr):
        return None

    def issue(self, mr, settings, *, agree_tos, on_event, confirm_dns):
        self.settings = settings
        names = ["mail.example.jp", "smtp.example.jp"]
        on_event(Event("step", Msg.of("acme.step.order", names=", ".join(names))))
        for n in names:
            on_event(Event("authz", Msg.of("acme.authz.pending", name=n), n, "pending"))
        if self.dns:
            records = [TxtRecord(n, f"_acme-challenge.{n}", f"value-{n}") for n in names]
            on_event(Event("dns", Msg.of("acme.step.dns_records", count=2), records=tuple(records)))
            self.confirmed = confirm_dns(records)
            if not self.confirmed:
                raise AcmeError(Msg.of("acme.dns.cancelled"), Msg.of("acme.dns.cancelled.fix"))
        if self.error is not None:
            on_event(Event("authz", Msg.of("acme.authz.invalid", name=names[0]), names[0], "invalid"))
            raise self.error
        for n in names:
            on_event(Event("authz", Msg.of("acme.authz.valid", name=n), n, "valid"))
        return SimpleNamespace(names=names, not_after=dt.datetime(2031, 1, 2, tzinfo=dt.timezone.utc),
                               plan=SimpleNamespace(warnings=[]))


@pytest.fixture
def mailroot(tmp_path) -> Path:
    return new_mailroot(tmp_path / "MailRoot")


def test_progress_and_result(mailroot):
    panel = AcmePanel(mailroot, lang="en", flow=FakeFlow())
    assert "xm-acme" in classes(panel)
    assert panel.directory.value == "letsencrypt" and panel.challenge.value == "http-01"
    assert "not been used" in panel.renewal.value
    panel.email.value = "admin@example.jp"
    panel.tos.value = True
    panel.run_button.click()
    panel.join(10)
    assert panel.state == "done" and panel.changes == 1
    assert panel.flow.settings.directory == acmeflow.LETSENCRYPT
    assert panel.flow.settings.email == "admin@example.jp"
    rows = panel.authz.children
    assert len(rows) == 2 and all("xm-ok" in classes(r) for r in rows)
    assert "smtp.example.jp: validated" in rows[1].value
    assert {"xm-acme-message", "xm-ok"} <= classes(panel.message)
    assert "2031-01-02" in panel.message.value
    assert not panel.run_button.disabled


def test_dns01_waits_for_continue(mailroot):
    flow = FakeFlow(dns=True)
    panel = AcmePanel(mailroot, lang="ja", flow=flow)
    panel.challenge.value = "dns-01"
    assert panel.http_port.layout.display == "none"
    thread = panel.start()
    assert isinstance(thread, threading.Thread)
    wait_for(lambda: panel.dns_box.layout.display != "none")
    assert "_acme-challenge.mail.example.jp" in panel.dns_records.value
    assert "value-smtp.example.jp" in panel.dns_records.value
    assert "TXT レコード" in panel.dns_records.value
    assert panel.state == "running" and "xm-progress" in classes(panel.progress)
    panel.dns_continue.click()
    panel.join(10)
    assert flow.confirmed is True and panel.state == "done"
    assert panel.dns_box.layout.display == "none"


def test_dns01_cancel_and_errors_follow_the_language(mailroot):
    panel = AcmePanel(mailroot, lang="en", flow=FakeFlow(dns=True))
    panel.challenge.value = "dns-01"
    panel.start()
    wait_for(lambda: panel.dns_box.layout.display != "none")
    panel.dns_cancel.click()
    panel.join(10)
    assert panel.state == "error" and "cancelled" in panel.message.value

    error = AcmeError(Msg.of("acme.error.rateLimited", detail="too many", name="-", directory="-"),
                      Msg.of("acme.error.rateLimited.fix", detail="too many", name="-", directory="-"))
    panel = AcmePanel(mailroot, lang="en", flow=FakeFlow(error=error))
    panel.start()
    panel.join(10)
    assert panel.state == "error" and {"xm-acme-message", "xm-error"} <= classes(panel.message)
    assert "rate limit" in panel.message.value and "Traceback" not in panel.message.value
    assert "xm-error" in classes(panel.authz.children[0])
    panel.set_lang("ja")
    assert "レート制限" in panel.message.value
    assert panel.run_button.description == "証明書を取得"


def test_invalid_form_and_unusable_mailroot(mailroot, tmp_path):
    panel = AcmePanel(mailroot, lang="en", flow=FakeFlow())
    panel.directory.value = "custom"
    assert panel.directory_url.layout.display is None
    panel.directory_url.value = "ftp://nope"
    assert panel.start() is None
    assert panel.state == "error" and "not an ACME directory URL" in panel.message.value

    broken = AcmePanel(tmp_path / "nowhere", lang="en")
    assert broken.state == "error" and broken.mailroot is None
    assert "xm-error" in classes(broken.message)


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    info, stop = start_pebble(tmp_path_factory.mktemp("pebble-panel"))
    yield info
    stop()


def test_real_order_through_the_panel(pebble, mailroot, monkeypatch):
    monkeypatch.setattr(acmeflow, "POLL_SECONDS", 0.2)
    # A first order on the command line records the directory and its trust
    # anchor; the panel shows them and reuses them.
    r = run(*issue_args(pebble, mailroot, *http_args(pebble), "--agree-tos"))
    assert r.code == 0, r.err
    first = (mailroot / "server.cert").read_bytes()
    panel = AcmePanel(mailroot, lang="en")
    assert panel.directory.value == "custom" and panel.directory_url.value == pebble.directory
    assert panel.http_port.value == pebble.http_port
    assert "next renewal" in panel.renewal.value and "xm-info" in classes(panel.renewal)
    panel.start()
    panel.join(60)
    assert panel.state == "done", panel.message.value
    assert all("xm-ok" in classes(r) for r in panel.authz.children) and len(panel.authz.children) == 2
    assert (mailroot / "server.cert").read_bytes() != first
    assert sorted(panel.result.names) == ["mail.example.jp", "smtp.example.jp"]


def test_sandbox_refuses_a_public_ca_with_the_reason_beside_the_button(tmp_path):
    from xmailnb.mailroot import create_sandbox

    flow = FakeFlow()
    panel = AcmePanel(create_sandbox(tmp_path / "MailRoot"), lang="en", flow=flow)
    assert panel.directory.value == "letsencrypt"
    assert panel.run_button.disabled
    assert panel.blocked.value == ("<div>Not in the practice sandbox: Let&#39;s Encrypt would have to reach this "
                                   "machine from the internet, and it cannot. Use &#34;Sign with the practice CA&#34; "
                                   "above; it gives you a certificate at once.</div>")
    assert panel.start() is None and flow.settings is None, "Let's Encrypt is never contacted"
    panel.set_lang("ja")
    assert "練習用の環境では使えません" in panel.blocked.value and panel.run_button.disabled
    # A directory of one's own (a test ACME server on this machine) stays open.
    panel.directory.value = "custom"
    assert not panel.run_button.disabled and panel.blocked.value == ""
