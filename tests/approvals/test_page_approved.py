"""The page's text per step, as a trainee sees it, in English and Japanese:
the whole page (headline, stepper marks, the open step, Next) after opening
each step, on a fresh sandbox and once the practice certificate is installed."""

from __future__ import annotations

import base64
import re

import pytest

from helpers import CSR_ARGS, run
from page_text import page_text
from xmailnb.flows import practice
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.ui import Wizard

STEPS = ["diagnose", "csr", "submit", "install", "settings", "probe", "notice"]


def _installed(mr):
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    issue = practice.sign_pending_csr(mr)
    assert run("install", "--mailroot", str(mr.path), "--cert", str(issue.server),
               "--chain", str(issue.intermediate)).code == 0


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("scenario", ["fresh", "installed"])
def test_page(tmp_path, approve, scrub, scenario, lang):
    mr = create_sandbox(tmp_path / "MailRoot")
    if scenario == "installed":
        _installed(mr)
    wizard = Wizard(mr.path, lang=lang, watch_interval=None)
    for step in STEPS:
        wizard.show(step)
        if step == "probe":  # the practice server's proposed ports: free ones, different each run
            for name, field in wizard.steps["probe"].practice_port.items():
                scrub.register(field.value, f"<port:{name}>")
        approve(page_text(wizard), step)
    # The downloaded mail-notice.txt is the notice as shown.
    link = wizard.steps["notice"].download.value
    data = re.search(r'href="data:text/plain;charset=utf-8;base64,([A-Za-z0-9+/=]+)"', link)
    assert data, link
    approve(base64.b64decode(data.group(1)).decode("utf-8"), "mail-notice.txt")
    if scenario == "installed":
        # The rollback asks first, and says what it will do.
        install = wizard.steps["install"]
        wizard.show("install")
        install.rollback_button.click()
        approve(page_text(install.rollback_box), "rollback-confirm")
        install.rollback_yes.click()
        approve(page_text(wizard), "rolled-back")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_page_live_check_of_the_practice_server(tmp_path, approve, scrub, lang):
    mr = create_sandbox(tmp_path / "MailRoot")
    _installed(mr)
    wizard = Wizard(mr.path, lang=lang, watch_interval=None)
    wizard.show("probe")
    step = wizard.steps["probe"]
    step.start_button.click()
    try:
        for name, port in step.server.ports.items():
            scrub.register(port, f"<port:{name}>")
        approve(page_text(wizard), "practice-server-running")
        step.run_button.click()
        assert step.wait(30)
        # The check's thread ends before the stepper's refresh it triggers
        # may have run: wait for that refresh, as the browser would.
        wizard.refresh_all()
        approve(page_text(wizard), "checked")
    finally:
        step.stop_button.click()
    approve(page_text(wizard), "practice-server-stopped")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_page_install_refusals(tmp_path, approve, lang):
    import pki
    from xmailnb.ui.install import upload_value

    mr = create_sandbox(tmp_path / "MailRoot")
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    issue = practice.sign_pending_csr(mr)
    other = pki.hierarchy()
    wizard = Wizard(mr.path, lang=lang, watch_interval=None)
    wizard.show("install")
    install = wizard.steps["install"]
    install.uploads["cert"].value = upload_value(issue.server.read_bytes(), "server.crt")
    approve(page_text(install), "no-intermediate")
    install.uploads["chain"].value = upload_value(other.intermediate.pem, "int.pem")
    approve(page_text(install), "unrelated-intermediate")
    install.uploads["cert"].value = upload_value(other.leaf.pem, "other.crt")
    approve(page_text(install), "certificate-for-another-key")
    install.uploads["cert"].value = upload_value(b"not a certificate\n", "notes.txt")
    approve(page_text(install), "not-a-certificate")
