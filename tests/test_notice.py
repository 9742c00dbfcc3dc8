"""The notice for mail-client users."""

from __future__ import annotations

import re

import pytest

import pki
from helpers import CSR_ARGS, run, sign_csr_file
from xmailnb.errors import InputError
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.flows.notice import notice_host, notice_text
from xmailnb.flows.practice import sign_pending_csr
from xmailnb.checks.progress import Step, events, step_progress
from xmailnb.mailroot.workbook import save_probe_settings


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A MailRoot with a (test-CA) certificate for mail.example.jp and example.jp."""
    mr = create_sandbox(tmp_path_factory.mktemp("notice") / "MailRoot")
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS, "--aliases", "example.jp").code == 0
    root = pki.root()
    inter = root.sign("xmailnb Test Intermediate CA", ca=True)
    leaf = sign_csr_file(inter, mr.pending_csr)
    folder = tmp_path_factory.mktemp("files")
    (folder / "server.crt").write_bytes(leaf.pem)
    (folder / "inter.crt").write_bytes(inter.pem)
    r = run("install", "--mailroot", str(mr.path), "--cert", str(folder / "server.crt"),
            "--chain", str(folder / "inter.crt"))
    assert r.code == 0, r.err
    return mr


@pytest.mark.parametrize("lang,words", [
    ("en", ["certificate verification", "STARTTLS", "SSL/TLS", "Do not click", "administrator"]),
    ("ja", ["証明書の確認", "STARTTLS", "SSL/TLS", "押さず", "管理者"]),
])
def test_notice_names_host_ports_and_what_a_warning_means(installed, lang, words):
    text = notice_text(installed, lang)
    assert "mail.example.jp" in text
    # XMail's stock listeners with TLS; no submission port unless named.
    for port in ("465", "25", "995", "110"):
        assert re.search(rf"\b{port}\b", text), port
    assert "587" not in text
    for word in words:
        assert word in text


def test_cli_notice_in_both_languages(installed):
    en = run("notice", "--mailroot", str(installed.path), "--lang", "en")
    ja = run("notice", "--mailroot", str(installed.path), "--lang", "ja")
    assert en.code == ja.code == 0
    assert "mail.example.jp" in en.out and "mail.example.jp" in ja.out
    assert en.out != ja.out and "です" in ja.out
    # A real certificate covering the name: nothing to warn the administrator about.
    assert "Warning" not in en.err and "注意" not in ja.err


def test_hostname_option_must_be_covered_by_the_certificate(installed):
    assert notice_host(installed, "example.jp") == ("example.jp", [])
    assert "example.jp" in run("notice", "--mailroot", str(installed.path), "--hostname", "EXAMPLE.JP").out
    with pytest.raises(InputError) as exc:
        notice_text(installed, "en", "other.example.jp")
    assert exc.value.field == "hostname"
    r = run("notice", "--mailroot", str(installed.path), "--hostname", "other.example.jp")
    assert r.code == 1 and "mail.example.jp" in r.err and r.out == ""


def test_without_certificate_the_admin_is_warned(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    r = run("notice", "--mailroot", str(mr.path))
    assert r.code == 0 and "mail.example.jp" in r.out and "No certificate is installed" in r.err


def test_practice_certificate_is_training_only(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    issue = sign_pending_csr(mr)
    assert run("install", "--mailroot", str(mr.path), "--cert", str(issue.server),
               "--chain", str(issue.intermediate)).code == 0
    name, warnings = notice_host(mr)
    assert name == "mail.example.jp" and [w.key for w in warnings] == ["notice.warn.practice"]
    assert "練習用" in run("notice", "--mailroot", str(mr.path), "--lang", "ja").err


def test_unknown_host_name_is_refused(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    mr.server_tab.write_bytes(b"# no host names here\n")
    r = run("notice", "--mailroot", str(mr.path))
    assert r.code == 1 and "--hostname" in r.err
    assert "mail.example.jp" in notice_text(mr, "en", "mail.example.jp")


def _ports_in(text: str) -> set[int]:
    return {int(p) for p in re.findall(r"(?:Port|port|ポート番号) (\d+)", text)}


STOCK_LISTENERS = {25, 465, 110, 995, 6017, 6018}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_stock_servertab_notice_mentions_only_ports_xmail_listens_on(tmp_path, lang):
    mr = create_sandbox(tmp_path / "MailRoot")
    r = run("notice", "--mailroot", str(mr.path), "--lang", lang)
    assert r.code == 0
    ports = _ports_in(r.out)
    assert ports and ports <= STOCK_LISTENERS, ports
    assert "587" not in r.out


def test_starttls_off_takes_its_line_out(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnablePOP3-TLS=0").code == 0
    for lang in ("en", "ja"):
        text = run("notice", "--mailroot", str(mr.path), "--lang", lang).out
        assert 110 not in _ports_in(text) and 995 in _ports_in(text)
        assert 25 in _ports_in(text)  # SMTP's STARTTLS is still on
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnableSMTP-TLS=0").code == 0
    text = notice_text(mr, "en")
    assert _ports_in(text) == {465, 995} and "STARTTLS" not in text
    # Never a clear-text port: nothing without SSL/TLS or STARTTLS.
    for line in text.splitlines():
        if re.search(r"[Pp]ort \d+", line):
            assert "SSL/TLS" in line or "STARTTLS" in line, line


def test_submission_only_when_named(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    save_probe_settings(mr, host=None, ports={"smtps": 465, "submission": 587, "pop3s": 995})
    text = notice_text(mr, "en")
    assert "Port 587 with STARTTLS" in text and _ports_in(text) == {465, 587, 995}
    # ... and only while SMTP STARTTLS is on.
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnableSMTP-TLS=0").code == 0
    assert _ports_in(notice_text(mr, "en")) == {465, 995}


def test_no_secure_port_left_is_told_to_the_admin(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    save_probe_settings(mr, host=None, ports={"smtp": 25, "pop3s": 995})
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnableSMTP-TLS=0").code == 0
    _name, warnings = notice_host(mr)
    assert "notice.warn.no_port.send" in [w.key for w in warnings]
    r = run("notice", "--mailroot", str(mr.path))
    assert "No encrypted port for sending" in r.err
    assert 25 not in _ports_in(r.out) and "administrator" in r.out


def test_cli_notice_records_it_for_step_progress(installed):
    before = [e for e in events(installed) if e.get("event") == "notice"]
    assert run("notice", "--mailroot", str(installed.path)).code == 0
    after = [e for e in events(installed) if e.get("event") == "notice"]
    assert len(after) == len(before) + 1
    assert str(step_progress(installed)[Step.NOTICE]) == "done"


# The port section as a person reads it: line breaks, not "\x0a" (issue 18).
STOCK_PORTS = {
    "en": ("2. Sending mail (SMTP)\n"
           "   Use one of these settings:\n"
           "   - Port 465 with SSL/TLS\n"
           "   - Port 25 with STARTTLS (many internet providers block this port for home and mobile connections:"
           " then use one of the others)\n"
           "   Keep your sign-in settings",
           "3. Receiving mail (POP3)\n"
           "   Use one of these settings:\n"
           "   - Port 995 with SSL/TLS\n"
           "   - Port 110 with STARTTLS\n"
           "\n"
           "4. Certificate verification\n"),
    "ja": ("2. 送信（SMTP）\n"
           "   次のどれかを選んでください:\n"
           "   - ポート番号 465 で「SSL/TLS」\n"
           "   - ポート番号 25 で「STARTTLS」（家庭やスマートフォンの回線では、プロバイダーがこのポートを使えなくしている"
           "ことがよくあります。その場合はほかの設定を使ってください）\n"
           "   ユーザー名とパスワードによる認証",
           "3. 受信（POP3）\n"
           "   次のどれかを選んでください:\n"
           "   - ポート番号 995 で「SSL/TLS」\n"
           "   - ポート番号 110 で「STARTTLS」\n"
           "\n"
           "4. 証明書の確認\n"),
}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_two_ports_are_two_lines_in_every_place_the_notice_is_read(tmp_path, lang):
    mr = create_sandbox(tmp_path / "MailRoot")
    sending, receiving = STOCK_PORTS[lang]
    cli = run("notice", "--mailroot", str(mr.path), "--lang", lang).out
    for shown_text in (notice_text(mr, lang), cli):
        assert sending in shown_text and receiving in shown_text
        assert "\\x" not in shown_text and "\\u" not in shown_text


def test_one_port_is_one_line_without_a_choice(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    save_probe_settings(mr, host=None, ports={"smtps": 465, "pop3s": 995})
    text = notice_text(mr, "en")
    assert "2. Sending mail (SMTP)\n   Port 465 with SSL/TLS\n   Keep your sign-in" in text
    assert "3. Receiving mail (POP3)\n   Port 995 with SSL/TLS\n\n4." in text
