"""Live probes against the practice listener and tiny misbehaving servers."""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509

import pki
from helpers import CSR_ARGS, run
from xmailnb.flows import practice
from xmailnb.pki import chain as chainmod
from xmailnb.pki.certfiles import cert_fingerprint
from xmailnb.errors import InputError
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.checks.probe import (
    ENDPOINTS,
    EndpointResult,
    Problem,
    check_host,
    default_ports,
    parse_ports,
    passed,
    probe,
    probe_findings,
)
from xmailnb.status import Status
from xmailnb.checks.progress import events
from xmailnb.mailroot.store import Store
from xmailnb.mailroot.workbook import probe_settings, save_probe_settings

HOST = "mail.example.jp"


class Tiny:
    """A one-trick server on 127.0.0.1: *behave(conn)* for every connection."""

    def __init__(self, behave=None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            if self.behave is not None:
                self.behave(conn)
        except (OSError, ssl.SSLError):
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()
        for conn in self.held:
            conn.close()


def _speak(tls, protocol: str) -> None:
    """Just enough SMTP/POP3/CTRL after the handshake for a client's first round."""
    greeting = {"smtp": b"220 test ESMTP\r\n", "pop3": b"+OK test POP3\r\n",
                "ctrl": b"+00000 <1.2@127.0.0.1> XMail 1.27 CTRL Server; test\r\n"}[protocol]
    tls.sendall(greeting)
    buffer = b""
    while True:
        data = tls.recv(4096)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            verb = line.strip().split(b" ")[0].upper()
            if verb == b"EHLO":
                tls.sendall(b"250-test\r\n250 8BITMIME\r\n")
            elif verb == b"CAPA":
                tls.sendall(b"+OK\r\nUIDL\r\n.\r\n")
            elif verb == b"QUIT":
                tls.sendall(b"221 bye\r\n" if protocol == "smtp" else b"+OK bye\r\n")
                return
            else:
                tls.sendall(b"-00011 Bad login\r\n" if protocol == "ctrl" else b"500 what\r\n")


def tls_server(tmp_path, chain_pem: bytes, key_pem: bytes, name: str, *, protocol: str = "pop3",
               want_cert: bool = False, version: ssl.TLSVersion | None = None):
    """Implicit TLS serving *chain_pem* exactly as given (like server.cert),
    then speaking *protocol*; *want_cert* demands a client certificate as
    XMail does with SSLWantCert=1, *version* pins the TLS version."""
    cert_file, key_file = tmp_path / f"{name}.cert", tmp_path / f"{name}.key"
    cert_file.write_bytes(chain_pem)
    key_file.write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    if want_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=chain_pem.decode("ascii"))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version

    def behave(conn):
        with ctx.wrap_socket(conn, server_side=True) as tls:
            _speak(tls, protocol)

    return Tiny(behave)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A MailRoot with a practice certificate installed and its listener running."""
    mr = create_sandbox(tmp_path_factory.mktemp("probe") / "MailRoot")
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    issue = practice.sign_pending_csr(mr)
    r = run("install", "--mailroot", str(mr.path), "--cert", str(issue.server), "--chain", str(issue.intermediate))
    assert r.code == 0, r.err
    server = practice.PracticeServer(mr)
    server.start()
    yield mr, server
    server.stop()


@pytest.fixture(scope="module")
def h():
    return pki.hierarchy(HOST)


def test_probe_practice_listener_starttls_and_implicit_tls(live):
    mr, server = live
    results = probe(ports=server.ports, mailroot=mr, timeout=3)
    assert [r.name for r in results] == ["smtp", "pop3s"]
    installed = mr.server_cert.read_bytes()
    for r in results:
        assert r.reachable and r.verified and r.matches_installed is True
        assert r.tls_version in ("TLSv1.2", "TLSv1.3") and r.cipher
        assert len(r.chain) == 2 and r.anchor == "practice"
        assert r.status == "info"  # verified, but only by the practice root
        assert r.days_left is not None and r.days_left > 80
        assert "practice" in r.message.render("en")
        assert b"BEGIN CERTIFICATE" in installed
        doc = r.to_json("ja")
        assert set(doc) >= {"name", "host", "port", "reachable", "tls_version", "cipher", "chain", "verified",
                            "matches_installed", "status", "message", "fix"}
        assert set(doc["chain"][0]) == {"subject", "issuer", "sha256", "subject_display", "issuer_display"}


def test_probe_without_mailroot_trusts_a_cafile(live):
    mr, server = live
    root = str(practice.issued(mr).root)
    ok = probe(ports={"smtp": server.ports["smtp"]}, servername=HOST, cafile=root, timeout=3)[0]
    assert ok.status == "ok" and ok.verified and ok.anchor == "cafile" and ok.matches_installed is None
    bare = probe(ports={"smtp": server.ports["smtp"]}, servername=HOST, timeout=3)[0]
    assert bare.status == "error" and not bare.verified and bare.reachable and len(bare.chain) == 2
    wrong = probe(ports={"smtp": server.ports["smtp"]}, servername="other.example.jp", cafile=root, timeout=3)[0]
    assert wrong.status == "error" and "other.example.jp" in wrong.message.render("en")


def test_new_certificate_is_served_without_restart(live):
    mr, server = live
    before = probe(ports=server.ports, mailroot=mr, timeout=3)
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS, "--aliases", "smtp.example.jp").code == 0
    issue = practice.sign_pending_csr(mr)
    r = run("install", "--mailroot", str(mr.path), "--cert", str(issue.server), "--chain", str(issue.intermediate))
    assert r.code == 0, r.err
    after = probe(ports=server.ports, mailroot=mr, timeout=3)
    new_fp = cert_fingerprint(issue.leaf)
    for old, new in zip(before, after, strict=True):
        assert old.chain[0].sha256 != new_fp
        assert new.chain[0].sha256 == new_fp and new.matches_installed is True


def test_misbehaving_servers_each_get_a_clear_finding_in_bounded_time(tmp_path, h):
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = Tiny()
    garbage_smtp = Tiny(lambda c: c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"))
    plain_on_tls = Tiny(lambda c: c.sendall(b"+OK plain POP3 here\r\n"))
    # server.cert written leaf, root, intermediate: the right certificates, wrong order.
    wrong_order = tls_server(tmp_path, h.leaf.pem + h.root.pem + h.intermediate.pem, h.leaf.key_pem(), "order")
    leaf_only = tls_server(tmp_path, h.leaf.pem, h.leaf.key_pem(), "leaf", protocol="smtp")
    try:
        ports = {"submission": closed_port, "pop3": silent.port, "smtp": garbage_smtp.port,
                 "ctrls": plain_on_tls.port, "pop3s": wrong_order.port, "smtps": leaf_only.port}
        start = time.monotonic()
        results = {r.name: r for r in probe(ports=ports, servername=HOST, cafile=_write(tmp_path, h.root.pem),
                                            timeout=1)}
        elapsed = time.monotonic() - start
    finally:
        for s in (silent, garbage_smtp, plain_on_tls, wrong_order, leaf_only):
            s.close()
    assert elapsed < 3, elapsed  # concurrent: about one timeout, not the sum
    assert results["submission"].status == "error" and not results["submission"].reachable
    assert "refused" in results["submission"].message.render("en")
    assert results["pop3"].status == "error" and results["pop3"].reachable
    assert "said nothing" in results["pop3"].message.render("en")
    assert results["smtp"].status == "error" and "not in SMTP" in results["smtp"].message.render("en")
    assert "HTTP/1.0 400" in results["smtp"].message.render("en")
    assert results["ctrls"].status == "error" and "without TLS" in results["ctrls"].message.render("en")
    order = results["pop3s"]
    assert order.verified and order.status == "warn" and len(order.chain) == 3
    assert "order" in order.message.render("en") and order.fix is not None
    # The leaf without its intermediate: no client can verify it.
    assert results["smtps"].status == "error" and len(results["smtps"].chain) == 1
    assert results["smtps"].reachable and not results["smtps"].verified
    for r in results.values():
        assert r.fix is not None
        assert r.message.render("ja") != r.message.render("en")


def _write(tmp_path, data: bytes) -> str:
    path = tmp_path / "ca.pem"
    path.write_bytes(data)
    return str(path)


def test_other_certificate_than_installed_is_a_warning(live, tmp_path, h):
    mr, _server = live
    other = tls_server(tmp_path, h.chain_pem, h.leaf.key_pem(), "other")
    try:
        r = probe(ports={"pop3s": other.port}, mailroot=mr, cafile=_write(tmp_path, h.root.pem), timeout=2)[0]
    finally:
        other.close()
    assert r.verified and r.matches_installed is False and r.status == "warn"
    assert "different certificate" in r.message.render("en")


def test_leaf_only_from_an_old_xmail_is_named(tmp_path, h):
    mr = create_sandbox(tmp_path / "MailRoot")
    mr.server_cert.write_bytes(h.chain_pem)
    old = tls_server(tmp_path, h.leaf.pem, h.leaf.key_pem(), "old", protocol="smtp")
    try:
        r = probe(ports={"smtps": old.port}, mailroot=mr, cafile=_write(tmp_path, h.root.pem), timeout=2)[0]
    finally:
        old.close()
    assert r.status == "error" and r.matches_installed is False
    assert "1.27" in r.message.render("en") and "1.27" in r.fix.render("en")


def test_handshake_failure_is_an_error_not_a_hang(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")  # no server.cert: XMail's handshake fails
    with practice.PracticeServer(mr) as server:
        results = probe(ports=server.ports, mailroot=mr, timeout=2)
    for r in results:
        assert r.status == "error" and r.reachable and not r.chain
        assert "diagnose" in r.fix.render("en")


def test_parse_ports():
    assert parse_ports("smtp=2525,pop3s=1995") == {"smtp": 2525, "pop3s": 1995}
    assert parse_ports("smtp, ctrls") == {"smtp": 25, "ctrls": 6018}
    assert set(ENDPOINTS) == {"smtp", "submission", "smtps", "pop3", "pop3s", "ctrl", "ctrls"}
    assert parse_ports("ctrl") == {"ctrl": 6017}
    for bad in ("", "imap=143", "smtp=0", "smtp=70000", "smtp=abc", "smtp=25,smtp=26", "smtp=-1"):
        with pytest.raises(InputError) as exc:
            parse_ports(bad)
        assert exc.value.field == "ports"


@pytest.mark.parametrize("argv", [["--ports", "imap=143"], ["--timeout", "0"], ["--timeout", "x"],
                                  ["--cafile", "/nonexistent/ca.pem"]])
def test_probe_command_bad_input_exit_1(argv):
    r = run("probe", *argv, "--json")
    assert r.code == 1 and "error" in r.json


def test_probe_command_json_and_exit_codes(live):
    mr, server = live
    ports = f"smtp={server.ports['smtp']},pop3s={server.ports['pop3s']}"
    r = run("probe", "--mailroot", str(mr.path), "--ports", ports, "--timeout", "3", "--json")
    assert r.code == 0, r.err
    assert [e["status"] for e in r.json["endpoints"]] == ["info", "info"]
    r = run("probe", "--ports", ports, "--timeout", "3", "--lang", "ja")
    # No MailRoot: nothing to compare with, and verified for the host given.
    assert r.code == 1 and "127.0.0.1 として" in r.out and "[エラー]" in r.out


def test_diagnose_probe_adds_findings(live):
    mr, server = live
    r = run("diagnose", "--mailroot", str(mr.path), "--probe", "--ports", f"smtp={server.ports['smtp']}",
            "--timeout", "3", "--json")
    checks = {f["check"]: f for f in r.json["findings"]}
    assert checks["probe.smtp"]["status"] == "info" and checks["probe.smtp"]["matches_installed"] is True
    assert r.code == 0
    findings = probe_findings(probe(ports={"pop3s": server.ports["pop3s"]}, mailroot=mr, timeout=3))
    assert [f.check for f in findings] == ["probe.pop3s"]


def test_bad_servername_is_refused_before_connecting():
    with pytest.raises(InputError) as exc:
        probe(ports={"smtp": 1}, servername="bad name!")
    assert exc.value.field == "servername"


# -- a client's first round after the handshake -----------------------------------------

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
@pytest.mark.parametrize("protocol,name", [("smtp", "smtps"), ("pop3", "pop3s"), ("ctrl", "ctrls")])
def test_server_demanding_a_client_certificate_fails(tmp_path, h, version, protocol, name):
    # TLS 1.3: the handshake completes, the refusal is an alert on the first
    # read; TLS 1.2: the handshake itself fails.  Either way no mail client
    # without a certificate gets in.
    strict = tls_server(tmp_path, h.chain_pem, h.leaf.key_pem(), "strict", protocol=protocol, want_cert=True,
                        version=version)
    normal = tls_server(tmp_path, h.chain_pem, h.leaf.key_pem(), "normal", protocol=protocol, version=version)
    cafile = _write(tmp_path, h.root.pem)
    try:
        bad = probe(ports={name: strict.port}, servername=HOST, cafile=cafile, timeout=3)[0]
        good = probe(ports={name: normal.port}, servername=HOST, cafile=cafile, timeout=3)[0]
    finally:
        strict.close()
        normal.close()
    assert bad.status == "error" and bad.problem == Problem.CLIENT_CERT and bad.reachable
    assert not bad.verified
    en, ja = bad.message.render("en"), bad.message.render("ja")
    assert "clients without one" in en and "SSLWantCert" in en
    assert "クライアント証明書" in ja and "SSLWantCert" in ja
    assert "SSLWantCert=0" in bad.fix.render("en")
    if version is ssl.TLSVersion.TLSv1_3:
        # The server's certificate came before the refusal: shown as served.
        assert bad.tls_version == "TLSv1.3" and len(bad.chain) == 2
    assert good.status == "ok" and good.verified and good.problem is None, good.message.render("en")


def test_handshake_then_hang_up_is_not_ok(tmp_path, h):
    # A server that completes the handshake and then drops the client: the
    # certificate is fine, but no client can use it.
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(h.chain_pem)
    key_file.write_bytes(h.leaf.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_file), str(key_file))

    def hang_up(conn):
        ctx.wrap_socket(conn, server_side=True).close()

    server = Tiny(hang_up)
    try:
        r = probe(ports={"smtps": server.port}, servername=HOST, cafile=_write(tmp_path, h.root.pem), timeout=2)[0]
    finally:
        server.close()
    # The server read all the client sent (the handshake) and hung up: a
    # plain end of stream while waiting for the greeting, never a reset.
    assert r.status == "error" and r.problem is Problem.CLOSED
    assert "closed the connection (waiting for 220)" in r.message.render("en")


def _ctrl_starttls_server(ctx, *, refuse: bool = False):
    """XMail's CTRL port: greeting, ``#!TLS``, then TLS; it waits for the login line."""
    def behave(conn):
        conn.sendall(b"+00000 <1.2@127.0.0.1> XMail 1.27 CTRL Server; test\r\n")
        line = b""
        while not line.endswith(b"\n"):
            data = conn.recv(1)
            if not data:
                return
            line += data
        if refuse or line.strip() != b"#!TLS":
            conn.sendall(b"-00260 SSL disabled\r\n")
            return
        conn.sendall(b"+00000 Ready to start TLS mode\r\n")
        with ctx.wrap_socket(conn, server_side=True) as tls:
            login = tls.recv(4096)
            if login.strip() == b"":
                tls.sendall(b"-00011 Bad CTRL login\r\n")

    return Tiny(behave)


def test_ctrl_starttls_on_request(tmp_path, h):
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(h.chain_pem)
    key_file.write_bytes(h.leaf.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    ok, off = _ctrl_starttls_server(ctx), _ctrl_starttls_server(ctx, refuse=True)
    cafile = _write(tmp_path, h.root.pem)
    try:
        good = probe(ports={"ctrl": ok.port}, servername=HOST, cafile=cafile, timeout=3)[0]
        refused = probe(ports={"ctrl": off.port}, servername=HOST, cafile=cafile, timeout=3)[0]
    finally:
        ok.close()
        off.close()
    assert good.status == "ok" and good.verified, good.message.render("en")
    assert refused.status == "error" and refused.problem == Problem.NO_STARTTLS
    assert "EnableCTRL-TLS" in refused.fix.render("en")


# -- the practice listener behaves like XMail 1.27 -------------------------------------------

def test_practice_listener_honours_sslwantcert(live):
    mr, server = live
    original = mr.server_tab.read_bytes()
    try:
        assert run("settings", "--mailroot", str(mr.path), "--set", "SSLWantCert=1").code == 0
        locked = probe(ports=server.ports, mailroot=mr, timeout=3)
        for r in locked:
            assert r.status == "error" and r.problem == Problem.CLIENT_CERT, r.message.render("en")
            # Read from the MailRoot's server.tab: the setting is named as set.
            assert "server.tab sets SSLWantCert=1" in r.message.render("en")
        # diagnose says what it means for ordinary mail clients, too.
        d = run("diagnose", "--mailroot", str(mr.path), "--json")
        settings = {f["check"]: f for f in d.json["findings"]}["settings.tls"]
        assert settings["status"] == "warn" and "verify.want_cert" in settings["problems"]
        assert "client certificate" in settings["message"]
    finally:
        mr.server_tab.write_bytes(original)
    again = probe(ports=server.ports, mailroot=mr, timeout=3)
    assert [r.status for r in again] == ["info", "info"]


def test_practice_listener_without_smtp_starttls(live):
    mr, server = live
    original = mr.server_tab.read_bytes()
    try:
        assert run("settings", "--mailroot", str(mr.path), "--set", "EnableSMTP-TLS=0").code == 0
        r = probe(ports={"smtp": server.ports["smtp"]}, mailroot=mr, timeout=3)[0]
    finally:
        mr.server_tab.write_bytes(original)
    assert r.status == "error" and r.problem == Problem.NO_STARTTLS
    assert "EnableSMTP-TLS" in r.fix.render("en")


# -- which ports -----------------------------------------------------------------------------

def test_default_ports_are_the_stock_xmail_listeners(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    probed, left_out = default_ports(mr)
    assert probed == {"smtp": 25, "smtps": 465, "pop3": 110, "pop3s": 995, "ctrls": 6018}
    assert left_out == {} and default_ports() == (probed, {})
    assert "submission" not in probed and "ctrl" not in probed
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnablePOP3-TLS=0",
               "--set", "EnableSMTP-TLS=0").code == 0
    probed, left_out = default_ports(mr)
    assert set(probed) == {"smtps", "pop3s", "ctrls"} and left_out == {"smtp": 25, "pop3": 110}


def test_default_probe_has_no_submission_endpoint(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    # Nothing listens on 127.0.0.1's mail ports here: every endpoint is
    # refused, quickly; what matters is which endpoints are tried.
    results = probe("127.0.0.1", mailroot=mr, timeout=1)
    assert [r.name for r in results] == ["smtp", "smtps", "pop3", "pop3s", "ctrls"]
    r = run("probe", "--mailroot", str(mr.path), "--timeout", "1", "--json")
    assert [e["name"] for e in r.json["endpoints"]] == ["smtp", "smtps", "pop3", "pop3s", "ctrls"]
    assert all(e["port"] != 587 for e in r.json["endpoints"])
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnablePOP3-TLS=0").code == 0
    skipped = {r.name: r for r in probe("127.0.0.1", mailroot=mr, timeout=1)}["pop3"]
    assert skipped.status == "info" and skipped.problem == Problem.STARTTLS_OFF and not skipped.reachable
    assert "EnablePOP3-TLS" in skipped.message.render("en")


def test_named_ports_are_remembered_for_the_mailroot(live, monkeypatch):
    mr, server = live
    ports = f"smtp={server.ports['smtp']},submission={server.ports['smtp']},pop3s={server.ports['pop3s']}"
    try:
        r = run("probe", "--mailroot", str(mr.path), "--ports", ports, "--timeout", "3")
        assert r.code == 0, r.err
        assert "sslconf/xmailnb.json" in r.err
        assert probe_settings(mr).ports == parse_ports(ports)
        assert json.loads(mr.file("sslconf/xmailnb.json").read_text())["probe"]["ports"]["submission"] == \
            server.ports["smtp"]
        # The next check without --ports probes what was named, submission included.
        again = run("probe", "--mailroot", str(mr.path), "--timeout", "3", "--json")
        assert [e["name"] for e in again.json["endpoints"]] == ["smtp", "submission", "pop3s"]
        # Bookkeeping: a plain rollback steps over it.
        assert Store(mr).history(limit=1)[0].action == "workbook"
        assert Store(mr).history(limit=1, bookkeeping=False)[0].action != "workbook"
        # A run that reaches no server changes nothing (exit 1 says so):
        # not the settings, not the file, no archive entry.
        workbook = mr.file("sslconf/xmailnb.json").read_bytes()
        entries = len(Store(mr).history(limit=100))
        unreached = run("probe", "--mailroot", str(mr.path), "--ports", "default", "--timeout", "1")
        assert unreached.code == 1
        assert "stock" not in unreached.err
        assert probe_settings(mr).ports == parse_ports(ports)
        assert mr.file("sslconf/xmailnb.json").read_bytes() == workbook
        assert len(Store(mr).history(limit=100)) == entries
    finally:
        # "Stock" listeners where the practice server listens, so that this
        # run reaches a server: --ports default probes them in this very run.
        monkeypatch.setitem(ENDPOINTS, "smtp", server.ports["smtp"])
        monkeypatch.setitem(ENDPOINTS, "pop3s", server.ports["pop3s"])
        forget = run("probe", "--mailroot", str(mr.path), "--ports", "default", "--timeout", "1", "--json")
    assert "stock" in forget.err and probe_settings(mr).ports is None
    probed = {e["name"]: e for e in forget.json["endpoints"]}
    assert list(probed) == ["smtp", "smtps", "pop3", "pop3s", "ctrls"]
    assert (probed["smtp"]["port"], probed["smtp"]["status"]) == (server.ports["smtp"], "info")


def test_probe_records_the_live_check_for_step_progress(live):
    mr, server = live
    before = len([e for e in events(mr) if e.get("event") == "probe"])
    r = run("probe", "--mailroot", str(mr.path), "--ports",
            f"smtp={server.ports['smtp']},pop3s={server.ports['pop3s']}", "--timeout", "3")
    assert r.code == 0, r.err
    probes = [e for e in events(mr) if e.get("event") == "probe"]
    assert len(probes) == before + 1
    last = probes[-1]
    installed = cert_fingerprint(x509.load_pem_x509_certificate(mr.server_cert.read_bytes()))
    assert last["passed"] is True and last["worst"] == "info" and last["served"] == [installed]
    # Without a MailRoot nothing is compared, and nothing is recorded.
    run("probe", "--ports", f"smtp={server.ports['smtp']}", "--timeout", "3")
    assert len([e for e in events(mr) if e.get("event") == "probe"]) == before + 1


@pytest.mark.parametrize("host", ["a" * 300, "bad host", "mail..example.jp", "[not-an-ip]", "-mail.example.jp",
                                  "mail_example.jp\x00", "   "])
def test_bad_host_is_a_clear_refusal(host):
    with pytest.raises(InputError) as exc:
        probe(host, ports={"smtp": 25}, timeout=1)
    assert exc.value.field == "host"
    assert "Unexpected" not in exc.value.render("en")
    r = run("probe", f"--host={host}", "--ports", "smtp", "--timeout", "1", "--json")
    assert r.code == 1 and r.json["error"]["field"] == "host"
    message = r.json["error"]["message"]
    assert len(message) < 200 and "--host" in r.json["error"]["fix"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "::1", "MAIL.Example.JP.", "メール.example.jp"])
def test_good_hosts_pass(host):
    assert check_host(host)


def test_live_check_of_a_sandbox_without_certificate_says_nothing_is_installed(tmp_path, h):
    # Issue 19 §4: a server sending a certificate while the MailRoot has none
    # once ended in "stopped on something unexpected: IndexError".
    mr = create_sandbox(tmp_path / "MailRoot")
    assert not mr.server_cert.exists()
    other = tls_server(tmp_path, h.chain_pem, h.leaf.key_pem(), "served")
    try:
        r = probe(ports={"pop3s": other.port}, mailroot=mr, cafile=_write(tmp_path, h.root.pem), timeout=2)[0]
    finally:
        other.close()
    assert r.problem is None and r.verified and r.matches_installed is False and r.status == "warn"
    assert r.message.render("en").endswith("The MailRoot has no usable server.cert to compare with.")
    assert r.fix.page("en") == ("This MailRoot has no certificate installed yet: "
                                "install yours in step 4 (Install).")
    assert r.fix.render("en") == ("This MailRoot has no certificate installed yet: install yours (xmailnb install), "
                                  "or name the MailRoot the server really uses with --mailroot.")


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def test_a_refused_port_on_the_sandbox_points_to_the_practice_server(tmp_path):
    sandbox = create_sandbox(tmp_path / "MailRoot")
    port = _free_port()
    r = probe(ports={"smtp": port}, mailroot=sandbox, timeout=2)[0]
    assert r.problem is Problem.REFUSED
    assert r.fix.page("en") == ("This is the practice sandbox: start the practice server above "
                                "(Start practice server); the Ports field then takes its ports.")
    assert r.fix.page("ja") == ("ここは練習用サンドボックスです。上の「練習用サーバーを起動」を押してください。"
                                "「ポート」の欄に練習用サーバーのポートが入ります。")
    # On a live MailRoot there is no practice server to start: XMail it is.
    live_root = dataclasses.replace(sandbox, is_sandbox=False)
    r = probe(ports={"smtp": port}, mailroot=live_root, timeout=2)[0]
    assert r.fix.page("en") == (f"Start XMail, or check that it serves smtp on port {port}. "
                                "If you do not offer smtp, remove it from the Ports field.")
    assert r.fix.render("en") == (f"Start XMail, or check that it serves smtp on port {port}. "
                                  "If you do not offer smtp, leave it out with --ports.")


def _result(status: str, problem: Problem | None = None) -> EndpointResult:
    return EndpointResult(name="smtp", host="127.0.0.1", port=25, status=Status(status), problem=problem)


@pytest.mark.parametrize("statuses, expected", [
    ([], False),
    ([("info", Problem.STARTTLS_OFF)], False),
    ([("info", Problem.STARTTLS_OFF), ("ok", None)], True),
    ([("warn", None), ("info", None)], True),
    ([("ok", None), ("error", Problem.REFUSED)], False),
    ([("info", Problem.STARTTLS_OFF), ("error", Problem.REFUSED)], False),
])
def test_passed_is_one_rule(statuses, expected):
    assert passed([_result(s, p) for s, p in statuses]) is expected


def test_only_starttls_endpoints_turned_off_is_no_pass_for_the_command(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    assert run("settings", "--mailroot", str(mr.path), "--set", "EnableSMTP-TLS=0",
               "--set", "EnablePOP3-TLS=0").code == 0
    save_probe_settings(mr, host=None, ports={"smtp": _free_port(), "pop3": _free_port()})
    r = run("probe", "--mailroot", str(mr.path), "--json")
    assert [(e["name"], e["problem"]) for e in r.json["endpoints"]] == [("smtp", "starttls_off"),
                                                                        ("pop3", "starttls_off")]
    assert r.code == 1
    assert [e["passed"] for e in events(mr) if e.get("event") == "probe"] == [False]


def test_json_keeps_hostile_names_and_adds_printable_twins(tmp_path):
    cn = "mail\x1b[2J\r\nOK\u202e\x9b31m.example.jp"
    leaf = pki.self_signed_leaf(cn, sans=["mail.example.jp"])
    server = tls_server(tmp_path, leaf.pem, leaf.key_pem(), "hostile")
    try:
        r = run("probe", "--ports", f"pop3s={server.port}", "--timeout", "2", "--json")
    finally:
        server.close()
    served = r.json["endpoints"][0]["chain"][0]
    assert served["subject"] == f"CN={cn},O=xmailnb tests"
    assert served["subject_display"] == "CN=mail\\x1b[2J\\x0d\\x0aOK\\u202e\\x9b31m.example.jp,O=xmailnb tests"
    assert served["issuer_display"] == served["subject_display"]
    # diagnose --json: the same twins beside the installed certificate's names.
    mr = create_sandbox(tmp_path / "MailRoot")
    mr.server_cert.write_bytes(leaf.pem)
    doc = run("diagnose", "--mailroot", str(mr.path), "--json").json
    found = {f["check"]: f for f in doc["findings"]}
    assert found["cert.present"]["subject_display"] == ("CN=mail\\x1b[2J\\x0d\\x0aOK\\u202e\\x9b31m.example.jp,"
                                                         "O=xmailnb tests")
    assert "\x1b" in found["cert.present"]["subject"]
    assert found["cert.hostname"]["names_display"] == found["cert.hostname"]["names"]
    assert all(ch.isprintable() for f in doc["findings"] for k, v in f.items() if k.endswith("_display")
               for ch in (v if isinstance(v, str) else "".join(v)))


@pytest.mark.parametrize("argv", [["--host", "no-such-host.invalid"], ["--timeout", "1e-300"]])
def test_a_check_that_reaches_no_server_remembers_nothing(tmp_path, argv):
    # Issue 17 §7: exit status 1 promises that nothing was changed.
    mr = create_sandbox(tmp_path / "MailRoot")
    history = len(Store(mr).history(limit=100))
    r = run("probe", "--mailroot", str(mr.path), "--ports", f"smtps={_free_port()},pop3s={_free_port()}", *argv)
    assert r.code == 1
    assert not mr.file("sslconf/xmailnb.json").exists()
    assert len(Store(mr).history(limit=100)) == history
    assert probe_settings(mr).ports is None and probe_settings(mr).host is None
    assert "Remembered" not in r.err


def test_a_served_chain_too_costly_to_sort_out_is_named_not_a_generic_failure(tmp_path, h):
    # The judging of what a server sent shares the signature budget of the
    # whole check (chain.work_budget); here a small outer budget stands in
    # for a chain that would need more than 2,000 checks.
    import hostile

    server = tls_server(tmp_path, h.chain_pem + hostile.pem(hostile.same_name(20)), h.leaf.key_pem(), "costly")
    cafile = _write(tmp_path, h.root.pem)
    try:
        with chainmod.work_budget(3):
            r = probe(ports={"pop3s": server.port}, servername=HOST, cafile=cafile, timeout=5)[0]
    finally:
        server.close()
    assert r.reachable and r.status == "error" and r.problem == "too_costly" and len(r.chain) == 22
    assert not passed([r])
    assert r.message.render("en") == (f"Port {server.port} sent 22 certificates; sorting them out would take "
                                      "more than 3 signature checks, so they were not judged.")
    assert r.fix.render("en") == ("Make server.cert hold only the server certificate and its intermediate "
                                  "certificates, in order (step 4 installs them that way), then check again.")
    assert r.message.render("ja") == (f"ポート {server.port} から届いた証明書 22 枚は、関係を調べるのに署名の確認が "
                                      "3 回を超えるため、判定しませんでした。")
