"""Hand checks: openssl run on the MailRoot as it is, explained, next to
xmailnb's own verdict; the two must agree, and no private key is ever shown."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import time

import pytest

import pki
from helpers import tree
from xmailnb.flows import actions, practice
from xmailnb.pki import csr
from xmailnb.notebook import handchecks
from xmailnb.notebook.handchecks import hand_check
from xmailnb.i18n import Msg
from xmailnb.mailroot import create_sandbox

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture
def mr(tmp_path):
    return create_sandbox(tmp_path / "MailRoot")


def make_csr(mr, key=None):
    request = csr.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku",
                                       "org": "Example Co., Ltd.", "cn": "mail.example.jp",
                                       "aliases": "smtp.example.jp"})
    actions.create_csr(mr, request, key=key)


def practice_install(mr):
    make_csr(mr)
    practice.sign_pending_csr(mr)
    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")])
    actions.apply_install(mr, plan)


def put(mr, cert_pem: bytes, key_pem: bytes):
    """server.cert and server.key as an admin might have put them by hand."""
    mr.server_cert.write_bytes(cert_pem)
    mr.server_key.write_bytes(key_pem)
    os.chmod(mr.server_key, 0o600)


def verdicts(result) -> list[tuple[str, str]]:
    return [(v.status, v.message.key) for v in result.verdicts]


# -- agreeing with xmailnb, state by state ----------------------------------------------------

def test_fresh_sandbox_says_what_is_missing_and_which_step_makes_it(mr):
    files = hand_check("files", mr, lang="en")
    assert files.ran and files.passed is False
    assert "No such file or directory" in files.outputs[0].text
    assert ("error", "diagnose.cert.missing") in verdicts(files)
    pair = hand_check("cert.pair", mr, lang="en")
    assert not pair.outputs and pair.passed is None
    text = pair.render()
    assert "Not yet: missing server.key, server.cert, which step 4 (Install) makes (04_install.ipynb)" in text
    assert "$ openssl" not in text
    ja = hand_check("pending.pair", mr, lang="ja").render()
    assert "手順 2「秘密鍵と CSR」で作られます（02_csr.ipynb）" in ja


def test_installed_practice_chain_verifies_against_the_practice_root(mr):
    practice_install(mr)
    result = hand_check("cert.verify", mr, lang="en")
    command = result.outputs[0].command.text()
    # The command the issue asks for: the practice root as -CAfile (without it: error 20).
    assert "-CAfile sslconf/practice-ca/issued/root.crt" in command
    assert "-verify_hostname mail.example.jp" in command
    assert result.outputs[0].text == "server.cert: OK" and result.passed is True
    assert ("ok", "diagnose.cert.chain.ok") in verdicts(result)
    assert ("warn", "diagnose.cert.trust.practice") in verdicts(result)
    for check in ("files", "cert.show", "cert.pair", "cert.order", "cert.names"):
        assert hand_check(check, mr).passed is True, check


def test_without_the_practice_root_openssl_says_error_20_like_the_old_notebook(mr):
    practice_install(mr)
    plain = handchecks.run_command(handchecks.Command((("openssl", "verify", "server.cert"),)), mr.path)
    assert plain.returncode != 0 and "error 20" in plain.text


def test_a_missing_intermediate_fails_in_openssl_and_in_xmailnb(mr):
    h = pki.hierarchy()
    put(mr, h.leaf.pem, h.leaf.key_pem())
    # Trusted through certs.pem, so only the missing intermediate is wrong.
    mr.certs_pem.write_bytes(h.root.pem)
    result = hand_check("cert.verify", mr, lang="en")
    assert result.passed is False and "error 20" in result.outputs[0].text
    assert ("warn", "diagnose.cert.chain.incomplete") in verdicts(result)
    order = hand_check("cert.order", mr)
    assert order.passed is True  # one certificate, nothing out of order: the verify check is what fails


def test_a_chain_to_certs_pem_is_checked_against_certs_pem(mr):
    h = pki.hierarchy()
    put(mr, h.chain_pem, h.leaf.key_pem())
    mr.certs_pem.write_bytes(h.root.pem)
    result = hand_check("cert.verify", mr, lang="en")
    assert "-CAfile certs.pem" in result.outputs[0].command.text()
    assert result.passed is True


def test_an_unknown_ca_is_not_trusted_by_openssl_nor_by_xmailnb(mr):
    h = pki.hierarchy()
    put(mr, h.chain_pem, h.leaf.key_pem())
    result = hand_check("cert.verify", mr, lang="en")
    import certifi

    assert f"-CAfile {certifi.where()}" in result.outputs[0].command.text()
    assert result.passed is False and "error 20" in result.outputs[0].text
    assert ("warn", "diagnose.cert.trust.private") in verdicts(result)


def test_wrong_order_is_seen_in_the_listing_and_by_xmailnb(mr):
    h = pki.hierarchy()
    put(mr, h.intermediate.pem + h.leaf.pem, h.leaf.key_pem())
    result = hand_check("cert.order", mr, lang="en")
    assert result.passed is False
    assert verdicts(result)[0][0] == "error"


def test_expired_certificate_is_error_10_and_expired_for_xmailnb(mr):
    h = pki.hierarchy(not_before=pki.now() - dt.timedelta(days=100), days=10)
    put(mr, h.chain_pem, h.leaf.key_pem())
    mr.certs_pem.write_bytes(h.root.pem)
    result = hand_check("cert.verify", mr, lang="en")
    assert result.passed is False and "error 10" in result.outputs[0].text
    assert ("error", "diagnose.cert.expired") in verdicts(hand_check("cert.show", mr))


def test_host_name_not_in_the_certificate_is_error_62_and_a_mismatch_for_xmailnb(mr):
    h = pki.hierarchy(cn="www.example.jp")
    put(mr, h.chain_pem, h.leaf.key_pem())
    mr.certs_pem.write_bytes(h.root.pem)
    result = hand_check("cert.verify", mr, lang="en")
    assert result.passed is False and "error 62" in result.outputs[0].text
    assert ("error", "diagnose.cert.hostname.mismatch") in verdicts(result)


def test_key_of_another_certificate_gives_two_hashes_and_a_mismatch(mr):
    h = pki.hierarchy()
    other = pki.Issued(cert=h.leaf.cert, key=pki.new_key())
    put(mr, h.chain_pem, other.key_pem())
    result = hand_check("cert.pair", mr, lang="en")
    hashes = handchecks._hashes(result.outputs)
    assert hashes[0] and hashes[1] and hashes[0] != hashes[1]
    assert result.passed is False
    assert verdicts(result) == [("error", "diagnose.cert.pair.mismatch")]


def test_encrypted_key_fails_at_once_instead_of_waiting_for_a_passphrase(mr):
    h = pki.hierarchy()
    put(mr, h.chain_pem, h.leaf.key_pem(password=b"secret"))
    result = hand_check("cert.pair", mr, lang="en", timeout=10)
    assert not result.outputs[0].timed_out
    assert "pass phrase" in result.outputs[0].text.lower()
    assert result.passed is False


# -- CSR and received files ------------------------------------------------------------------

def test_pending_key_and_csr_pair_and_fingerprint_match_xmailnb(mr):
    make_csr(mr)
    assert hand_check("pending.files", mr).passed is True
    show = hand_check("pending.show", mr)
    assert show.passed is True and "DNS:mail.example.jp, DNS:smtp.example.jp" in show.outputs[0].text
    assert hand_check("pending.pair", mr).passed is True
    fp = hand_check("pending.fingerprint", mr, lang="en")
    assert fp.passed is True
    ours = actions.read_pending_meta(mr).csr_sha256
    assert fp.verdicts[0].message == Msg.of("handcheck.pending.fingerprint.ours", sha256=ours)
    assert ours.replace(":", "").lower() in fp.outputs[0].text


def test_pending_key_readable_by_others_is_not_a_pass(mr):
    make_csr(mr)
    os.chmod(mr.pending_key, 0o644)
    assert hand_check("pending.files", mr).passed is False


def test_received_files_given_by_path_are_checked_like_the_install_would(mr, tmp_path):
    make_csr(mr)
    h = pki.root()
    inter = h.sign("Test Intermediate", ca=True)
    import helpers

    leaf = helpers.sign_csr_file(inter, mr.pending_csr)
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    (downloads / "server.crt").write_bytes(leaf.pem)
    (downloads / "-chain.crt").write_bytes(inter.pem)  # a name openssl would take for an option
    pair = hand_check("received.pair", mr, cert=downloads / "server.crt")
    assert pair.passed is True
    verify = hand_check("received.verify", mr, lang="en", cert=downloads / "server.crt",
                        chain=[str(downloads / "-chain.crt")])
    argv = verify.outputs[0].command.stages[0]
    assert all(not a.startswith("-chain") for a in argv)
    # Not a public CA: openssl cannot verify it against the public roots, and
    # the install would take it only with a warning.
    assert verify.passed is False and "error 20" in verify.outputs[0].text
    assert ("ok", "handcheck.received.accepted") in verdicts(verify)
    assert ("warn", "actions.trust.private") in verdicts(verify)


def test_received_file_that_is_a_fifo_is_refused_at_once(mr, tmp_path):
    make_csr(mr)
    fifo = tmp_path / "server.crt"
    os.mkfifo(fifo)
    for check in ("received.show", "received.pair", "received.verify"):
        started = time.monotonic()
        result = hand_check(check, mr, lang="en", cert=fifo, timeout=10)
        assert time.monotonic() - started < 5, check  # openssl never waited on it
        assert not result.outputs and result.passed is None
        assert "FIFO" in result.render() or "fifo" in result.render().lower(), result.render()


def test_received_practice_files_by_default(mr):
    make_csr(mr)
    assert hand_check("received.verify", mr).passed is None  # nothing issued yet
    practice.sign_pending_csr(mr)
    result = hand_check("received.verify", mr, lang="en")
    assert result.passed is True
    assert result.outputs[0].text == "sslconf/practice-ca/issued/server.crt: OK"


# -- the running server ----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_chain_verifies_and_matches_the_probe(mr):
    practice_install(mr)
    with practice.PracticeServer(mr) as server:
        smtp = hand_check("served.smtp", mr, lang="en", port=server.ports["smtp"])
        pop3s = hand_check("served.pop3s", mr, lang="en", port=server.ports["pop3s"])
    for result in (smtp, pop3s):
        assert result.passed is True
        assert "Verify return code: 0 (ok)" in result.outputs[0].text
        assert " 1 s:" in result.outputs[0].text  # the intermediate is sent
        assert "BEGIN CERTIFICATE" not in result.outputs[0].text  # the excerpt leaves the PEM out
        assert "Intermediate CA \u2014 NOT FOR PRODUCTION" in result.outputs[0].text  # names in UTF-8
        # Verified, but through the practice CA, which no mail client trusts: told, not "ok".
        assert result.verdicts[0].status == "info"
    assert "-starttls smtp" in smtp.outputs[0].command.text()
    assert smtp.outputs[0].command.text().endswith("</dev/null")


def test_served_port_from_the_classroom_or_asked_for(mr, monkeypatch):
    practice_install(mr)
    asked = hand_check("served.smtp", mr, lang="en")
    assert not asked.outputs and "Which port?" in asked.render()
    port = _free_port()
    monkeypatch.setenv("XMAILNB_PRACTICE_PORTS", f"smtp={port}")
    refused = hand_check("served.smtp", mr, lang="en")
    assert f"127.0.0.1:{port}" in refused.outputs[0].command.text()
    assert refused.passed is False and "Connection refused" in refused.outputs[0].text
    assert refused.verdicts[0].status == "error"
    bad = hand_check("served.smtp", mr, lang="en", port="smtp")
    assert not bad.outputs and "smtp is not a port number" in bad.render()
    host = hand_check("served.smtp", mr, lang="en", host="bad host!", port=25)
    assert not host.outputs and host.note


def test_served_ports_of_the_practice_server_the_form_started(mr, monkeypatch, tmp_path):
    # The notebook's form starts the practice server on free ports in the
    # notebook's own process; its hand checks connect there without being told.
    monkeypatch.delenv("XMAILNB_PRACTICE_PORTS", raising=False)
    practice_install(mr)
    other = create_sandbox(tmp_path / "Other")
    with practice.PracticeServer(other):  # another MailRoot's server is not this one's
        assert not hand_check("served.smtp", mr, lang="en").outputs
    with practice.PracticeServer(mr) as server:
        smtp = hand_check("served.smtp", mr, lang="en")
        pop3s = hand_check("served.pop3s", mr, lang="en")
    assert f"127.0.0.1:{server.ports['smtp']}" in smtp.outputs[0].command.text()
    assert f"127.0.0.1:{server.ports['pop3s']}" in pop3s.outputs[0].command.text()
    assert smtp.passed is True and pop3s.passed is True
    stopped = hand_check("served.smtp", mr, lang="en")
    assert not stopped.outputs and "Which port?" in stopped.render()


# -- safety ----------------------------------------------------------------------------------

def test_no_private_key_is_ever_shown(mr):
    practice_install(mr)
    secrets = [mr.server_key.read_text(), mr.pending_key.read_text()]
    bodies = [line for s in secrets for line in s.splitlines() if line and not line.startswith("-----")]
    for check in handchecks.CHECKS:
        shown = hand_check(check, mr, lang="en", port=1).render()
        assert "PRIVATE KEY" not in shown, check
        assert not any(line in shown for line in bodies), check


def test_private_key_pem_in_output_is_withheld():
    key = pki.new_key()
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    shown = handchecks._withheld(f"before\n{pem}after\n{pem[:200]}")
    assert "PRIVATE KEY" not in shown and pem.splitlines()[1] not in shown
    assert shown.startswith("before\n") and "after" in shown


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_a_server_cert_that_is_no_file_is_named_at_once_not_waited_on(mr, tmp_path, target):
    practice_install(mr)
    mr.server_cert.unlink()
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    mr.server_cert.symlink_to(target)
    started = time.monotonic()
    for check in ("cert.show", "cert.pair", "cert.order", "cert.verify", "cert.names"):
        result = hand_check(check, mr, lang="en", timeout=10)
        assert not result.outputs and "server.cert is a " in result.render(), (check, result.render())
    assert time.monotonic() - started < 10


def test_checks_change_nothing_in_the_mailroot(mr):
    practice_install(mr)
    before = tree(mr.path)
    for check in handchecks.CHECKS:
        hand_check(check, mr, port=1)
    assert tree(mr.path) == before


def test_without_openssl_the_cell_says_so_and_still_gives_the_verdict(mr, monkeypatch, tmp_path):
    practice_install(mr)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = hand_check("cert.pair", mr, lang="en")
    assert result.outputs[0].missing == "openssl" and result.passed is None
    text = result.render()
    assert "The openssl command was not found" in text
    assert "xmailnb's verdict: ✔" in text
    assert "$ openssl pkey -in server.key -pubout | openssl sha256" in text


def test_a_mailroot_that_cannot_be_used_is_a_message_not_a_traceback(tmp_path):
    result = hand_check("cert.verify", tmp_path / "nowhere", lang="en")
    assert not result.outputs and result.note
    assert str(tmp_path / "nowhere") in result.render()


def test_unknown_check_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown hand check"):
        hand_check("cert.verfy")


def test_every_check_has_its_texts_in_both_languages():
    from xmailnb.i18n import has

    for check in handchecks.CHECKS:
        stem = handchecks._texts(check)
        for part in ("title", "means", "failure"):
            assert has(f"{stem}.{part}", "en") and has(f"{stem}.{part}", "ja"), (check, part)


def test_order_listing_shows_the_practice_cas_dash_not_openssls_escape(mr):
    practice_install(mr)
    result = hand_check("cert.order", mr, lang="en")
    assert result.passed is True
    listing = result.outputs[0].text
    assert re.search(r"^issuer=.*, CN = xmailnb Practice Intermediate CA — NOT FOR PRODUCTION$", listing, re.M)
    assert "\\E2" not in listing


def test_only_printable_utf8_escapes_are_decoded():
    assert handchecks._utf8_names(r"CN = a \E2\80\94 b") == ("CN = a — b", 0)
    # A control character in a hostile name, or bytes that are not UTF-8, stay escaped.
    assert handchecks._utf8_names(r"CN = evil\1B[2J") == (r"CN = evil\1B[2J", 0)
    assert handchecks._utf8_names(r"CN = \E2\80") == (r"CN = \E2\80", 0)


def test_a_report_without_the_chain_checks_falls_back_to_the_public_roots(mr):
    """A diagnosis that says nothing of the chain (no certificate, or a
    report cut short) names the public roots, rather than stopping on the
    KeyError ``Report.by_check`` raises for a check it does not have."""
    from xmailnb.checks.findings import Report

    import certifi

    assert handchecks.chain_anchor(mr, Report(mr, [])) == certifi.where()
