"""Live probes against the practice listener and tiny misbehaving servers."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

import pki
from helpers import CSR_ARGS, run
from xmailnb import practice
from xmailnb.certfiles import cert_fingerprint
from xmailnb.errors import InputError
from xmailnb.mailroot import create_sandbox
from xmailnb.probe import ENDPOINTS, parse_ports, probe, probe_findings

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


def tls_server(tmp_path, chain_pem: bytes, key_pem: bytes, name: str):
    """Implicit TLS serving *chain_pem* exactly as given (like server.cert)."""
    cert_file, key_file = tmp_path / f"{name}.cert", tmp_path / f"{name}.key"
    cert_file.write_bytes(chain_pem)
    key_file.write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_file), str(key_file))

    def behave(conn):
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

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
        assert set(doc["chain"][0]) == {"subject", "issuer", "sha256"}


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
    for old, new in zip(before, after):
        assert old.chain[0]["sha256"] != new_fp
        assert new.chain[0]["sha256"] == new_fp and new.matches_installed is True


def test_misbehaving_servers_each_get_a_clear_finding_in_bounded_time(tmp_path, h):
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = Tiny()
    garbage_smtp = Tiny(lambda c: c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"))
    plain_on_tls = Tiny(lambda c: c.sendall(b"+OK plain POP3 here\r\n"))
    # server.cert written leaf, root, intermediate: the right certificates, wrong order.
    wrong_order = tls_server(tmp_path, h.leaf.pem + h.root.pem + h.intermediate.pem, h.leaf.key_pem(), "order")
    leaf_only = tls_server(tmp_path, h.leaf.pem, h.leaf.key_pem(), "leaf")
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
    old = tls_server(tmp_path, h.leaf.pem, h.leaf.key_pem(), "old")
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
    assert set(ENDPOINTS) == {"smtp", "submission", "smtps", "pop3", "pop3s", "ctrls"}
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
