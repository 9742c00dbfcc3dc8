"""The practice CA and the practice listener: training without a public CA."""

from __future__ import annotations

import os
import poplib
import smtplib
import socket
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

from helpers import CSR_ARGS, run, tree
from xmailnb.flows import practice
from xmailnb.errors import InputError
from xmailnb.mailroot.layout import PRACTICE_DIR, PRACTICE_ISSUED_DIR
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.flows.practice import PracticeServer, sign_pending_csr

ALIASES = ["--aliases", "example.jp smtp.example.jp"]


def _csr(path) -> None:
    r = run("csr", "--mailroot", str(path), *CSR_ARGS, *ALIASES)
    assert r.code == 0, r.err


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A MailRoot with a CSR signed by its practice CA and installed."""
    mr = create_sandbox(tmp_path_factory.mktemp("practice") / "MailRoot")
    _csr(mr.path)
    r = run("practice-ca", "sign", "--mailroot", str(mr.path), "--json")
    assert r.code == 0, r.err
    doc = r.json
    r = run("install", "--mailroot", str(mr.path), "--cert", doc["files"]["server"],
            "--chain", doc["files"]["intermediate"])
    assert r.code == 0, r.err
    return mr, doc


def test_sign_tells_where_the_files_are_and_what_comes_next(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    _csr(mr.path)
    r = run("practice-ca", "sign", "--mailroot", str(mr.path))
    assert r.code == 0, r.err
    issue = practice.issued(mr)
    assert issue is not None
    for path in (issue.server, issue.intermediate, issue.root, issue.root_der):
        assert str(path) in r.out + r.err
    assert f"xmailnb install --cert {issue.server} --chain {issue.intermediate}" in r.err
    assert "NOT FOR PRODUCTION" in r.err and "trust" in r.err


def test_practice_certificate_verifies_for_every_name(signed):
    mr, _doc = signed
    issue = practice.issued(mr)
    leaf = issue.leaf
    intermediate = x509.load_pem_x509_certificate(issue.intermediate.read_bytes())
    root = x509.load_pem_x509_certificate(issue.root.read_bytes())
    assert issue.root_der.read_bytes() == root.public_bytes(serialization.Encoding.DER)
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = sans.get_values_for_type(x509.DNSName)
    assert cn == "mail.example.jp" and set(names) == {"mail.example.jp", "example.jp", "smtp.example.jp"}
    verifier_store = Store([root])
    for name in [cn, *names]:
        verifier = PolicyBuilder().store(verifier_store).build_server_verifier(DNSName(name))
        chain = verifier.verify(leaf, [intermediate])
        assert chain[-1] == root
    with pytest.raises(VerificationError):
        PolicyBuilder().store(verifier_store).build_server_verifier(DNSName("other.example.jp")).verify(
            leaf, [intermediate])


def test_practice_certificates_look_like_a_public_cas(signed):
    mr, _doc = signed
    issue = practice.issued(mr)
    leaf = issue.leaf
    root = x509.load_pem_x509_certificate(issue.root.read_bytes())
    intermediate = x509.load_pem_x509_certificate(issue.intermediate.read_bytes())
    ext = leaf.extensions
    assert ExtendedKeyUsageOID.SERVER_AUTH in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ext.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    days = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days
    assert 89 <= days <= 91
    # Named as practice in every certificate it issues.
    for cert in (leaf, intermediate, root):
        org = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        assert "xmailnb practice" in org.lower()
    for cert in (intermediate, root):
        assert "NOT FOR PRODUCTION" in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@pytest.mark.parametrize("lang,word", [("en", "practice"), ("ja", "練習用")])
def test_diagnose_says_practice(signed, lang, word):
    mr, _doc = signed
    r = run("diagnose", "--mailroot", str(mr.path), "--json", "--lang", lang)
    findings = {f["check"]: f for f in r.json["findings"]}
    assert findings["cert.trust"]["status"] == "warn"
    assert word in findings["cert.trust"]["message"]
    assert findings["cert.chain"]["status"] == "ok"
    assert findings["cert.hostname"]["status"] == "ok"
    assert r.code == 0


def test_ca_is_reused_and_its_keys_are_private(signed):
    mr, doc = signed
    root_before = practice.issued(mr).root.read_bytes()
    first_leaf = practice.issued(mr).leaf
    r = run("practice-ca", "sign", "--mailroot", str(mr.path), "--json", "--days", "30")
    assert r.code == 0, r.err
    assert r.json["ca_created"] is False and doc["ca_created"] is True
    issue = practice.issued(mr)
    assert issue.root.read_bytes() == root_before
    assert issue.leaf.serial_number != first_leaf.serial_number
    ca_dir = mr.file(PRACTICE_DIR)
    if os.name == "posix":
        assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(mr.file(PRACTICE_ISSUED_DIR).stat().st_mode) == 0o700
        for key in ("root.key", "intermediate.key"):
            assert stat.S_IMODE((ca_dir / key).stat().st_mode) == 0o600
    # Every write went through the store: the re-signing archived the old leaf.
    history = run("history", "--mailroot", str(mr.path), "--json").json
    assert [e["action"] for e in history].count("practice-ca") == 2


def test_validity_is_capped(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    _csr(mr.path)
    issue = practice.sign_pending_csr(mr, days=5000)
    assert (issue.leaf.not_valid_after_utc - issue.leaf.not_valid_before_utc).days <= practice.MAX_DAYS


def test_no_csr_is_refused_and_nothing_changes(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    before = tree(mr.path)
    for lang, word in (("en", "CSR first"), ("ja", "先に CSR")):
        r = run("practice-ca", "sign", "--mailroot", str(mr.path), "--lang", lang)
        assert r.code == 1 and word in r.err
    assert tree(mr.path) == before
    with pytest.raises(InputError) as exc:
        practice.sign_pending_csr(mr)
    assert exc.value.msg.key == "practice.no_csr" and exc.value.fix is not None


@pytest.mark.parametrize("days", ["0", "-5", "abc", "1.5", ""])
def test_bad_days_exit_1(tmp_path, days):
    mr = create_sandbox(tmp_path / "MailRoot")
    r = run("practice-ca", "sign", "--mailroot", str(mr.path), "--days", days, "--json")
    assert r.code == 1
    assert r.json["error"]["field"] == "days"


def test_tampered_csr_is_refused(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    _csr(mr.path)
    csr = x509.load_pem_x509_csr(mr.pending_csr.read_bytes())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    mr.pending_csr.write_bytes(tampered)
    with pytest.raises(InputError) as exc:
        practice.sign_pending_csr(mr)
    assert exc.value.msg.key == "practice.csr_bad_signature"
    assert practice.issued(mr) is None


# -- the practice listener -----------------------------------------------------

def _client_context(root_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=root_pem.decode("ascii"))
    return ctx


def test_listener_speaks_starttls_and_implicit_tls(signed):
    mr, _doc = signed
    root_pem = practice.issued(mr).root.read_bytes()
    with practice.PracticeServer(mr) as server:
        assert server.running and set(server.ports) == {"smtp", "pop3s"}
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=5) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("starttls")
            smtp._host = "mail.example.jp"  # the name the certificate is checked for
            code, _ = smtp.starttls(context=_client_context(root_pem))
            assert code == 220
            smtp.ehlo()
            assert not smtp.has_extn("starttls")
            assert smtp.noop()[0] == 250
            assert smtp.mail("a@example.jp")[0] >= 500
        pop = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], timeout=5,
                              context=_wrap_for(root_pem, "mail.example.jp"))
        assert pop.getwelcome().startswith(b"+OK")
        assert pop.capa()
        pop.quit()
    assert not server.running


def _wrap_for(root_pem: bytes, name: str) -> ssl.SSLContext:
    ctx = _client_context(root_pem)
    original = ctx.wrap_socket

    def wrap(sock, *args, **kw):
        kw["server_hostname"] = name
        return original(sock, *args, **kw)

    ctx.wrap_socket = wrap  # type: ignore[method-assign]
    return ctx


def test_listener_without_certificate_offers_starttls_then_fails(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    with practice.PracticeServer(mr) as server:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=5) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("starttls")
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            with pytest.raises((ssl.SSLError, OSError)):
                smtp.starttls(context=ctx)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "mail.example.jp"])
def test_listener_refuses_other_hosts(tmp_path, host):
    mr = create_sandbox(tmp_path / "MailRoot")
    with pytest.raises(InputError):
        practice.PracticeServer(mr, host=host)


def test_listener_port_in_use_is_a_clear_refusal(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    with practice.PracticeServer(mr) as first:
        second = practice.PracticeServer(mr, smtp_port=first.ports["smtp"])
        with pytest.raises(InputError) as exc:
            second.start()
        assert exc.value.msg.key == "practice.server.bind"
        assert not second.running


def test_practice_server_command_runs_until_sigterm(tmp_path):
    import signal
    import subprocess
    import sys

    mr = create_sandbox(tmp_path / "MailRoot")
    proc = subprocess.Popen([sys.executable, "-m", "xmailnb", "practice-server", "--mailroot", str(mr.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.rsplit(" ", 1)[1])
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            assert smtp.ehlo()[0] == 250
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "xmailnb probe --mailroot" in proc.stderr.read()


def test_practice_server_bad_port_exit_1(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    r = run("practice-server", "--mailroot", str(mr.path), "--smtp", "70000")
    assert r.code == 1 and "70000" in r.err


def test_issued_is_none_without_files(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    assert practice.issued(mr) is None


def test_stop_cuts_idle_clients_at_once(tmp_path):
    import socket
    import time

    mr = create_sandbox(tmp_path / "MailRoot")
    server = practice.PracticeServer(mr)
    ports = server.start()
    idle = [socket.create_connection(("127.0.0.1", ports[name]), timeout=5) for name in ("smtp", "pop3s")]
    idle[0].recv(100)  # the SMTP greeting; the POP3S client never starts its handshake
    time.sleep(0.2)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.5
    for sock in idle:
        assert sock.recv(100) == b""  # the server closed it
        sock.close()


def test_practice_listener_asks_for_certificates_like_xmail(tmp_path):
    # SSLWantVerify=1: a certificate is asked for, clients without one get
    # in; SSLWantCert=1: they are refused (TLS 1.3: after the handshake).
    from xmailnb.checks.probe import Problem, probe

    mr = create_sandbox(tmp_path / "MailRoot")
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    issue = sign_pending_csr(mr)
    assert run("install", "--mailroot", str(mr.path), "--cert", str(issue.server),
               "--chain", str(issue.intermediate)).code == 0
    text = mr.server_tab.read_bytes()
    with PracticeServer(mr) as server:
        mr.server_tab.write_bytes(text + b'"SSLWantVerify"\t"1"\n')
        asked = probe(ports=server.ports, mailroot=mr, timeout=3)
        assert [r.status for r in asked] == ["info", "info"], [r.message.render("en") for r in asked]
        mr.server_tab.write_bytes(text + b'"SSLWantCert"\t"1"\n')
        refused = probe(ports=server.ports, mailroot=mr, timeout=3)
        assert [r.problem for r in refused] == [Problem.CLIENT_CERT] * 2
        # A plain TLS 1.3 client sees the handshake succeed and the alert next.
        ctx = ssl.create_default_context(cafile=str(issue.root))
        with socket.create_connection(("127.0.0.1", server.ports["pop3s"]), timeout=3) as sock:
            with ctx.wrap_socket(sock, server_hostname="mail.example.jp") as tls:
                assert tls.version() == "TLSv1.3"
                with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED|certificate required"):
                    tls.recv(100)
