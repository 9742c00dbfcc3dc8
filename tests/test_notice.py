"""The notice for mail-client users."""

from __future__ import annotations

import pytest

import pki
from helpers import CSR_ARGS, run, sign_csr_file
from xmailnb.errors import InputError
from xmailnb.mailroot import create_sandbox
from xmailnb.notice import notice_host, notice_text
from xmailnb.practice import sign_pending_csr


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
    for port in ("587", "465", "995", "110"):
        assert port in text
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
