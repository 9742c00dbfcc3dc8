"""Live checks: what a running server really sends, and whether clients accept it.

For each endpoint (SMTP and submission with STARTTLS, POP3 with STLS, SMTPS,
POP3S and CTRLS with implicit TLS) :func:`probe` connects, negotiates TLS
without verifying, records the protocol, the cipher and the *whole*
certificate chain the server sent, and then verifies that chain for the mail
host name as a mail client would: against the public roots, a ``cafile``, or
with a MailRoot its practice root and certs.pem.  With a MailRoot it also
says whether the served chain is exactly the installed ``server.cert``.

Python 3.11's :mod:`ssl` cannot hand out the peer's chain, so the handshake
is done with pyOpenSSL over memory BIOs: that also lets the probe see the
raw bytes a server answers with (to tell "not TLS at all" from a failed
handshake) and bound every step by one deadline.

Endpoints are probed concurrently; each costs at most ``timeout`` seconds of
network time, so a whole probe takes about ``timeout``, not the sum.

>>> results = probe("127.0.0.1", ports={"smtp": 25, "pop3s": 995})  # doctest: +SKIP
>>> [(r.name, r.status) for r in results]                           # doctest: +SKIP
[('smtp', 'ok'), ('pop3s', 'ok')]
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from cryptography import x509

from . import clock
from .errors import InputError
from .i18n import Msg
from .mailroot import MailRoot

if TYPE_CHECKING:  # pragma: no cover
    from .diagnose import Finding

__all__ = [
    "ENDPOINTS",
    "STARTTLS_ENDPOINTS",
    "EndpointResult",
    "probe",
    "parse_ports",
    "probe_findings",
    "DEFAULT_TIMEOUT",
]

#: Default ports of the endpoints XMail (and mail clients) use.
ENDPOINTS: dict[str, int] = {"smtp": 25, "submission": 587, "smtps": 465, "pop3": 110, "pop3s": 995,
                             "ctrls": 6018}
#: How TLS starts on each endpoint: ``smtp`` (STARTTLS), ``pop3`` (STLS) or
#: ``tls`` (implicit: the handshake comes first).
STARTTLS_ENDPOINTS: dict[str, str] = {"smtp": "smtp", "submission": "smtp", "pop3": "pop3"}
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 300.0
EXPIRY_WARN_DAYS = 30
_MAX_REPLY = 8192
_EHLO_NAME = "xmailnb-probe.invalid"


def _mode(name: str) -> str:
    return STARTTLS_ENDPOINTS.get(name, "tls")


@dataclass
class EndpointResult:
    """What one endpoint served and what a client would make of it.

    Attributes:
        name, host, port: the endpoint probed.
        reachable: a TCP connection was established.
        tls_version, cipher: as negotiated (``None`` without a handshake).
        chain: the certificates the server sent, in its order, each as
            ``{"subject", "issuer", "sha256"}``.
        verified: the chain verifies for the host name against a trusted root.
        matches_installed: the served chain is exactly the installed
            server.cert (``None`` without a MailRoot to compare with).
        status: ``ok``, ``info``, ``warn`` or ``error``.
        message, fix: what was found and what to do.
        days_left: days until the soonest expiry in the served chain.
        anchor: which trust anchors verified it (``public``, ``cafile``,
            ``practice``, ``certs.pem``).
        certificates: the served certificates themselves.
    """

    name: str
    host: str
    port: int
    reachable: bool = False
    tls_version: str | None = None
    cipher: str | None = None
    chain: list[dict[str, str]] = field(default_factory=list)
    verified: bool = False
    matches_installed: bool | None = None
    status: str = "error"
    message: Msg = field(default_factory=lambda: Msg.of("probe.not_run"))
    fix: Msg | None = None
    days_left: int | None = None
    anchor: str | None = None
    certificates: list[x509.Certificate] = field(default_factory=list, repr=False)

    def to_json(self, lang: str) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "port": self.port, "reachable": self.reachable,
                "tls_version": self.tls_version, "cipher": self.cipher, "chain": [dict(c) for c in self.chain],
                "verified": self.verified, "matches_installed": self.matches_installed, "status": self.status,
                "message": self.message.render(lang), "fix": self.fix.render(lang) if self.fix else "",
                "days_left": self.days_left, "anchor": self.anchor}


# -- input ---------------------------------------------------------------------

def parse_ports(text: str) -> dict[str, int]:
    """Parse ``"smtp=2525,pop3s=1995"`` (a bare ``smtp`` means its default port).

    Raises:
        InputError: empty list, unknown endpoint name, repeated name or a port
            that is not 1-65535 (``field="ports"``).
    """
    out: dict[str, int] = {}
    items = [i.strip() for i in re.split(r"[,\s]+", text or "") if i.strip()]
    if not items:
        raise InputError.of("probe.ports.empty", "probe.ports.fix", field="ports", names=", ".join(ENDPOINTS))
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if name not in ENDPOINTS:
            raise InputError.of("probe.ports.unknown", "probe.ports.fix", field="ports", item=item,
                                names=", ".join(ENDPOINTS))
        if name in out:
            raise InputError.of("probe.ports.repeated", "probe.ports.fix", field="ports", item=name,
                                names=", ".join(ENDPOINTS))
        if not sep:
            out[name] = ENDPOINTS[name]
            continue
        value = value.strip()
        port = int(value) if value.isdigit() and len(value) <= 5 else 0
        if not 1 <= port <= 65535:
            raise InputError.of("probe.ports.bad_port", "probe.ports.fix", field="ports", item=item,
                                names=", ".join(ENDPOINTS))
        out[name] = port
    return out


def _check_timeout(timeout: Any) -> float:
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT or value != value:
        raise InputError.of("probe.timeout.invalid", "probe.timeout.invalid.fix", field="timeout",
                            value=timeout, max=int(MAX_TIMEOUT))
    return value


def _load_cafile(cafile: str) -> list[x509.Certificate]:
    from . import certfiles

    certs = certfiles.load_file(cafile, field="cafile").certificates
    if not certs:
        raise InputError.of("probe.cafile.empty", "probe.cafile.empty.fix", field="cafile", name=cafile)
    return certs


def _ascii_name(name: str) -> str:
    import idna

    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


# -- the network part ------------------------------------------------------------

class _Fail(Exception):
    """The endpoint could not be probed; ``kind`` is the short reason."""

    def __init__(self, kind: str, msg: Msg, fix: Msg | None, *, reachable: bool) -> None:
        super().__init__(kind)
        self.kind, self.msg, self.fix, self.reachable = kind, msg, fix, reachable


def _preview(data: bytes) -> str:
    # What the server said, shown safely: printable ASCII, the rest escaped.
    shown = data[:60]
    text = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in shown.rstrip(b"\r\n"))
    return text + ("..." if len(data) > 60 else "")


class _Wire:
    """A TCP connection whose every read honours one overall deadline."""

    def __init__(self, name: str, host: str, port: int, deadline: float, timeout: float) -> None:
        self.name, self.host, self.port = name, host, port
        self.deadline, self.timeout = deadline, timeout
        self.buffer = b""
        self.received = b""
        try:
            self.sock = socket.create_connection((host.strip("[]"), port), timeout=self._left())
        except socket.gaierror as exc:
            raise _Fail("unresolved", Msg.of("probe.unresolved", host=host, reason=exc.strerror or str(exc)),
                        Msg.of("probe.unresolved.fix"), reachable=False) from None
        except ConnectionRefusedError:
            raise _Fail("refused", Msg.of("probe.refused", port=port, name=name),
                        Msg.of("probe.refused.fix", name=name, port=port), reachable=False) from None
        except (TimeoutError, socket.timeout):
            raise _Fail("no_answer", Msg.of("probe.connect_timeout", port=port, timeout=_secs(timeout)),
                        Msg.of("probe.connect_timeout.fix", port=port), reachable=False) from None
        except OSError as exc:
            raise _Fail("unreachable", Msg.of("probe.unreachable", port=port,
                                              reason=exc.strerror or type(exc).__name__),
                        Msg.of("probe.connect_timeout.fix", port=port), reachable=False) from None

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def recv(self, *, waiting_for: str) -> bytes:
        try:
            self.sock.settimeout(self._left())
            data = self.sock.recv(16384)
        except (TimeoutError, socket.timeout):
            key = "probe.silent" if not self.received else "probe.stalled"
            raise _Fail("silent", Msg.of(key, port=self.port, timeout=_secs(self.timeout), waiting=waiting_for),
                        Msg.of(f"probe.silent.fix.{_mode(self.name)}", name=self.name), reachable=True) from None
        except OSError as exc:
            raise _Fail("closed", Msg.of("probe.reset", port=self.port, waiting=waiting_for,
                                         reason=exc.strerror or type(exc).__name__),
                        Msg.of("probe.closed.fix"), reachable=True) from None
        self.received += data
        return data

    def sendall(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self._left())
            self.sock.sendall(data)
        except (TimeoutError, socket.timeout):
            raise _Fail("silent", Msg.of("probe.stalled", port=self.port, timeout=_secs(self.timeout),
                                         waiting="TLS"),
                        Msg.of("probe.closed.fix"), reachable=True) from None
        except OSError as exc:
            raise _Fail("closed", Msg.of("probe.reset", port=self.port, waiting="TLS",
                                         reason=exc.strerror or type(exc).__name__),
                        Msg.of("probe.closed.fix"), reachable=True) from None

    def line(self, waiting_for: str) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > _MAX_REPLY:
                raise self.garbage()
            data = self.recv(waiting_for=waiting_for)
            if not data:
                raise _Fail("closed", Msg.of("probe.closed", port=self.port, waiting=waiting_for),
                            Msg.of("probe.closed.fix"), reachable=True)
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def garbage(self) -> _Fail:
        data = self.received
        if data[:1] in (b"\x15", b"\x16"):
            # A TLS record where a greeting was expected: implicit TLS port.
            return _Fail("garbage", Msg.of("probe.garbage.tls_record", port=self.port, name=self.name),
                         Msg.of("probe.garbage.tls_record.fix", name=self.name), reachable=True)
        return _Fail("garbage", Msg.of(f"probe.garbage.{_mode(self.name)}", port=self.port,
                                       text=_preview(data)),
                     Msg.of("probe.garbage.fix", port=self.port, name=self.name), reachable=True)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _secs(value: float) -> str:
    return f"{value:g}"


_SMTP_REPLY = re.compile(rb"^(\d{3})([ -])")


def _smtp_reply(w: _Wire, waiting: str) -> tuple[int, list[bytes]]:
    lines = []
    while True:
        line = w.line(waiting)
        m = _SMTP_REPLY.match(line)
        if m is None:
            raise w.garbage()
        lines.append(line)
        if m.group(2) == b" ":
            return int(m.group(1)), lines
        if len(lines) > 100:
            raise w.garbage()


def _starttls_smtp(w: _Wire) -> None:
    code, lines = _smtp_reply(w, "220")
    if code != 220:
        raise _Fail("refused_session", Msg.of("probe.smtp.greeting", port=w.port, text=_preview(lines[0])),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)
    w.sendall(f"EHLO {_EHLO_NAME}\r\n".encode("ascii"))
    code, lines = _smtp_reply(w, "EHLO")
    if code != 250:
        raise _Fail("refused_session", Msg.of("probe.smtp.ehlo", port=w.port, text=_preview(lines[0])),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)
    if not any(line[4:].strip().upper().split(b" ")[0] == b"STARTTLS" for line in lines[1:]):
        raise _Fail("no_starttls", Msg.of("probe.smtp.no_starttls", port=w.port),
                    Msg.of("probe.smtp.no_starttls.fix"), reachable=True)
    w.sendall(b"STARTTLS\r\n")
    code, lines = _smtp_reply(w, "STARTTLS")
    if code != 220:
        raise _Fail("no_starttls", Msg.of("probe.smtp.starttls_refused", port=w.port, text=_preview(lines[0])),
                    Msg.of("probe.smtp.no_starttls.fix"), reachable=True)


def _starttls_pop3(w: _Wire) -> None:
    line = w.line("+OK")
    if line.startswith(b"-ERR"):
        raise _Fail("refused_session", Msg.of("probe.pop3.greeting", port=w.port, text=_preview(line)),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)
    if not line.startswith(b"+OK"):
        raise w.garbage()
    w.sendall(b"STLS\r\n")
    line = w.line("STLS")
    if line.startswith(b"-ERR"):
        raise _Fail("no_starttls", Msg.of("probe.pop3.stls_refused", port=w.port, text=_preview(line)),
                    Msg.of("probe.pop3.stls_refused.fix"), reachable=True)
    if not line.startswith(b"+OK"):
        raise w.garbage()


def _ssl_reason(exc: Exception) -> str:
    parts = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            parts.append(str(item[-1]))
    return "; ".join(p for p in parts if p) or type(exc).__name__


@dataclass
class _Served:
    version: str
    cipher: str
    certs: list[x509.Certificate]


def _handshake(w: _Wire, sni: str | None) -> _Served:
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    # See what old servers offer (TLS 1.0, weak ciphers) instead of failing
    # on them: the result says they are outdated.
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    if sni:
        conn.set_tlsext_host_name(sni.encode("ascii"))
    if w.buffer:
        # Bytes after the "go ahead" and before our ClientHello: no TLS
        # server sends those.
        raise _garbage_tls(w, w.buffer)

    def flush() -> None:
        while True:
            try:
                out = conn.bio_read(65536)
            except SSL.WantReadError:
                return
            if not out:
                return
            w.sendall(out)

    first = True
    while True:
        try:
            conn.do_handshake()
            break
        except SSL.WantReadError:
            pass
        except SSL.Error as exc:
            try:
                flush()  # our alert, so the server logs why
            except _Fail:
                pass
            raise _Fail("handshake", Msg.of("probe.handshake", port=w.port, reason=_ssl_reason(exc)),
                        Msg.of("probe.handshake.fix"), reachable=True) from None
        flush()
        data = w.recv(waiting_for="TLS")
        if not data:
            raise _Fail("handshake", Msg.of("probe.handshake.closed", port=w.port),
                        Msg.of("probe.handshake.fix"), reachable=True)
        if first and data[:1] not in (b"\x15", b"\x16"):
            # Not a TLS record (handshake or alert) at all.
            raise _garbage_tls(w, data)
        first = False
        conn.bio_write(data)
    try:
        flush()
    except _Fail:
        pass
    certs = conn.get_peer_cert_chain(as_cryptography=True) or []
    served = _Served(version=conn.get_protocol_version_name(), cipher=conn.get_cipher_name() or "", certs=certs)
    try:
        conn.shutdown()
        flush()
    except (SSL.Error, _Fail):
        pass
    return served


def _garbage_tls(w: _Wire, data: bytes) -> _Fail:
    return _Fail("garbage", Msg.of("probe.garbage.tls_expected", port=w.port, text=_preview(data)),
                 Msg.of("probe.garbage.tls_expected.fix", name=w.name), reachable=True)


def _fetch(name: str, host: str, port: int, sni: str | None, timeout: float) -> _Served:
    deadline = time.monotonic() + timeout
    w = _Wire(name, host, port, deadline, timeout)
    try:
        mode = _mode(name)
        if mode == "smtp":
            _starttls_smtp(w)
        elif mode == "pop3":
            _starttls_pop3(w)
        return _handshake(w, sni)
    finally:
        w.close()


# -- judging what was served -------------------------------------------------------

def _installed(mr: MailRoot) -> list[x509.Certificate] | None:
    from . import certfiles
    from .errors import XmailnbError

    try:
        data = mr.read(mr.rel_server_cert, certfiles.MAX_INPUT_BYTES)
        return certfiles.certificates_from(data, name=mr.rel_server_cert) if data is not None else None
    except (OSError, XmailnbError):
        return None


def _anchors(mr: MailRoot | None, cafile_certs: Sequence[x509.Certificate]) -> dict[str, Sequence[x509.Certificate]]:
    from . import chain

    anchors: dict[str, Sequence[x509.Certificate]] = {"public": chain.public_roots(), "cafile": list(cafile_certs)}
    if mr is not None:
        from . import certfiles
        from .errors import XmailnbError
        from .practice import practice_root

        root = practice_root(mr)
        anchors["practice"] = [root] if root is not None else []
        try:
            anchors["certs.pem"] = certfiles.load_file(mr.certs_pem).certificates
        except XmailnbError:
            anchors["certs.pem"] = []
    return anchors


def _fp(cert: x509.Certificate) -> str:
    from .certfiles import cert_fingerprint

    return cert_fingerprint(cert)


def _trust_fix(reason: Msg | None, mismatch: bool) -> Msg:
    key = reason.key if reason is not None else ""
    if key == "chain.trust.hostname":
        return Msg.of("probe.fix.hostname")
    if key in ("chain.trust.expired", "chain.trust.not_yet_valid"):
        return Msg.of("probe.fix.expired")
    if key in ("chain.trust.unknown_issuer", "chain.trust.untrusted_root", "chain.trust.self_signed"):
        return Msg.of("probe.fix.untrusted")
    if mismatch:
        return Msg.of("probe.fix.mismatch")
    return Msg.of("probe.fix.diagnose")


def _with(first: Msg, second: Msg | None) -> Msg:
    return first if second is None else Msg.of("probe.with", first=first, second=second)


def _judge(r: EndpointResult, served: _Served, verify_name: str, anchors: Mapping[str, Sequence[x509.Certificate]],
           installed: list[x509.Certificate] | None, have_mailroot: bool, at: dt.datetime) -> None:
    from . import chain as chainmod

    certs = served.certs
    r.tls_version, r.cipher, r.certificates = served.version, served.cipher, certs
    r.chain = [{"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string(), "sha256": _fp(c)}
               for c in certs]
    if not certs:
        r.status, r.message, r.fix = "error", Msg.of("probe.no_cert", port=r.port), Msg.of("probe.handshake.fix")
        return
    r.days_left = min((c.not_valid_after_utc - at).days for c in certs)
    mismatch_msg: Msg | None = None
    if have_mailroot:
        served_fps = [_fp(c) for c in certs]
        if installed is None:
            r.matches_installed = False
            mismatch_msg = Msg.of("probe.mismatch.none")
        else:
            installed_fps = [_fp(c) for c in installed]
            r.matches_installed = served_fps == installed_fps
            if not r.matches_installed:
                if served_fps[0] == installed_fps[0] and len(served_fps) < len(installed_fps):
                    # XMail before 1.27 loads server.cert with
                    # SSL_CTX_use_certificate_file: the leaf only.
                    mismatch_msg = Msg.of("probe.mismatch.leaf_only", served=len(served_fps),
                                          installed=len(installed_fps))
                elif served_fps[0] == installed_fps[0]:
                    mismatch_msg = Msg.of("probe.mismatch.chain")
                else:
                    mismatch_msg = Msg.of("probe.mismatch.other", subject=certs[0].subject.rfc4514_string())

    trust = chainmod.verify_trust(certs[0], certs[1:], anchors=anchors, hostname=verify_name, at=at)
    r.verified, r.anchor = trust.trusted, trust.anchor
    tls = Msg.of("probe.tls", version=served.version, cipher=served.cipher)
    if not trust.trusted:
        reason = trust.reason or Msg.of("probe.not_verified.unknown")
        r.status = "error"
        r.message = _with(Msg.of("probe.not_verified", tls=tls, hostname=verify_name, reason=reason),
                          mismatch_msg)
        r.fix = _trust_fix(trust.reason, mismatch_msg is not None)
        if mismatch_msg is not None and mismatch_msg.key == "probe.mismatch.leaf_only":
            r.fix = Msg.of("probe.fix.leaf_only")
        return
    verified = Msg.of("probe.verified", tls=tls, count=len(certs), hostname=verify_name,
                      anchor=Msg.of(f"probe.anchor.{r.anchor}"), days=r.days_left)
    issues = chainmod.check_order(certs)
    old_tls = served.version in ("TLSv1", "TLSv1.1", "SSLv3")
    if mismatch_msg is not None:
        r.status, r.message = "warn", _with(verified, mismatch_msg)
        r.fix = Msg.of("probe.fix.leaf_only") if mismatch_msg.key == "probe.mismatch.leaf_only" \
            else Msg.of("probe.fix.mismatch")
    elif issues:
        # Say it in served terms: check_order's messages speak of server.cert.
        key = "probe.duplicate" if all(i.code == "duplicate" for i in issues) else "probe.order"
        r.status, r.message = "warn", _with(verified, Msg.of(key))
        r.fix = Msg.of("probe.fix.order")
    elif old_tls:
        r.status = "warn"
        r.message = _with(verified, Msg.of("probe.old_tls", version=served.version))
        r.fix = Msg.of("probe.fix.old_tls")
    elif r.days_left < EXPIRY_WARN_DAYS:
        r.status = "warn"
        r.message = _with(verified, Msg.of("probe.expiring", days=r.days_left))
        r.fix = Msg.of("probe.fix.expired")
    elif r.anchor in ("practice", "certs.pem"):
        r.status, r.fix = "info", Msg.of(f"probe.fix.anchor.{r.anchor}")
        r.message = _with(verified, Msg.of("probe.same") if r.matches_installed else None)
    else:
        r.status, r.fix = "ok", None
        r.message = _with(verified, Msg.of("probe.same") if r.matches_installed else None)


def _probe_one(name: str, host: str, port: int, sni: str | None, timeout: float) -> EndpointResult | _Served:
    r = EndpointResult(name=name, host=host, port=port)
    try:
        served = _fetch(name, host, port, sni, timeout)
    except _Fail as fail:
        r.reachable, r.status, r.message, r.fix = fail.reachable, "error", fail.msg, fail.fix
        return r
    except Exception as exc:  # never a traceback for what a server sends
        r.reachable, r.status = True, "error"
        r.message = Msg.of("probe.unexpected", port=port, reason=f"{type(exc).__name__}: {exc}")
        r.fix = Msg.of("probe.closed.fix")
        return r
    return served


def probe(
    host: str = "127.0.0.1",
    *,
    ports: Mapping[str, int] | None = None,
    servername: str | None = None,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    mailroot: MailRoot | None = None,
) -> list[EndpointResult]:
    """Probe the endpoints of a running server; one result per endpoint.

    Args:
        host: where the server runs (name or address).
        ports: endpoint name -> port (names from :data:`ENDPOINTS`); default
            all of them on their standard ports.
        servername: the host name clients use, sent as SNI and verified;
            default the MailRoot's mail host name (server.tab), else *host*.
        cafile: extra trusted CA certificates (PEM, DER, PKCS#7).
        timeout: network time allowed per endpoint, in seconds; endpoints
            run concurrently, so this bounds the whole probe too.
        mailroot: compare with its installed server.cert and trust its
            practice root and certs.pem.

    Raises:
        InputError: bad endpoint names or ports, bad timeout, unreadable
            cafile.
    """
    timeout = _check_timeout(timeout)
    host = (host or "").strip()
    if not host:
        raise InputError.of("probe.host.empty", "probe.host.empty.fix", field="host")
    wanted = dict(ENDPOINTS if ports is None else ports)
    for name, port in wanted.items():
        if name not in ENDPOINTS or isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError.of("probe.ports.bad_port", "probe.ports.fix", field="ports", item=f"{name}={port}",
                                names=", ".join(ENDPOINTS))
    cafile_certs = _load_cafile(cafile) if cafile else []
    verify_name = (servername or "").strip().rstrip(".").lower() or None
    if verify_name is not None and not _is_ip(verify_name):
        from .actions import normalize_hostname_option

        try:
            verify_name = normalize_hostname_option(verify_name)
        except InputError as exc:
            exc.field = "servername"
            raise
    if verify_name is None and mailroot is not None:
        from .servertab import ServerTab, mail_hostname

        try:
            verify_name = mail_hostname(ServerTab.read(mailroot.server_tab))
        except OSError:
            verify_name = None
    verify_name = verify_name or host.strip("[]")
    sni = None if _is_ip(verify_name) else _ascii_name(verify_name)

    with ThreadPoolExecutor(max_workers=max(1, len(wanted)), thread_name_prefix="xmailnb-probe") as pool:
        futures = {name: pool.submit(_probe_one, name, host, port, sni, timeout) for name, port in wanted.items()}
        outcomes = {name: f.result() for name, f in futures.items()}

    anchors = _anchors(mailroot, cafile_certs)
    installed = _installed(mailroot) if mailroot is not None else None
    at = clock.now()
    results = []
    for name, outcome in outcomes.items():
        if isinstance(outcome, EndpointResult):
            results.append(outcome)
            continue
        r = EndpointResult(name=name, host=host, port=wanted[name], reachable=True)
        try:
            _judge(r, outcome, verify_name, anchors, installed, mailroot is not None, at)
        except Exception as exc:  # a certificate too odd to judge still gets a clear line
            r.status = "error"
            r.message = Msg.of("probe.unexpected", port=r.port, reason=f"{type(exc).__name__}: {exc}")
            r.fix = Msg.of("probe.fix.diagnose")
        results.append(r)
    return results


def probe_findings(results: Sequence[EndpointResult]) -> list["Finding"]:
    """The results as diagnosis findings with check ids ``probe.<name>``."""
    from .diagnose import Finding

    findings = []
    for r in results:
        details = {"host": r.host, "port": r.port, "reachable": r.reachable, "tls_version": r.tls_version,
                   "cipher": r.cipher, "chain": [dict(c) for c in r.chain], "verified": r.verified,
                   "matches_installed": r.matches_installed, "days_left": r.days_left, "anchor": r.anchor}
        findings.append(Finding(f"probe.{r.name}", r.status, r.message, r.fix, details))
    return findings
