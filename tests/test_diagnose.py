"""Diagnosis: each check on hand-made MailRoots."""

from __future__ import annotations

import datetime as dt
import os

import pytest

import pki
from xmailnb.checks.diagnose import CHECK_IDS, diagnose
from xmailnb.checks.findings import Finding, Report
from xmailnb.i18n import Msg
from xmailnb.mailroot.layout import MailRoot
from xmailnb.status import Status


@pytest.fixture(scope="module")
def h():
    return pki.hierarchy()


def install(mr: MailRoot, cert: bytes, key: bytes | None, mode: int = 0o600) -> None:
    mr.server_cert.write_bytes(cert)
    if key is not None:
        mr.server_key.write_bytes(key)
        os.chmod(mr.server_key, mode)


def status(mr: MailRoot, check: str, **kw) -> str:
    return diagnose(mr, **kw).by_check(check).status


def test_every_check_always_present(mr):
    report = diagnose(mr)
    assert [f.check for f in report.findings] == list(CHECK_IDS)
    for f in report.findings:
        assert f.message.render("ja") and f.message.render("en")


def test_good_setup(mr, h):
    install(mr, h.chain_pem, h.leaf.key_pem())
    report = diagnose(mr)
    got = {f.check: f.status for f in report.findings}
    assert got["key.present"] == got["key.usable"] == got["key.permissions"] == "ok"
    assert got["cert.present"] == got["cert.pair"] == got["cert.validity"] == "ok"
    assert got["cert.hostname"] == "ok" and got["cert.chain"] == "ok"
    assert got["cert.trust"] == "warn"  # private test root: chain ok, trust warn
    assert report.ready


def test_mismatched_pair(mr, h):
    other = pki.hierarchy()
    install(mr, h.chain_pem, other.leaf.key_pem())
    assert status(mr, "cert.pair") == "error"


def test_encrypted_key(mr, h):
    install(mr, h.chain_pem, h.leaf.key_pem(password=b"pw"))
    f = diagnose(mr).by_check("key.usable")
    assert f.status == "error" and "passphrase" in f.message.render("en")
    assert status(mr, "cert.pair") == "info"


def test_weak_key(mr):
    leaf = pki.self_signed_leaf(key_size=1024)
    install(mr, leaf.pem, leaf.key_pem())
    assert status(mr, "key.usable") == "error"


def test_ec_key_gets_compatibility_note(mr):
    h = pki.hierarchy(key_kind="ec")
    install(mr, h.chain_pem, h.leaf.key_pem())
    f = diagnose(mr).by_check("key.usable")
    assert f.status == "info" and "1.1.0" in f.message.render("en") and "ECDHE" in f.message.render("ja")


@pytest.mark.parametrize("mode,expected", [(0o600, "ok"), (0o640, "warn"), (0o644, "error")])
def test_key_permissions(mr, h, mode, expected):
    install(mr, h.chain_pem, h.leaf.key_pem(), mode=mode)
    assert status(mr, "key.permissions") == expected


def test_validity(mr):
    now = pki.now()
    expired = pki.hierarchy(not_before=now - dt.timedelta(days=100), days=50)
    install(mr, expired.chain_pem, expired.leaf.key_pem())
    assert status(mr, "cert.validity") == "error"
    soon = pki.hierarchy(days=10)
    install(mr, soon.chain_pem, soon.leaf.key_pem())
    f = diagnose(mr).by_check("cert.validity")
    assert f.status == "warn" and f.details["days_left"] < 30
    future = pki.hierarchy(not_before=now + dt.timedelta(days=3))
    install(mr, future.chain_pem, future.leaf.key_pem())
    assert status(mr, "cert.validity") == "error"


def test_hostname(mr):
    h = pki.hierarchy(cn="www.example.com")
    install(mr, h.chain_pem, h.leaf.key_pem())
    assert status(mr, "cert.hostname") == "error"  # server.tab says mail.example.jp
    assert status(mr, "cert.hostname", hostname="www.example.com") == "ok"
    wild = pki.hierarchy(cn="*.example.jp")
    install(mr, wild.chain_pem, wild.leaf.key_pem())
    assert status(mr, "cert.hostname") == "ok"


def test_cert_without_san(mr):
    h = pki.hierarchy(sans=[])
    install(mr, h.chain_pem, h.leaf.key_pem())
    f = diagnose(mr).by_check("cert.hostname")
    assert f.status == "error" and "subjectAltName" in f.message.render("en")


def test_chain_states(mr, h):
    install(mr, h.intermediate.pem + h.leaf.pem, h.leaf.key_pem())  # reversed
    assert status(mr, "cert.chain") == "error"
    install(mr, h.leaf.pem, h.leaf.key_pem())  # intermediate missing
    assert status(mr, "cert.chain") == "warn"
    install(mr, h.chain_pem + h.root.pem, h.leaf.key_pem())  # root included
    assert status(mr, "cert.chain") == "info"
    other = pki.hierarchy()
    install(mr, h.leaf.pem + other.intermediate.pem, h.leaf.key_pem())  # broken link
    assert status(mr, "cert.chain") == "error"


def test_trust(mr, h):
    leaf = pki.self_signed_leaf()
    install(mr, leaf.pem, leaf.key_pem())
    f = diagnose(mr).by_check("cert.trust")
    assert f.status == "warn" and diagnose(mr).by_check("cert.chain").status == "ok"
    install(mr, h.chain_pem, h.leaf.key_pem())
    mr.certs_pem.write_bytes(h.root.pem)
    assert status(mr, "cert.trust") == "info"
    # leaf with its issuer known only from certs.pem: chain complete, not missing
    install(mr, h.leaf.pem, h.leaf.key_pem())
    mr.certs_pem.write_bytes(h.intermediate.pem + h.root.pem)
    assert status(mr, "cert.chain") == "ok"


def test_ca_files(mr):
    tab = mr.server_tab
    text = tab.read_bytes()
    assert status(mr, "ca.files") == "ok"
    # XMail reads CA files only while it verifies certificates: with
    # verification off, a missing or broken certs.pem is nothing to warn about.
    tab.write_bytes(text + b'"SSLUseCertsFile"\t"1"\n')
    assert status(mr, "ca.files") == "ok"
    mr.certs_pem.write_bytes(b"not a certificate")
    assert status(mr, "ca.files") == "info"
    # With verification on, the same broken file makes every TLS connection fail.
    tab.write_bytes(text + b'"SSLUseCertsFile"\t"1"\n"SSLWantVerify"\t"1"\n')
    f = diagnose(mr).by_check("ca.files")
    assert f.status == "error" and "every TLS connection" in f.message.render("en")
    mr.certs_pem.unlink()
    f = diagnose(mr).by_check("ca.files")
    assert f.status == "warn" and "no certs.pem" in f.message.render("en")
    tab.write_bytes(text + b'"SSLUseCertsDir"\t"1"\n"SSLWantCert"\t"1"\n')
    assert status(mr, "ca.files") == "warn"
    tab.write_bytes(text + b'"SSLUseCertsDir"\t"1"\n')
    assert status(mr, "ca.files") == "ok"
    # Verification on without CA files of its own: not "no checks configured".
    tab.write_bytes(text + b'"SSLWantCert"\t"1"\n')
    f = diagnose(mr).by_check("ca.files")
    assert f.status == "info" and "default CA locations" in f.message.render("en")


def test_certs_pem_missing_is_not_warned_when_xmail_never_reads_it(mr):
    # SSLUseCertsFile=0 (the default) or verification off: XMail never opens
    # certs.pem, so its absence is not a finding at all.
    text = mr.server_tab.read_bytes()
    # Verification on without CA files is told (info), never as a missing certs.pem.
    cases = [(b"", "ok"), (b'"SSLUseCertsFile"\t"1"\n', "ok"),
             (b'"SSLWantVerify"\t"1"\n"SSLUseCertsFile"\t"0"\n', "info")]
    for extra, expected in cases:
        mr.server_tab.write_bytes(text + extra)
        f = diagnose(mr).by_check("ca.files")
        assert f.status == expected, extra
        assert "certs.pem" not in f.message.render("en"), extra


def test_every_settings_problem_is_shown(mr):
    # POP3 STLS off and AUTH in clear before STARTTLS: both are told, not
    # only the worst (the clear-text AUTH risk used to be hidden).
    mr.server_tab.write_bytes(mr.server_tab.read_bytes() + b'"EnablePOP3-TLS"\t"0"\n"SSLWantCert"\t"1"\n')
    f = diagnose(mr).by_check("settings.tls")
    assert f.status == "warn"
    assert {"starttls.some_off", "auth.clear", "verify.want_cert"} <= set(f.details["problems"])
    for lang in ("en", "ja"):
        text = f.message.render(lang)
        assert "POP3" in text and "LOGIN" in text and "SSLWantCert" in text
        assert "(1)" in text or "（1）" in text
        assert "SmtpNoTLSAuths" in f.fix.render(lang) and "SSLWantCert=0" in f.fix.render(lang)
    doc = diagnose(mr).to_json("en")
    row = next(x for x in doc["findings"] if x["check"] == "settings.tls")
    assert [i["code"] for i in row["issues"]] == row["problems"]


def test_settings_tls_disabled(mr):
    mr.server_tab.write_bytes(mr.server_tab.read_bytes() + b'"EnableSMTP-TLS"\t"0"\n"EnablePOP3-TLS"\t"0"\n'
                              b'"EnableCTRL-TLS"\t"0"\n')
    assert status(mr, "settings.tls") == "warn"


def test_csr_pending_states(mr, h):
    from helpers import CSR_ARGS, run

    assert status(mr, "csr.pending") == "info"
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    f = diagnose(mr).by_check("csr.pending")
    assert f.status == "info" and "waiting" in f.message.render("en")
    mr.pending_key.unlink()
    assert status(mr, "csr.pending") == "warn"


def test_report_json_shape(mr, h):
    install(mr, h.chain_pem, h.leaf.key_pem())
    doc = diagnose(mr).to_json("ja")
    assert doc["mailroot"] == str(mr.path)
    for f in doc["findings"]:
        assert {"check", "status", "message", "fix"} <= set(f)
        assert f["status"] in ("ok", "info", "warn", "error")
    assert "PRIVATE" not in str(doc)


def test_the_summary_does_not_announce_zero_warnings(mr):
    def report(*statuses: Status) -> Report:
        return Report(mr, [Finding(f"c{i}", s, Msg.of("diagnose.summary.ready")) for i, s in enumerate(statuses)])

    only_errors = report(Status.ERROR, Status.ERROR, Status.OK)
    for lang in ("en", "ja"):
        text = only_errors.summary().render(lang)
        assert "2" in text and "warning" not in text and "警告" not in text and "（" not in text
    both = report(Status.ERROR, Status.WARN).summary().render("en")
    assert "1 problem" in both and "1 warning" in both
