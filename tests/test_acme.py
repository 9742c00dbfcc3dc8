"""ACME end to end against Debian's pebble (Let's Encrypt's test server) and
pebble-challtestsrv (mock DNS), both on loopback, plus error translation."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import josepy as jose
import pytest
from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.verification import DNSName, PolicyBuilder, Store

import pki
from helpers import CSR_ARGS, free_port, run, tree
from xmailnb.flows import acme as acmeflow
from xmailnb.i18n import Msg
from xmailnb.mailroot.resolve import resolve
from xmailnb.mailroot.sandbox import create_sandbox

pytestmark = pytest.mark.slow  # a pebble ACME server

NAMES = ["mail.example.jp", "smtp.example.jp"]


# -- the servers -----------------------------------------------------------------

def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{proc.args[0]} did not listen on {port}: {log.read_text(errors='replace')}")


def start_pebble(workdir: Path):
    """Start pebble and pebble-challtestsrv on loopback; return (info, stop)."""
    if not (shutil.which("pebble") and shutil.which("pebble-challtestsrv")):
        if os.environ.get("CI") == "true":
            pytest.fail("pebble is not installed (apt-get install pebble)")
        pytest.skip("pebble is not installed (Debian package 'pebble')")
    ca = pki.root("xmailnb pebble test CA")
    server = ca.sign("localhost", sans=["localhost", "127.0.0.1"])
    (workdir / "ca.pem").write_bytes(ca.pem)
    (workdir / "cert.pem").write_bytes(server.pem)
    (workdir / "key.pem").write_bytes(server.key_pem(traditional=False))
    ports = SimpleNamespace(acme=free_port(), mgmt=free_port(), http=free_port(), tls=free_port(),
                            dns=free_port(), cts=free_port())
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{ports.acme}", "managementListenAddress": f"127.0.0.1:{ports.mgmt}",
        "certificate": str(workdir / "cert.pem"), "privateKey": str(workdir / "key.pem"),
        "httpPort": ports.http, "tlsPort": ports.tls, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}
    (workdir / "pebble.json").write_text(json.dumps(config))
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
    logs = [workdir / "challtestsrv.log", workdir / "pebble.log"]
    procs = []
    try:
        with open(logs[0], "wb") as log:
            procs.append(subprocess.Popen(
                ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{ports.dns}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{ports.cts}", "-defaultIPv6", ""],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir))
        _wait_port(ports.cts, procs[0], logs[0])
        with open(logs[1], "wb") as log:
            procs.append(subprocess.Popen(
                ["pebble", "-config", str(workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{ports.dns}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env))
        _wait_port(ports.acme, procs[1], logs[1])
        _wait_port(ports.mgmt, procs[1], logs[1])
    except BaseException:
        for p in procs:
            p.terminate()
        raise

    def stop() -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()

    context = ssl.create_default_context(cafile=str(workdir / "ca.pem"))
    with urllib.request.urlopen(f"https://127.0.0.1:{ports.mgmt}/roots/0", context=context, timeout=10) as r:
        root = x509.load_pem_x509_certificate(r.read())
    info = SimpleNamespace(directory=f"https://127.0.0.1:{ports.acme}/dir", ca_file=str(workdir / "ca.pem"),
                           http_port=ports.http, dns_port=ports.dns,
                           challtestsrv=f"http://127.0.0.1:{ports.cts}", root=root, workdir=workdir)
    return info, stop


@pytest.fixture(scope="session")
def pebble(tmp_path_factory):
    info, stop = start_pebble(tmp_path_factory.mktemp("pebble"))
    yield info
    stop()


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch):
    monkeypatch.setattr(acmeflow, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(acmeflow, "ORDER_SECONDS", 30)


# -- helpers --------------------------------------------------------------------------

def new_mailroot(path: Path, *, aliases: str = "smtp.example.jp") -> Path:
    create_sandbox(path)
    (path / "sslconf" / "xmailnb-sandbox.txt").unlink(missing_ok=True)
    r = run("csr", "--mailroot", str(path), *CSR_ARGS, "--aliases", aliases)
    assert r.code == 0, r.err
    return path


def issue_args(pebble, mailroot: Path, *extra: str) -> list[str]:
    return ["acme", "issue", "--mailroot", str(mailroot), "--directory", pebble.directory,
            "--directory-ca", pebble.ca_file, *extra]


def http_args(pebble) -> list[str]:
    return ["--challenge", "http-01", "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1"]


def dns_hook(pebble, tmp_path: Path, value: str | None = None) -> str:
    """A --dns-hook command that sets the TXT record through challtestsrv."""
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys, urllib.request\n"
        "value = sys.argv[2] if len(sys.argv) > 2 else os.environ['XMAILNB_ACME_TXT_VALUE']\n"
        "body = json.dumps({'host': os.environ['XMAILNB_ACME_TXT_NAME'] + '.', 'value': value}).encode()\n"
        "urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/set-txt', data=body), timeout=10)\n")
    cmd = f'"{sys.executable}" "{script}" {pebble.challtestsrv}'
    return cmd + (f" {value}" if value else "")


def outside_acme(root: Path) -> dict[str, str]:
    """The MailRoot's files except the ACME account data, the audit log and
    the archive entries the store made of ACME account data only."""
    files = tree(root)
    keep = {}
    for rel, digest in files.items():
        parts = Path(rel).parts
        if rel.startswith("sslconf/acme/") or rel == "sslconf/audit.log":
            continue
        if parts[:2] == ("sslconf", "archive") and len(parts) > 2:
            # archive/.order/SEQ-ID is the store's order mark of entry ID.
            entry = parts[3].split("-", 1)[1] if parts[2] == ".order" else parts[2]
            manifest = json.loads((root / "sslconf" / "archive" / entry / "manifest.json").read_text())
            if manifest["action"] == "acme" and all(f.startswith("sslconf/acme/") for f in manifest["files"]):
                continue
        keep[rel] = digest
    return keep


@contextlib.contextmanager
def busy_port(port: int):
    with socket.socket() as busy:
        # REUSEADDR: the responder's closed connections may linger in TIME_WAIT.
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        yield


def installed_chain(mailroot: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((mailroot / "server.cert").read_bytes())


def assert_verifies(pebble, mailroot: Path, names=NAMES) -> None:
    chain = installed_chain(mailroot)
    assert len(chain) >= 2 and not chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in names:
        verifier = PolicyBuilder().store(Store([pebble.root])).build_server_verifier(DNSName(name))
        verifier.verify(chain[0], chain[1:])


def public_key_pem(obj) -> bytes:
    return obj.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def issued(pebble, tmp_path_factory):
    """A MailRoot where 'acme issue' with http-01 succeeded."""
    mailroot = new_mailroot(tmp_path_factory.mktemp("issued") / "MailRoot")
    r = run(*issue_args(pebble, mailroot, *http_args(pebble), "--agree-tos", "--email", "admin@example.jp"))
    return SimpleNamespace(path=mailroot, result=r)


def copy_of(issued, tmp_path: Path) -> Path:
    target = tmp_path / "MailRoot"
    shutil.copytree(issued.path, target)
    return target


# -- issue -------------------------------------------------------------------------------

def test_issue_http01_installs_a_chain_valid_for_every_name(pebble, issued):
    r = issued.result
    assert r.code == 0, r.err
    mailroot = issued.path
    assert_verifies(pebble, mailroot)
    # The key installed is the pending one: the CSR is what ACME finalised.
    key = serialization.load_pem_private_key((mailroot / "sslconf" / "server.key").read_bytes(), None)
    assert public_key_pem(key) == public_key_pem(installed_chain(mailroot)[0])
    assert "mail.example.jp" in r.err and "validated" in r.err
    assert "[" in r.out  # the diagnosis after the install
    # Account and settings kept for renew, the key 0600.
    account_key = mailroot / "sslconf" / "acme" / "account.key"
    assert stat.S_IMODE(account_key.stat().st_mode) == 0o600
    settings = json.loads((mailroot / "sslconf" / "acme" / "settings.json").read_text())
    assert settings["directory"] == pebble.directory
    assert settings["challenge"] == "http-01" and settings["http_port"] == pebble.http_port
    assert settings["email"] == "admin@example.jp"
    assert settings["accounts"][pebble.directory].startswith("https://127.0.0.1")
    anchor = (mailroot / "sslconf" / "acme" / "directory-ca.pem").read_bytes()
    assert x509.load_pem_x509_certificate(anchor) == x509.load_pem_x509_certificate(
        Path(pebble.ca_file).read_bytes())
    # Installed through the store: the install is the newest archived state.
    history = run("history", "--mailroot", str(mailroot), "--json").json
    assert history[0]["action"] == "install"


def test_issue_result_shows_in_the_diagnosis(issued):
    mr = resolve(issued.path)
    finding = acmeflow.renewal_finding(mr)
    assert finding is not None and finding.check == "acme.renewal" and finding.status == "info"
    not_after = installed_chain(issued.path)[0].not_valid_after_utc
    assert finding.details["next_renewal"] == (not_after - dt.timedelta(days=30)).date().isoformat()
    assert finding.details["next_renewal"] in finding.message.render("en")
    assert finding.details["next_renewal"] in finding.message.render("ja")


def test_issue_dns01_with_hook(pebble, tmp_path):
    mailroot = new_mailroot(tmp_path / "MailRoot", aliases="")
    r = run(*issue_args(pebble, mailroot, "--challenge", "dns-01", "--agree-tos",
                        "--dns-hook", dns_hook(pebble, tmp_path),
                        "--dns-server", f"127.0.0.1:{pebble.dns_port}"), "--json")
    assert r.code == 0, r.err
    assert "_acme-challenge.mail.example.jp" in r.err  # the exact record is shown
    doc = r.json
    assert doc["installed"] is True and doc["acme"]["names"] == ["mail.example.jp"]
    assert_verifies(pebble, mailroot, ["mail.example.jp"])
    settings = json.loads((mailroot / "sslconf" / "acme" / "settings.json").read_text())
    assert settings["challenge"] == "dns-01" and settings["dns_hook"]


# -- renew ------------------------------------------------------------------------------

def test_renew_only_when_due(pebble, issued, tmp_path):
    mailroot = copy_of(issued, tmp_path)
    before, before_outside = tree(mailroot), outside_acme(mailroot)
    r = run("acme", "renew", "--mailroot", str(mailroot), "--days", "1")
    assert r.code == 0, r.err
    assert "Nothing to do" in r.err
    # Only the --days the scheduled runs use is noted, once, for the diagnosis.
    assert outside_acme(mailroot) == before_outside and tree(mailroot) != before
    finding = acmeflow.renewal_finding(resolve(mailroot))
    assert finding.details["renew_days"] == 1 and "fewer than 1 days" in finding.message.render("en")
    before = tree(mailroot)
    r = run("acme", "renew", "--mailroot", str(mailroot), "--days", "1")
    assert r.code == 0 and "Nothing to do" in r.err
    assert tree(mailroot) == before

    old_leaf = installed_chain(mailroot)[0]
    old_key = (mailroot / "sslconf" / "server.key").read_bytes()
    old_csr = x509.load_pem_x509_csr((mailroot / "sslconf" / "server.csr").read_bytes())
    r = run("acme", "renew", "--mailroot", str(mailroot), "--days", "100000")
    assert r.code == 0, r.err
    assert "Renewed" in r.err
    new_leaf = installed_chain(mailroot)[0]
    assert new_leaf.serial_number != old_leaf.serial_number
    assert_verifies(pebble, mailroot)
    # A fresh key and CSR with the same subject and names; the old pair archived.
    new_key = (mailroot / "sslconf" / "server.key").read_bytes()
    new_csr = x509.load_pem_x509_csr((mailroot / "sslconf" / "server.csr").read_bytes())
    assert new_key != old_key and new_csr.subject == old_csr.subject
    assert public_key_pem(serialization.load_pem_private_key(new_key, None)) == public_key_pem(new_leaf)
    assert (new_csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            == old_csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    history = run("history", "--mailroot", str(mailroot), "--json").json
    assert [e["action"] for e in history][0] == "install"
    csr_entry = next(e for e in history if e["action"] == "csr" and "sslconf/server.key" in e["files"])
    archived = mailroot / "sslconf" / "archive" / csr_entry["id"] / "files" / "sslconf" / "server.key"
    assert archived.read_bytes() == old_key


def test_renew_failure_leaves_the_certificate_and_warns(pebble, issued, tmp_path):
    mailroot = copy_of(issued, tmp_path)
    before = outside_acme(mailroot)
    with busy_port(pebble.http_port):
        r = run("acme", "renew", "--mailroot", str(mailroot), "--days", "100000")
    assert r.code == 1
    assert f"Port {pebble.http_port} is already in use" in r.err and "dns-01" in r.err
    assert outside_acme(mailroot) == before
    finding = acmeflow.renewal_finding(resolve(mailroot))
    assert finding is not None and finding.status == "warn"
    assert str(pebble.http_port) in finding.message.render("ja")


def test_renew_without_acme_and_bad_days(tmp_path):
    mailroot = new_mailroot(tmp_path / "MailRoot")
    before = tree(mailroot)
    r = run("acme", "renew", "--mailroot", str(mailroot))
    assert r.code == 1 and "never used" in r.err
    assert run("acme", "renew", "--mailroot", str(mailroot), "--days", "0").code == 2
    assert tree(mailroot) == before
    assert acmeflow.renewal_finding(resolve(mailroot)) is None


# -- failing orders ------------------------------------------------------------------------

def test_port_taken_refuses_before_contacting_the_ca(pebble, tmp_path):
    mailroot = new_mailroot(tmp_path / "MailRoot")
    before = tree(mailroot)
    with busy_port(pebble.http_port):
        r = run(*issue_args(pebble, mailroot, *http_args(pebble), "--agree-tos", "--lang", "ja"))
    assert r.code == 1
    assert f"ポート {pebble.http_port} は使用中" in r.err and "dns-01" in r.err
    assert tree(mailroot) == before


def test_wrong_txt_record_installs_nothing(pebble, tmp_path):
    mailroot = new_mailroot(tmp_path / "MailRoot", aliases="")
    before = outside_acme(mailroot)
    r = run(*issue_args(pebble, mailroot, "--challenge", "dns-01", "--agree-tos",
                        "--dns-hook", dns_hook(pebble, tmp_path, value="not-the-right-value")))
    assert r.code == 1, r.err
    assert "Validation of mail.example.jp (dns-01) failed" in r.err and "_acme-challenge.mail.example.jp" in r.err
    assert outside_acme(mailroot) == before
    assert not (mailroot / "server.cert").exists()


@pytest.mark.parametrize("case", ["no_tos", "untrusted", "unreachable", "no_terminal"])
def test_refusals_say_what_to_do(pebble, tmp_path, case):
    mailroot = new_mailroot(tmp_path / "MailRoot")
    before = tree(mailroot)
    if case == "no_tos":
        r = run(*issue_args(pebble, mailroot, *http_args(pebble)))
        assert "terms of service" in r.err and "--agree-tos" in r.err
    elif case == "untrusted":
        r = run("acme", "issue", "--mailroot", str(mailroot), "--directory", pebble.directory,
                *http_args(pebble), "--agree-tos")
        assert "could not be verified" in r.err and "--directory-ca" in r.err
    elif case == "unreachable":
        r = run("acme", "issue", "--mailroot", str(mailroot), "--directory",
                f"https://127.0.0.1:{free_port()}/dir", "--agree-tos", *http_args(pebble))
        assert "Cannot reach" in r.err
    else:
        r = run(*issue_args(pebble, mailroot, "--challenge", "dns-01", "--agree-tos"))
        assert "--dns-hook" in r.err
    assert r.code == 1
    assert tree(mailroot) == before


def test_invalid_settings_are_refused_before_anything_happens(tmp_path):
    mailroot = new_mailroot(tmp_path / "MailRoot")
    before = tree(mailroot)
    r = run("acme", "issue", "--mailroot", str(mailroot), "--email", "not-an-address", "--agree-tos")
    assert r.code == 1 and "e-mail" in r.err.lower()
    r = run("acme", "issue", "--mailroot", str(mailroot), "--directory", "ftp://ca.example/dir")
    assert r.code == 2 and "https://" in r.err
    r = run("acme", "issue", "--mailroot", str(mailroot), "--http-port", "70000")
    assert r.code == 2
    assert tree(mailroot) == before


def test_no_pending_csr(tmp_path):
    mailroot = tmp_path / "MailRoot"
    create_sandbox(mailroot)
    r = run("acme", "issue", "--mailroot", str(mailroot), "--agree-tos")
    assert r.code == 1 and "xmailnb csr" in r.err


# -- pieces ---------------------------------------------------------------------------------

def test_responder_serves_only_the_token_path():
    account_key = rsa.generate_private_key(65537, 2048)
    chall = challenges.HTTP01(token=b"t" * 16)
    with acmeflow.Http01Responder(0, "127.0.0.1") as responder:
        responder.add(chall, chall.response(jose.jwk.JWKRSA(key=account_key)), "tok.thumb")
        base = f"http://127.0.0.1:{responder.port}"
        with urllib.request.urlopen(base + chall.path, timeout=5) as resp:
            assert resp.read() == b"tok.thumb"
        # Another token's path, or any other path: never the validation.
        for path in ("/", chall.path[:-1] + "x", "/etc/passwd"):
            try:
                with urllib.request.urlopen(base + path, timeout=5) as resp:
                    assert b"tok.thumb" not in resp.read()
            except (urllib.error.HTTPError, ConnectionError, http.client.HTTPException):
                pass
        port = responder.port
    with busy_port(port):  # stopped with the order: the port is free again
        pass


@pytest.mark.parametrize("code,expect_en,expect_ja", [
    ("rateLimited", "rate limit", "レート制限"),
    ("caa", "CAA", "CAA"),
    ("badNonce", "nonce", "nonce"),
    ("dns", "DNS", "DNS"),
    ("connection", "could not connect", "接続できません"),
    ("somethingNew", "somethingNew", "somethingNew"),
])
def test_every_ca_error_becomes_a_message_and_a_fix(code, expect_en, expect_ja):
    from acme import messages

    err = acmeflow.explain(messages.Error.with_code(code, detail="server says no") if code != "somethingNew"
                           else messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail="server says no"),
                           directory="https://ca.example/dir")
    assert isinstance(err, acmeflow.AcmeError) and err.fix is not None
    assert expect_en in err.msg.render("en") and "server says no" in err.msg.render("en")
    assert expect_ja in err.msg.render("ja")
    assert err.fix.render("ja") != err.fix.render("en")


def test_validation_errors_name_the_host_and_the_challenge_fix():
    from acme import challenges, messages

    chall = messages.ChallengeBody(chall=challenges.HTTP01(token=b"x" * 16), uri="https://ca/c",
                                   status=messages.STATUS_INVALID,
                                   error=messages.Error.with_code("unauthorized", detail="404"))
    authz = messages.AuthorizationResource(
        uri="https://ca/a", body=messages.Authorization(
            identifier=messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="mail.example.jp"),
            challenges=[chall], status=messages.STATUS_INVALID))
    from acme import errors

    err = acmeflow.explain(errors.ValidationError([authz]), challenge="http-01")
    assert "mail.example.jp" in err.msg.render("en") and "http-01" in err.msg.render("en")
    assert ".well-known/acme-challenge" in err.fix.render("en")


def test_network_errors_are_explained():
    import requests

    err = acmeflow.explain(requests.exceptions.SSLError("bad cert"), directory="https://x/dir")
    assert err.msg.key == "acme.net.tls"
    err = acmeflow.explain(requests.exceptions.ConnectionError("refused"), directory="https://x/dir")
    assert err.msg.key == "acme.net.unreachable"
    assert isinstance(err.msg, Msg)


def test_dns01_confirmed_by_the_caller_after_a_visibility_check(pebble, tmp_path):
    """The dashboard's path: records shown, the caller confirms; the records
    are checked on the mock DNS before the CA is asked."""
    mailroot = new_mailroot(tmp_path / "MailRoot", aliases="")
    shown = []

    def confirm(records):
        for record in records:
            body = json.dumps({"host": record.name + ".", "value": record.value}).encode()
            urllib.request.urlopen(urllib.request.Request(pebble.challtestsrv + "/set-txt", data=body),
                                   timeout=10)
        return True

    settings = acmeflow.AcmeSettings(directory=pebble.directory, challenge="dns-01",
                                     directory_ca=Path(pebble.ca_file).read_bytes(), dns_check=True,
                                     dns_server=f"127.0.0.1:{pebble.dns_port}")
    result = acmeflow.issue(resolve(mailroot), settings, agree_tos=True, on_event=shown.append,
                            confirm_dns=confirm)
    assert result.names == ["mail.example.jp"]
    kinds = [e.kind for e in shown]
    assert kinds.index("dns") < kinds.index("authz", kinds.index("dns"))
    assert [e.status for e in shown if e.kind == "authz"] == ["pending", "valid"]
    report = run("diagnose", "--mailroot", str(mailroot), "--json").json
    assert any(f["check"] == "acme.renewal" and f["status"] == "info" for f in report["findings"])


def test_invisible_txt_record_fails_before_asking_the_ca(pebble, tmp_path, monkeypatch):
    monkeypatch.setattr(acmeflow, "DNS_CHECK_SECONDS", 0.5)
    mailroot = new_mailroot(tmp_path / "MailRoot", aliases="")
    before = outside_acme(mailroot)
    settings = acmeflow.AcmeSettings(directory=pebble.directory, challenge="dns-01",
                                     directory_ca=Path(pebble.ca_file).read_bytes(), dns_check=True,
                                     dns_server=f"127.0.0.1:{pebble.dns_port}")
    with pytest.raises(acmeflow.AcmeError) as info:
        acmeflow.issue(resolve(mailroot), settings, agree_tos=True, confirm_dns=lambda records: True)
    assert info.value.msg.key == "acme.dns.not_visible"
    assert "_acme-challenge.mail.example.jp" in info.value.msg.render("ja")
    assert outside_acme(mailroot) == before


def test_host_name_missing_from_the_csr_is_refused_before_ordering(tmp_path):
    mailroot = tmp_path / "MailRoot"
    create_sandbox(mailroot)
    args = [a if a != "mail.example.jp" else "www.example.jp" for a in CSR_ARGS]
    assert run("csr", "--mailroot", str(mailroot), *args).code == 0
    before = tree(mailroot)
    r = run("acme", "issue", "--mailroot", str(mailroot), "--directory", "https://127.0.0.1:9/dir",
            "--agree-tos")
    assert r.code == 1 and "mail.example.jp" in r.err and "nothing was ordered" in r.err
    assert tree(mailroot) == before


def test_privileged_port_message(monkeypatch):
    import errno

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(acmeflow.Http01Responder, "_make_server", denied)
    with pytest.raises(acmeflow.AcmeError) as info:
        acmeflow.Http01Responder(80).start()
    assert "administrator" in info.value.fix.render("en") and "管理者権限" in info.value.fix.render("ja")


def test_acme_without_subcommand_is_a_usage_error():
    r = run("acme")
    assert r.code == 2 and "acme issue" in r.err
    r = run("acme", "renew", "--days", "soon", "--lang", "ja")
    assert r.code == 2 and "soon" in r.err


def test_terminal_confirmation_for_dns01(monkeypatch):
    import io

    from xmailnb.cli import acme as acme_cmd
    from xmailnb.cli.output import Out

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = io.StringIO()
    out = Out("en", io.StringIO(), err)
    monkeypatch.setattr(sys, "stdin", Terminal("\n"))
    ask = acme_cmd._confirm(out)
    assert ask is not None and ask([]) is True
    assert "press Enter" in err.getvalue()
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    assert acme_cmd._confirm(out)([]) is False  # end of input: cancelled
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert acme_cmd._confirm(out) is None  # no terminal: needs --dns-hook


def test_the_status_file_keeps_its_form_and_wrong_values_are_left_out(mr):
    from dataclasses import replace

    from xmailnb.mailroot.acme_state import AcmeStatus, dump_json, load_status, update_status
    from xmailnb.mailroot.layout import REL_ACME_STATUS

    # status.json as a failed renewal after a success leaves it.
    doc = {"issued": ["ab" * 32, "cd" * 32], "renew_days": 20,
           "last_attempt": {"action": "renew", "time": "2026-05-01T03:00:00+00:00", "result": "failed",
                            "error": Msg.of("acme.renew.never").to_record(),
                            "fix": Msg.of("acme.renew.never.fix").to_record()},
           "last_success": {"action": "issue", "time": "2026-04-01T03:00:00+00:00", "leaf_sha256": "ab" * 32,
                            "not_after": "2026-06-30T00:00:00+00:00", "names": ["mail.example.jp"]}}
    path = mr.file(REL_ACME_STATUS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump_json(doc))
    status = load_status(mr)
    assert status.renew_days == 20 and status.issued == ("ab" * 32, "cd" * 32)
    assert status.last_attempt.result == "failed" and Msg.from_record(status.last_attempt.error) is not None
    assert status.last_success.names == ("mail.example.jp",)
    update_status(mr, lambda st: st, {"acme": "test"})
    assert path.read_bytes() == dump_json(doc)  # written back key for key
    update_status(mr, lambda st: replace(st, renew_days=7), {"acme": "test"})
    assert json.loads(path.read_bytes()) == {**doc, "renew_days": 7}

    path.write_text(json.dumps({"issued": "ab", "renew_days": "30", "last_attempt": [1]}))
    assert load_status(mr) == AcmeStatus()
    path.write_text("{}")
    update_status(mr, lambda st: st, {"acme": "test"})
    assert json.loads(path.read_bytes()) == {}  # nothing set, nothing written
