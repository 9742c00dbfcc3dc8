"""Training without a public CA or a live server: a practice CA and listener.

:func:`sign_pending_csr` signs the MailRoot's pending CSR with a local
two-level practice CA (root -> intermediate -> server certificate), shaped
the way a public CA shapes what it issues, so that the install step and the
diagnosis see exactly what they would see in production: a server
certificate and an intermediate to put after it.  Every certificate says it
is a practice one (issuer Organization "xmailnb Practice CA", CNs ending in
"NOT FOR PRODUCTION"), and :mod:`xmailnb.checks.diagnose` reports it as such.

:class:`PracticeServer` is a tiny stand-in for XMail on 127.0.0.1: SMTP with
STARTTLS and POP3 over implicit TLS, loading ``server.cert``/``server.key``
and server.tab's TLS settings on every connection as XMail 1.27 does, so a
newly installed certificate is served from the next connection on, and
``SSLWantCert=1`` locks out clients without a certificate as it would on
the real server.

>>> issue = sign_pending_csr(mr)                          # doctest: +SKIP
>>> server = PracticeServer(mr); server.start()          # doctest: +SKIP
{'smtp': 40123, 'pop3s': 40124}
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import selectors
import socket
import ssl
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .. import clock
from ..checks.installed import PRACTICE_ORG
from ..errors import InputError
from ..i18n import Msg
from ..mailroot.layout import (
    REL_PRACTICE_INTERMEDIATE_CERT,
    REL_PRACTICE_INTERMEDIATE_KEY,
    REL_PRACTICE_ISSUED_INTERMEDIATE,
    REL_PRACTICE_ISSUED_ROOT,
    REL_PRACTICE_ISSUED_ROOT_DER,
    REL_PRACTICE_ISSUED_SERVER,
    REL_PRACTICE_ROOT_CERT,
    REL_PRACTICE_ROOT_KEY,
    MailRoot,
)
from ..mailroot.servertab import ServerTab, variable
from ..mailroot.store import Action, Store
from ..pki import certfiles, keys
from ..pki.certfiles import cert_fingerprint
from ..pki.chain import issued_by

__all__ = [
    "MAX_DAYS",
    "PracticeIssue",
    "sign_pending_csr",
    "issued",
    "PracticeServer",
    "running_ports",
]

#: Organization of every practice CA certificate (diagnose looks for it).
ROOT_CN = "xmailnb Practice Root CA \u2014 NOT FOR PRODUCTION"
INTERMEDIATE_CN = "xmailnb Practice Intermediate CA \u2014 NOT FOR PRODUCTION"
#: Longest server certificate validity: public CAs may not exceed 398 days
#: (CA/Browser Forum baseline requirements); a day less keeps us inside.
MAX_DAYS = 397
_ROOT_DAYS = 3650
_INTERMEDIATE_DAYS = 1825
# Public CAs backdate notBefore a little so that a client whose clock runs
# behind does not see a "not yet valid" certificate.
_BACKDATE = dt.timedelta(hours=1)



@dataclass(frozen=True)
class PracticeIssue:
    """What the practice CA issued, as files in the MailRoot.

    Attributes:
        server: the server certificate (PEM), to install with ``--cert``.
        intermediate: the intermediate CA certificate (PEM), ``--chain``.
        root: the practice root (PEM), for a mail client to trust in training.
        root_der: the same root in DER (``.der``), which some clients and
            Windows' certificate import prefer.
        leaf: the server certificate itself.
        ca_created: the practice CA was created by this call (else reused).
    """

    server: Path
    intermediate: Path
    root: Path
    root_der: Path
    leaf: x509.Certificate
    ca_created: bool = False



def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _ca_name(cn: str, tag: str) -> x509.Name:
    # The OU tag tells two practice CAs apart (two sandboxes, a re-created
    # CA) in a client's certificate list, where only names are shown.
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, PRACTICE_ORG),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"Training only {tag}"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)


@dataclass
class _CA:
    root: x509.Certificate
    root_key: Any
    intermediate: x509.Certificate
    intermediate_key: Any


def _new_ca(now: dt.datetime) -> _CA:
    tag = secrets.token_hex(4)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _ca_name(ROOT_CN, tag)
    start = now - _BACKDATE
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=_ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    int_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(INTERMEDIATE_CN, tag)).issuer_name(root_name)
        .public_key(int_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=_INTERMEDIATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(int_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return _CA(root, root_key, intermediate, int_key)


def _load_ca(read: Callable[[str], bytes | None], now: dt.datetime) -> _CA | None:
    """The MailRoot's practice CA (its files read with *read*), or ``None``
    when missing, broken, about to expire or not valid yet (a fresh one is made then)."""
    try:
        files = [read(rel) for rel in (REL_PRACTICE_ROOT_CERT, REL_PRACTICE_INTERMEDIATE_CERT, REL_PRACTICE_ROOT_KEY, REL_PRACTICE_INTERMEDIATE_KEY)]
        if any(data is None for data in files):
            return None
        root = x509.load_pem_x509_certificate(files[0])  # type: ignore[arg-type]
        intermediate = x509.load_pem_x509_certificate(files[1])  # type: ignore[arg-type]
        root_key = serialization.load_pem_private_key(files[2], None)  # type: ignore[arg-type]
        int_key = serialization.load_pem_private_key(files[3], None)  # type: ignore[arg-type]
    except (OSError, ValueError, TypeError):
        return None
    if not (keys.public_key_matches(root_key, root) and keys.public_key_matches(int_key, intermediate)
            and issued_by(intermediate, root)):
        return None
    if min(root.not_valid_after_utc, intermediate.not_valid_after_utc) < now + dt.timedelta(days=30):
        return None
    if max(root.not_valid_before_utc, intermediate.not_valid_before_utc) > now - _BACKDATE:
        # Not valid yet by this clock (set back since the CA was made): what
        # it signed now would be refused at install.  A fresh CA is made; the
        # store archives this one.
        return None
    return _CA(root, root_key, intermediate, int_key)


def _csr_names(csr: x509.CertificateSigningRequest) -> tuple[str | None, list[x509.GeneralName]]:
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    san = certfiles.subject_alt_name(csr)
    # The DNS names and IP addresses only, as the CSR lists them.
    names: list[x509.GeneralName] = [] if san is None else [
        n for n in san if isinstance(n, (x509.DNSName, x509.IPAddress))]
    if not names and cn:
        # An old-style request with the name only in the CN: public CAs copy
        # it into the subjectAltName, which is all clients look at.
        try:
            names = [x509.IPAddress(ipaddress.ip_address(cn))]
        except ValueError:
            names = [x509.DNSName(cn)]
    return cn, names


def _read_pending_csr(mr: MailRoot, data: bytes | None) -> x509.CertificateSigningRequest:
    if data is None:
        raise InputError.of("practice.no_csr", "practice.no_csr.fix", field="csr", path=mr.rel_pending_csr)
    csr = certfiles.csr_from(data, name=mr.rel_pending_csr, field="csr")
    if not csr.is_signature_valid:
        raise InputError.of("practice.csr_bad_signature", "practice.csr_bad_signature.fix", field="csr",
                            path=mr.rel_pending_csr)
    return csr


def _check_days(days: Any) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InputError.of("practice.days.invalid", "practice.days.invalid.fix", field="days",
                            value=days, max=MAX_DAYS)
    return min(days, MAX_DAYS)


def sign_pending_csr(mr: MailRoot, *, days: int = 90) -> PracticeIssue:
    """Sign the MailRoot's pending ``sslconf/server.csr`` with its practice CA.

    The CA (root and intermediate, RSA 2048, SHA-256) is created under
    ``sslconf/practice-ca/`` on first use and reused afterwards.  The server
    certificate carries the CSR's names as subjectAltNames, serverAuth and
    clientAuth usage (XMail offers server.cert as client certificate on
    outbound SMTP too), key identifiers and a random serial, like a public
    CA's.  All files go through the store (archived, atomic, locked).

    Args:
        days: validity of the server certificate; capped at :data:`MAX_DAYS`
            and at the intermediate's own expiry.

    Returns:
        Where the issued files are, and the server certificate.

    Raises:
        InputError: no pending CSR (``practice.no_csr``), a CSR that is not
            one, whose signature does not verify, with no name, or with a
            weak key; ``days`` not a positive integer.
        BusyError: another writer holds the MailRoot.
    """
    days = _check_days(days)
    # The CSR and the CA are read under the store's lock: two signings at
    # once never mix a leaf of one CA with the root of another.  The store
    # creates the folders (0700: the CA keys live there) only when it writes.
    with Store(mr).transaction(Action.PRACTICE_CA) as tx:
        leaf, ca, created, names = _sign(mr, tx.read, days)
        for rel, data in _ca_files(ca, leaf).items():
            tx.write(rel, data)
        tx.details.update({
            "leaf_sha256": cert_fingerprint(leaf),
            "subject": leaf.subject.rfc4514_string(),
            "sans": [str(n.value) for n in names],
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "root_sha256": cert_fingerprint(ca.root),
            "ca_created": created,
        })
    return PracticeIssue(server=mr.file(REL_PRACTICE_ISSUED_SERVER), intermediate=mr.file(REL_PRACTICE_ISSUED_INTERMEDIATE),
                         root=mr.file(REL_PRACTICE_ISSUED_ROOT), root_der=mr.file(REL_PRACTICE_ISSUED_ROOT_DER), leaf=leaf,
                         ca_created=created)


def _sign(mr: MailRoot, read: Callable[[str], bytes | None],
          days: int) -> tuple[x509.Certificate, _CA, bool, list[x509.GeneralName]]:
    csr = _read_pending_csr(mr, read(mr.rel_pending_csr))
    public_key = csr.public_key()
    problem = keys.key_strength_problem(public_key)
    if problem is not None:
        raise InputError(problem, Msg.of("practice.csr_weak.fix"), field="csr")
    cn, names = _csr_names(csr)
    if not names:
        raise InputError.of("practice.csr_no_name", "practice.no_csr.fix", field="csr", path=mr.rel_pending_csr)

    now = clock.now()
    ca = _load_ca(read, now)
    created = ca is None
    if ca is None:
        ca = _new_ca(now)
    start = now - _BACKDATE
    end = min(start + dt.timedelta(days=days), ca.intermediate.not_valid_after_utc)
    subject_cn = cn or (names[0].value if isinstance(names[0], x509.DNSName) else str(names[0].value))
    rsa_leaf = isinstance(public_key, rsa.RSAPublicKey)
    if not rsa_leaf and not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise InputError.of("practice.csr_key_type", "practice.csr_weak.fix", field="csr")
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(ca.intermediate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # keyEncipherment only for RSA: an EC key cannot encipher, and
        # strict clients reject the bit on one.
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=rsa_leaf, data_encipherment=False, key_agreement=False,
                                     key_cert_sign=False, crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.intermediate_key.public_key()),
                       critical=False)
        .sign(ca.intermediate_key, hashes.SHA256())
    )
    return leaf, ca, created, names


def _ca_files(ca: _CA, leaf: x509.Certificate) -> dict[str, bytes]:
    return {
        REL_PRACTICE_ROOT_KEY: _key_pem(ca.root_key),
        REL_PRACTICE_ROOT_CERT: _pem(ca.root),
        REL_PRACTICE_INTERMEDIATE_KEY: _key_pem(ca.intermediate_key),
        REL_PRACTICE_INTERMEDIATE_CERT: _pem(ca.intermediate),
        REL_PRACTICE_ISSUED_SERVER: _pem(leaf),
        REL_PRACTICE_ISSUED_INTERMEDIATE: _pem(ca.intermediate),
        REL_PRACTICE_ISSUED_ROOT: _pem(ca.root),
        REL_PRACTICE_ISSUED_ROOT_DER: ca.root.public_bytes(serialization.Encoding.DER),
    }


def issued(mr: MailRoot) -> PracticeIssue | None:
    """The files the practice CA issued last, or ``None`` if there are none
    (or they cannot be read)."""
    paths = [mr.file(r) for r in (REL_PRACTICE_ISSUED_SERVER, REL_PRACTICE_ISSUED_INTERMEDIATE, REL_PRACTICE_ISSUED_ROOT,
                                  REL_PRACTICE_ISSUED_ROOT_DER)]
    if not all(p.is_file() for p in paths):
        return None
    try:
        leaf = x509.load_pem_x509_certificate(mr.read(REL_PRACTICE_ISSUED_SERVER) or b"")
    except (OSError, ValueError):
        return None
    return PracticeIssue(server=paths[0], intermediate=paths[1], root=paths[2], root_der=paths[3], leaf=leaf)



# -- the practice listener -----------------------------------------------------

_LOOPBACK_NAMES = ("localhost",)
_MAX_LINE = 2048
#: A client that says nothing for this long is dropped.
IDLE_TIMEOUT = 60.0


def _check_host(host: str) -> str:
    name = host.strip().strip("[]")
    if name.lower() in _LOOPBACK_NAMES:
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(name).is_loopback:
            return name
    except ValueError:
        pass
    raise InputError.of("practice.server.host", "practice.server.host.fix", field="host", host=host)


def _check_port(name: str, port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError.of("practice.server.port", "practice.server.port.fix", field=name, name=name,
                            value=port)
    return port


class _Session:
    """One client connection: line I/O over a plain or TLS socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket = sock
        self.buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("ascii"))

    def readline(self) -> bytes | None:
        while b"\n" not in self.buffer:
            if len(self.buffer) > _MAX_LINE:
                return None
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def start_tls(self, context: ssl.SSLContext, track: Callable[[socket.socket], None]) -> None:
        # Anything the client sent after STARTTLS before the handshake is
        # dropped: answering it would let an attacker inject plaintext
        # commands into the TLS session (CVE-2011-0411 and kin).
        self.buffer = b""
        tls = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        # Tracked before the handshake, so stop() can cut a stalled one.
        track(tls)
        self.sock = tls
        tls.do_handshake()


class PracticeServer:
    """SMTP (STARTTLS) and POP3S (implicit TLS) on 127.0.0.1 for training.

    Enough protocol for a mail client's "test settings" and for
    :func:`xmailnb.checks.probe.probe`: greetings, EHLO/CAPA, STARTTLS, NOOP, RSET,
    QUIT; everything else is refused.  No mail is accepted.

    Like XMail 1.27 it reads ``server.cert`` (leaf, then chain),
    ``server.key`` and server.tab's TLS settings afresh for every
    connection: STARTTLS only while ``EnableSMTP-TLS`` is not 0, client
    certificates requested with ``SSLWantVerify=1`` and demanded with
    ``SSLWantCert=1``.  When the files are missing or broken, STARTTLS is
    still offered and the handshake then fails.

    Args:
        smtp_port, pop3s_port: ports to listen on; 0 picks a free one.
        host: a loopback address; anything else is refused.
    """

    def __init__(self, mr: MailRoot, *, smtp_port: int = 0, pop3s_port: int = 0,
                 host: str = "127.0.0.1") -> None:
        self.mailroot = mr
        self.host = _check_host(host)
        self._wanted = {"smtp": _check_port("smtp", smtp_port), "pop3s": _check_port("pop3s", pop3s_port)}
        self._listeners: dict[str, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        # Open connections by the id of their accepted socket; the value is
        # the socket in use now (the TLS one after STARTTLS).
        self._clients: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.ports: dict[str, int] = {}
        self.idle_timeout = IDLE_TIMEOUT

    @property
    def running(self) -> bool:
        return bool(self._listeners) and not self._stop.is_set()

    def __enter__(self) -> "PracticeServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _servertab(self) -> Any:
        # XMail reads server.tab again whenever it needs a value: so does
        # the practice listener, once per connection.
        try:
            return ServerTab.read(self.mailroot.server_tab)
        except OSError:
            return None

    def _flag(self, tab: Any, name: str) -> bool:
        var = variable(name)
        assert var is not None
        return var.effective(tab.get(name) if tab is not None else None) == "1"

    def tls_context(self) -> ssl.SSLContext:
        """A new server context with the MailRoot's current files and
        server.tab's verification settings (one per connection, as XMail
        builds one).

        As in XMail 1.27: ``SSLWantVerify=1`` asks clients for a certificate
        and checks one if sent; ``SSLWantCert=1`` refuses clients that send
        none (in TLS 1.3 the refusal is an alert after the handshake).
        Client certificates are checked against certs.pem
        (``SSLUseCertsFile=1``) and certs/ (``SSLUseCertsDir=1``), else
        OpenSSL's default locations.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(str(self.mailroot.server_cert), str(self.mailroot.server_key))
        except (OSError, ssl.SSLError, ValueError):
            # No certificate: the handshake fails, as on XMail without files.
            return context
        tab = self._servertab()
        want_cert = self._flag(tab, "SSLWantCert")
        if not (want_cert or self._flag(tab, "SSLWantVerify")):
            return context
        context.verify_mode = ssl.CERT_REQUIRED if want_cert else ssl.CERT_OPTIONAL
        cafile = self.mailroot.certs_pem
        capath = self.mailroot.certs_dir
        use_file = self._flag(tab, "SSLUseCertsFile") and cafile.is_file()
        use_dir = self._flag(tab, "SSLUseCertsDir") and capath.is_dir()
        try:
            if use_file or use_dir:
                context.load_verify_locations(cafile=str(cafile) if use_file else None,
                                              capath=str(capath) if use_dir else None)
            else:
                context.set_default_verify_paths()
        except (OSError, ssl.SSLError, ValueError):
            # XMail gives up on the connection when its CA files cannot be
            # loaded (ERR_SSL_VERPATHS): a context without a certificate
            # fails every handshake the same way.
            return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        return context

    def start(self) -> dict[str, int]:
        """Listen and serve in background threads; returns the bound ports.

        Raises:
            InputError: a port is in use or cannot be bound.
        """
        if self.running:
            return dict(self.ports)
        self._stop.clear()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            for name, port in self._wanted.items():
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    if os.name == "posix":
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((self.host, port))
                    sock.listen(16)
                except OSError as exc:
                    sock.close()
                    raise InputError.of("practice.server.bind", "practice.server.bind.fix", field=name,
                                        name=name, port=port, reason=exc.strerror or str(exc)) from None
                self._listeners[name] = sock
                self.ports[name] = sock.getsockname()[1]
        except BaseException:
            self._close_listeners()
            self.ports.clear()
            raise
        handlers: dict[str, Callable[[socket.socket], None]] = {"smtp": self._smtp, "pop3s": self._pop3s}
        for name, sock in self._listeners.items():
            t = threading.Thread(target=self._accept_loop, args=(sock, handlers[name]),
                                 name=f"xmailnb-practice-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        _RUNNING.add(self)
        return dict(self.ports)

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        _RUNNING.discard(self)
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        self._close_listeners()
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _close_listeners(self) -> None:
        for sock in self._listeners.values():
            sock.close()
        self._listeners.clear()

    def _accept_loop(self, sock: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        # A short select timeout instead of a blocking accept(): closing a
        # socket does not wake accept() on every platform.
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(timeout=0.1):
                    continue
                try:
                    conn, _addr = sock.accept()
                except OSError:
                    continue
                conn.settimeout(self.idle_timeout)
                with self._lock:
                    self._clients[id(conn)] = conn
                threading.Thread(target=self._serve, args=(conn, handler), daemon=True,
                                 name="xmailnb-practice-client").start()

    def _serve(self, conn: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        try:
            handler(conn)
        except (OSError, ssl.SSLError, UnicodeError):
            pass  # a client that went away or failed the handshake
        finally:
            with self._lock:
                current = self._clients.pop(id(conn), conn)
            for sock in {id(current): current, id(conn): conn}.values():
                try:
                    sock.close()
                except OSError:
                    pass

    def _track(self, old: socket.socket, new: socket.socket) -> None:
        with self._lock:
            if id(old) in self._clients:
                self._clients[id(old)] = new

    # Protocol lines are protocol, not user-facing text: they stay in English
    # like every mail server's.
    def _smtp(self, conn: socket.socket) -> None:
        s = _Session(conn)
        s.send("220 localhost ESMTP xmailnb practice listener (training only)\r\n")
        tls = False
        while True:
            line = s.readline()
            if line is None:
                return
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"EHLO":
                # STARTTLS is offered only while EnableSMTP-TLS is not 0.
                offer = not tls and self._flag(self._servertab(), "EnableSMTP-TLS")
                extra = "250-STARTTLS\r\n" if offer else ""
                s.send(f"250-localhost\r\n{extra}250-8BITMIME\r\n250 SIZE 10485760\r\n")
            elif verb == b"HELO":
                s.send("250 localhost\r\n")
            elif verb == b"STARTTLS" and not tls and not self._flag(self._servertab(), "EnableSMTP-TLS"):
                s.send("454 4.7.0 TLS not available\r\n")
            elif verb == b"STARTTLS" and not tls:
                context = self.tls_context()
                s.send("220 2.0.0 Ready to start TLS\r\n")
                s.start_tls(context, lambda tls: self._track(conn, tls))
                tls = True
            elif verb in (b"NOOP", b"RSET"):
                s.send("250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                s.send("221 2.0.0 Bye\r\n")
                return
            elif verb == b"STARTTLS":
                s.send("503 5.5.1 TLS already active\r\n")
            else:
                s.send("502 5.5.1 Not available on the practice listener\r\n")

    def _pop3s(self, conn: socket.socket) -> None:
        s = _Session(conn)
        s.start_tls(self.tls_context(), lambda tls: self._track(conn, tls))
        s.send("+OK xmailnb practice POP3 listener (training only)\r\n")
        while True:
            line = s.readline()
            if line is None:
                return
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"CAPA":
                s.send("+OK Capability list follows\r\nUIDL\r\nIMPLEMENTATION xmailnb-practice\r\n.\r\n")
            elif verb == b"NOOP":
                s.send("+OK\r\n")
            elif verb == b"QUIT":
                s.send("+OK Bye\r\n")
                return
            else:
                s.send("-ERR Not available on the practice listener\r\n")


# The practice servers started in this process (a notebook's form starts one;
# the notebook's hand checks then connect to its ports).
_RUNNING: "weakref.WeakSet[PracticeServer]" = weakref.WeakSet()


def running_ports(mr: MailRoot) -> dict[str, int]:
    """The ports of the practice server running in this process for *mr*
    (endpoint -> port), or an empty dict when none runs."""
    try:
        wanted = mr.path.resolve()
    except OSError:
        return {}
    for server in list(_RUNNING):
        try:
            same = server.mailroot.path.resolve() == wanted
        except OSError:
            continue
        if same and server.running:
            return dict(server.ports)
    return {}
