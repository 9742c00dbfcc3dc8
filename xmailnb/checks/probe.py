"""Live checks: what a running server really sends, and whether clients accept it.

For each endpoint (SMTP with STARTTLS, SMTPS, POP3 with STLS, POP3S, CTRLS,
and on request submission and CTRL) :func:`probe` connects, negotiates TLS
without verifying, records the protocol, the cipher and the *whole*
certificate chain the server sent, and then speaks one protocol round over
TLS as a mail client would (EHLO again, CAPA, the CTRL greeting) before
judging: a server can complete the handshake and still refuse every client,
e.g. XMail with ``SSLWantCert=1``, whose refusal arrives as an alert *after*
a TLS 1.3 handshake.  The served chain is then verified for the mail host
name as a mail client would: against the public roots, a ``cafile``, or
with a MailRoot its practice root and certs.pem.  With a MailRoot it also
says whether the served chain is exactly the installed ``server.cert``.

By default the stock XMail listeners are probed (SMTP 25, SMTPS 465, POP3
110, POP3S 995, CTRLS 6018), or the listeners the administrator named for
the MailRoot (:mod:`xmailnb.mailroot.workbook`); STARTTLS endpoints are left out
when server.tab turns STARTTLS off for them.

Python 3.11's :mod:`ssl` cannot hand out the peer's chain, so the TLS
client is pyOpenSSL over memory BIOs: that also lets the probe see the raw
bytes a server answers with (to tell "not TLS at all" from a failed
handshake), see whether the server asked for a client certificate, and
bound every step by one deadline.

Endpoints are probed concurrently; each costs at most ``timeout`` seconds of
network time, so a whole probe takes about ``timeout``, not the sum.

>>> results = probe("127.0.0.1", ports={"smtp": 25, "pop3s": 995})  # doctest: +SKIP
>>> [(r.name, r.status) for r in results]                           # doctest: +SKIP
[('smtp', 'ok'), ('pop3s', 'ok')]
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import logging
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import idna
from cryptography import x509
from OpenSSL import SSL

from . import progress
from .. import clock
from ..errors import InputError, XmailnbError
from ..i18n import Msg
from ..logs import log_unexpected
from ..mailroot.endpoints import (
    DEFAULT_ENDPOINTS,
    ENDPOINTS,
    PROTOCOLS,
    STARTTLS_ENDPOINTS,
    STARTTLS_FLAGS,
)
from ..mailroot.layout import MailRoot
from ..mailroot.servertab import ServerTab, mail_hostname, variable
from ..mailroot.workbook import probe_settings
from ..pki import certfiles
from ..pki import chain as chainmod
from ..pki.csr import normalize_hostname_option
from ..status import Status
from .display import with_display_forms
from .findings import Finding
from .installed import anchor_sets, installed_chain

__all__ = [
    "Problem",
    "Mismatch",
    "EndpointResult",
    "ServedCert",
    "probe",
    "parse_ports",
    "format_ports",
    "check_host",
    "default_ports",
    "passed",
    "probe_findings",
    "reached_server",
    "record",
    "worst_status",
    "DEFAULT_TIMEOUT",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 300.0
EXPIRY_WARN_DAYS = 30
_MAX_REPLY = 8192
_MAX_HOST = 253
_EHLO_NAME = "xmailnb-probe.invalid"


class Problem(enum.StrEnum):
    """Why an endpoint could not be judged, or what was wrong with it."""

    UNRESOLVED = "unresolved"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"
    SILENT = "silent"
    CLOSED = "closed"
    GARBAGE = "garbage"
    REFUSED_SESSION = "refused_session"
    NO_STARTTLS = "no_starttls"
    HANDSHAKE = "handshake"
    #: The server demands a client certificate (``SSLWantCert``).
    CLIENT_CERT = "client_cert"
    #: The TLS session broke after the handshake for another reason.
    TLS_SESSION = "tls_session"
    NO_CERT = "no_cert"
    NOT_VERIFIED = "not_verified"
    #: Not probed: server.tab turns STARTTLS off for this endpoint.
    STARTTLS_OFF = "starttls_off"
    #: The certificates sent would take more signature checks to sort out
    #: than the budget allows (:data:`xmailnb.pki.chain.SIGNATURE_BUDGET`).
    TOO_COSTLY = "too_costly"
    UNEXPECTED = "unexpected"


class Mismatch(enum.Enum):
    """How the served chain differs from the installed server.cert."""

    NOTHING_INSTALLED = "none"
    #: The leaf alone although server.cert holds intermediates: XMail
    #: before 1.27 loaded server.cert with SSL_CTX_use_certificate_file.
    LEAF_ONLY = "leaf_only"
    OTHER_CHAIN = "chain"
    OTHER_CERTIFICATE = "other"


def _mode(name: str) -> str:
    return STARTTLS_ENDPOINTS.get(name, "tls")


@dataclass(frozen=True)
class ServedCert:
    """One certificate a server sent, as the check reports it."""

    subject: str
    issuer: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "issuer": self.issuer, "sha256": self.sha256}


@dataclass
class EndpointResult:
    """What one endpoint served and what a client would make of it.

    Attributes:
        name, host, port: the endpoint probed.
        reachable: a TCP connection was established.
        tls_version, cipher: as negotiated (``None`` without a handshake).
        chain: the certificates the server sent, in its order
            (:class:`ServedCert`).
        verified: the chain verifies for the host name against a trusted root.
        matches_installed: the served chain is exactly the installed
            server.cert (``None`` without a MailRoot to compare with).
        status: ``ok``, ``info``, ``warn`` or ``error``.
        problem: what went wrong (``None`` when nothing did).
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
    chain: list[ServedCert] = field(default_factory=list)
    verified: bool = False
    matches_installed: bool | None = None
    status: Status = Status.ERROR
    problem: Problem | None = None
    message: Msg = field(default_factory=lambda: Msg.of("probe.not_run"))
    fix: Msg | None = None
    days_left: int | None = None
    anchor: str | None = None
    certificates: list[x509.Certificate] = field(default_factory=list, repr=False)

    @property
    def checked(self) -> bool:
        """The endpoint was probed (not left out because STARTTLS is off there)."""
        return self.problem is not Problem.STARTTLS_OFF

    def to_json(self, lang: str) -> dict[str, Any]:
        """The result as JSON data.  ``chain`` keeps each certificate's
        subject and issuer as the certificate says (control characters
        included: JSON is data); ``subject_display`` and ``issuer_display``
        beside them are the same with every control or invisible character
        escaped, safe to print in a terminal."""
        return {"name": self.name, "host": self.host, "port": self.port, "reachable": self.reachable,
                "tls_version": self.tls_version, "cipher": self.cipher,
                "chain": [with_display_forms(c.to_json()) for c in self.chain],
                "verified": self.verified, "matches_installed": self.matches_installed, "status": self.status,
                "problem": str(self.problem) if self.problem is not None else None,
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
        typed = _shown(item)
        if name not in ENDPOINTS:
            raise InputError.of("probe.ports.unknown", "probe.ports.fix", field="ports", item=typed,
                                names=", ".join(ENDPOINTS))
        if name in out:
            raise InputError.of("probe.ports.repeated", "probe.ports.fix", field="ports", item=name,
                                names=", ".join(ENDPOINTS))
        if not sep:
            out[name] = ENDPOINTS[name]
            continue
        value = value.strip()
        port = int(value) if value.isascii() and value.isdigit() and len(value) <= 5 else 0
        if not 1 <= port <= 65535:
            raise InputError.of("probe.ports.bad_port", "probe.ports.fix", field="ports", item=typed,
                                names=", ".join(ENDPOINTS))
        out[name] = port
    return out


def format_ports(ports: Mapping[str, int]) -> str:
    """The inverse of :func:`parse_ports`: ``"smtp=25,pop3s=995"``."""
    return ",".join(f"{name}={port}" for name, port in ports.items())


def _shown(value: str, limit: int = 80) -> str:
    # What the user typed, safe to print: control characters escaped, long
    # values cut (a 300-character host name helps no one in a message).
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_host(host: str) -> str:
    """The host to connect to: an IP address (IPv6 with or without brackets)
    or a host name (internationalised names become A-labels).

    Raises:
        InputError: empty, too long, or not a host name or address
            (``field="host"``).
    """
    value = (host or "").strip() if isinstance(host, str) else ""
    if not value:
        raise InputError.of("probe.host.empty", "probe.host.empty.fix", field="host")
    if value.startswith("[") and value.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(value[1:-1]))
        except ValueError:
            raise InputError.of("probe.host.invalid", "probe.host.invalid.fix", field="host",
                                host=_shown(value)) from None
    if _is_ip(value):
        return value
    name = value[:-1] if value.endswith(".") else value
    if len(name) > _MAX_HOST:
        raise InputError.of("probe.host.too_long", "probe.host.invalid.fix", field="host", host=_shown(value),
                            length=len(name), max=_MAX_HOST)
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii") if not name.isascii() else name.lower()
        # Also checks the labels: letters, digits and hyphens, 1-63 each.
        idna.encode(ascii_name, uts46=False)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InputError.of("probe.host.invalid", "probe.host.invalid.fix", field="host",
                            host=_shown(value)) from None
    if len(ascii_name) > _MAX_HOST:
        raise InputError.of("probe.host.too_long", "probe.host.invalid.fix", field="host", host=_shown(value),
                            length=len(ascii_name), max=_MAX_HOST)
    return ascii_name


def _check_timeout(timeout: Any) -> float:
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT or value != value:
        raise InputError.of("probe.timeout.invalid", "probe.timeout.invalid.fix", field="timeout",
                            value=_shown(str(timeout)), max=int(MAX_TIMEOUT))
    return value


def _load_cafile(cafile: str) -> list[x509.Certificate]:
    certs = certfiles.load_file(cafile, field="cafile").certificates
    if not certs:
        raise InputError.of("probe.cafile.empty", "probe.cafile.empty.fix", field="cafile", name=cafile)
    return certs


def _ascii_name(name: str) -> str:
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


def _servertab(mailroot: MailRoot | None) -> Any:
    if mailroot is None:
        return None
    try:
        return ServerTab.read(mailroot.server_tab)
    except OSError:
        return None


def _flag_on(tab: Any, name: str) -> bool:
    var = variable(name)
    assert var is not None
    return var.effective(tab.get(name) if tab is not None else None) == "1"


def default_ports(mailroot: MailRoot | None = None, *,
                  remembered: bool = True) -> tuple[dict[str, int], dict[str, int]]:
    """The endpoints a probe without named ports checks, and those it leaves out.

    The listeners the administrator named for *mailroot* (see
    :mod:`xmailnb.mailroot.workbook`), else XMail's stock ones
    (:data:`DEFAULT_ENDPOINTS`).  A STARTTLS endpoint is left out when
    server.tab turns STARTTLS off for it (``EnableSMTP-TLS`` and the like
    set to 0): XMail does not offer it there.

    With ``remembered=False`` the listeners named for *mailroot* are
    ignored (``probe --ports default`` forgets them in the same run).

    Returns:
        ``(probed, left_out)``, both endpoint name -> port.
    """
    ports: dict[str, int] | None = None
    if mailroot is not None and remembered:
        ports = probe_settings(mailroot).ports
    if ports is None:
        ports = {name: ENDPOINTS[name] for name in DEFAULT_ENDPOINTS}
    tab = _servertab(mailroot)
    probed = {n: p for n, p in ports.items() if n not in STARTTLS_FLAGS or _flag_on(tab, STARTTLS_FLAGS[n])}
    left_out = {n: p for n, p in ports.items() if n not in probed}
    return probed, left_out


# -- the network part ------------------------------------------------------------

class _Fail(Exception):
    """The endpoint could not be probed; ``kind`` is the reason."""

    def __init__(self, kind: Problem, msg: Msg, fix: Msg | None, *, reachable: bool,
                 alert: str = "") -> None:
        super().__init__(str(kind))
        self.kind, self.msg, self.fix, self.reachable = kind, msg, fix, reachable
        #: The TLS alert or error text, when the TLS layer failed.
        self.alert = alert
        #: What the server sent before it failed (a TLS 1.3 refusal comes
        #: after the server's certificate).
        self.served: _Served | None = None


def _preview(data: bytes) -> str:
    # What the server said, shown safely: printable ASCII, the rest escaped.
    shown = data[:60]
    text = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in shown.rstrip(b"\r\n"))
    return text + ("..." if len(data) > 60 else "")


class _Wire:
    """A connection whose every read honours one overall deadline; plain
    first, then (after :func:`_handshake`) TLS through pyOpenSSL."""

    def __init__(self, name: str, host: str, port: int, deadline: float, timeout: float) -> None:
        self.name, self.host, self.port = name, host, port
        self.deadline, self.timeout = deadline, timeout
        self.buffer = b""
        #: Application bytes received so far (decrypted once TLS is up).
        self.received = b""
        self.raw_seen = False
        self.tls: Any = None
        #: The TLS handshake is complete.
        self.secure = False
        #: The server sent a CertificateRequest during the handshake.
        self.cert_requested = False
        #: What is being spoken, for messages: the STARTTLS mode, ``tls``
        #: before an implicit handshake, then the protocol.
        self.phase = _mode(name)
        try:
            self.sock = socket.create_connection((host.strip("[]"), port), timeout=self._left())
        except socket.gaierror as exc:
            raise _Fail(Problem.UNRESOLVED, Msg.of("probe.unresolved", host=_shown(host),
                                                   reason=exc.strerror or str(exc)),
                        Msg.of("probe.unresolved.fix"), reachable=False) from None
        except ConnectionRefusedError:
            raise _Fail(Problem.REFUSED, Msg.of("probe.refused", port=port, name=name),
                        Msg.of("probe.refused.fix", name=name, port=port), reachable=False) from None
        except (TimeoutError, socket.timeout):
            raise _Fail(Problem.NO_ANSWER, Msg.of("probe.connect_timeout", port=port, timeout=_secs(timeout)),
                        Msg.of("probe.connect_timeout.fix", port=port), reachable=False) from None
        except (OSError, UnicodeError) as exc:
            raise _Fail(Problem.UNREACHABLE, Msg.of("probe.unreachable", port=port,
                                                    reason=getattr(exc, "strerror", None) or type(exc).__name__),
                        Msg.of("probe.connect_timeout.fix", port=port), reachable=False) from None

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _silent_fix(self) -> Msg:
        if self.secure:
            return Msg.of("probe.silent.fix.after_tls", name=self.name)
        return Msg.of(f"probe.silent.fix.{self.phase}", name=self.name)

    def raw_recv(self, *, waiting_for: str) -> bytes:
        try:
            self.sock.settimeout(self._left())
            data = self.sock.recv(16384)
        except (TimeoutError, socket.timeout):
            key = "probe.silent" if not self.raw_seen else "probe.stalled"
            raise _Fail(Problem.SILENT, Msg.of(key, port=self.port, timeout=_secs(self.timeout),
                                               waiting=waiting_for),
                        self._silent_fix(), reachable=True) from None
        except OSError as exc:
            raise _Fail(Problem.CLOSED, Msg.of("probe.reset", port=self.port, waiting=waiting_for,
                                               reason=exc.strerror or type(exc).__name__),
                        Msg.of("probe.closed.fix"), reachable=True) from None
        if data:
            self.raw_seen = True
        return data

    def raw_send(self, data: bytes, waiting_for: str = "TLS") -> None:
        try:
            self.sock.settimeout(self._left())
            self.sock.sendall(data)
        except (TimeoutError, socket.timeout):
            raise _Fail(Problem.SILENT, Msg.of("probe.stalled", port=self.port, timeout=_secs(self.timeout),
                                               waiting=waiting_for),
                        Msg.of("probe.closed.fix"), reachable=True) from None
        except OSError as exc:
            raise _Fail(Problem.CLOSED, Msg.of("probe.reset", port=self.port, waiting=waiting_for,
                                               reason=exc.strerror or type(exc).__name__),
                        Msg.of("probe.closed.fix"), reachable=True) from None

    def flush(self) -> None:
        """Send what the TLS layer has to send."""
        while True:
            try:
                out = self.tls.bio_read(65536)
            except SSL.WantReadError:
                return
            if not out:
                return
            self.raw_send(out)

    def recv(self, *, waiting_for: str) -> bytes:
        data = self._tls_recv(waiting_for) if self.tls is not None else self.raw_recv(waiting_for=waiting_for)
        self.received += data
        return data

    def _tls_recv(self, waiting_for: str) -> bytes:
        eof = False
        while True:
            try:
                return bytes(self.tls.recv(16384))
            except SSL.WantReadError:
                if eof:
                    return b""
                self.flush()
                data = self.raw_recv(waiting_for=waiting_for)
                if not data:
                    eof = True
                    self.tls.bio_shutdown()
                    continue
                self.tls.bio_write(data)
            except (SSL.ZeroReturnError, SSL.SysCallError):
                return b""  # closed, with or without close_notify
            except SSL.Error as exc:
                reason = _ssl_reason(exc)
                if eof and not _is_alert(reason):
                    return b""  # "unexpected eof": the peer just closed
                raise _Fail(Problem.TLS_SESSION, Msg.of("probe.tls_session", port=self.port, waiting=waiting_for,
                                                        reason=reason),
                            Msg.of("probe.closed.fix"), reachable=True, alert=reason) from None

    def sendall(self, data: bytes, waiting_for: str = "TLS") -> None:
        if self.tls is None:
            self.raw_send(data, waiting_for)
            return
        try:
            self.tls.sendall(data)
        except SSL.Error as exc:
            reason = _ssl_reason(exc)
            raise _Fail(Problem.TLS_SESSION, Msg.of("probe.tls_session", port=self.port, waiting=waiting_for,
                                                    reason=reason),
                        Msg.of("probe.closed.fix"), reachable=True, alert=reason) from None
        self.flush()

    def line(self, waiting_for: str) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > _MAX_REPLY:
                raise self.garbage()
            data = self.recv(waiting_for=waiting_for)
            if not data:
                raise _Fail(Problem.CLOSED, Msg.of("probe.closed", port=self.port, waiting=waiting_for),
                            Msg.of("probe.closed.fix"), reachable=True)
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def garbage(self) -> _Fail:
        data = self.received
        if not self.secure and data[:1] in (b"\x15", b"\x16"):
            # A TLS record where a greeting was expected: implicit TLS port.
            return _Fail(Problem.GARBAGE, Msg.of("probe.garbage.tls_record", port=self.port, name=self.name),
                         Msg.of("probe.garbage.tls_record.fix", name=self.name), reachable=True)
        return _Fail(Problem.GARBAGE, Msg.of(f"probe.garbage.{self.phase}", port=self.port, text=_preview(data)),
                     Msg.of("probe.garbage.fix", port=self.port, name=self.name), reachable=True)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _secs(value: float) -> str:
    return f"{value:g}"


_SMTP_REPLY = re.compile(rb"^(\d{3})([ -]|$)")
_CTRL_REPLY = re.compile(rb"^([+-])(\d{5})( |$)")


def _smtp_reply(w: _Wire, waiting: str) -> tuple[int, list[bytes]]:
    lines = []
    while True:
        line = w.line(waiting)
        m = _SMTP_REPLY.match(line)
        if m is None:
            raise w.garbage()
        lines.append(line)
        if m.group(2) != b"-":
            return int(m.group(1)), lines
        if len(lines) > 100:
            raise w.garbage()


def _smtp_greeting(w: _Wire) -> None:
    code, lines = _smtp_reply(w, "220")
    if code != 220:
        raise _Fail(Problem.REFUSED_SESSION, Msg.of("probe.smtp.greeting", port=w.port, text=_preview(lines[0])),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)


def _smtp_ehlo(w: _Wire) -> list[bytes]:
    w.sendall(f"EHLO {_EHLO_NAME}\r\n".encode("ascii"), "EHLO")
    code, lines = _smtp_reply(w, "EHLO")
    if code != 250:
        raise _Fail(Problem.REFUSED_SESSION, Msg.of("probe.smtp.ehlo", port=w.port, text=_preview(lines[0])),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)
    return lines


def _starttls_smtp(w: _Wire) -> None:
    _smtp_greeting(w)
    lines = _smtp_ehlo(w)
    if not any(line[4:].strip().upper().split(b" ")[0] == b"STARTTLS" for line in lines[1:]):
        raise _Fail(Problem.NO_STARTTLS, Msg.of("probe.smtp.no_starttls", port=w.port),
                    Msg.of("probe.smtp.no_starttls.fix"), reachable=True)
    w.sendall(b"STARTTLS\r\n", "STARTTLS")
    code, lines = _smtp_reply(w, "STARTTLS")
    if code != 220:
        raise _Fail(Problem.NO_STARTTLS, Msg.of("probe.smtp.starttls_refused", port=w.port,
                                                text=_preview(lines[0])),
                    Msg.of("probe.smtp.no_starttls.fix"), reachable=True)


def _pop3_greeting(w: _Wire) -> None:
    line = w.line("+OK")
    if line.startswith(b"-ERR"):
        raise _Fail(Problem.REFUSED_SESSION, Msg.of("probe.pop3.greeting", port=w.port, text=_preview(line)),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)
    if not line.startswith(b"+OK"):
        raise w.garbage()


def _starttls_pop3(w: _Wire) -> None:
    _pop3_greeting(w)
    w.sendall(b"STLS\r\n", "STLS")
    line = w.line("STLS")
    if line.startswith(b"-ERR"):
        raise _Fail(Problem.NO_STARTTLS, Msg.of("probe.pop3.stls_refused", port=w.port, text=_preview(line)),
                    Msg.of("probe.pop3.stls_refused.fix"), reachable=True)
    if not line.startswith(b"+OK"):
        raise w.garbage()


def _pop3_capa(w: _Wire) -> None:
    w.sendall(b"CAPA\r\n", "CAPA")
    line = w.line("CAPA")
    if line.startswith(b"-ERR"):
        return  # a POP3 server without CAPA still answered in POP3
    if not line.startswith(b"+OK"):
        raise w.garbage()
    for _ in range(200):
        if w.line("CAPA") == b".":
            return
    raise w.garbage()


def _ctrl_reply(w: _Wire, waiting: str) -> tuple[bool, bytes]:
    line = w.line(waiting)
    m = _CTRL_REPLY.match(line)
    if m is None:
        raise w.garbage()
    return m.group(1) == b"+", line


def _ctrl_greeting(w: _Wire) -> None:
    ok, line = _ctrl_reply(w, "+00000")
    if not ok:
        raise _Fail(Problem.REFUSED_SESSION, Msg.of("probe.ctrl.greeting", port=w.port, text=_preview(line)),
                    Msg.of("probe.smtp.greeting.fix"), reachable=True)


def _starttls_ctrl(w: _Wire) -> None:
    _ctrl_greeting(w)
    w.sendall(b"#!TLS\r\n", "#!TLS")
    ok, line = _ctrl_reply(w, "#!TLS")
    if not ok:
        raise _Fail(Problem.NO_STARTTLS, Msg.of("probe.ctrl.tls_refused", port=w.port, text=_preview(line)),
                    Msg.of("probe.ctrl.tls_refused.fix"), reachable=True)


def _after_tls(w: _Wire) -> None:
    """One protocol round over TLS, as a client would start its session."""
    protocol = PROTOCOLS[w.name]
    implicit = w.name not in STARTTLS_ENDPOINTS
    w.phase = protocol
    if protocol == "smtp":
        if implicit:
            _smtp_greeting(w)
        _smtp_ehlo(w)
        w.sendall(b"QUIT\r\n", "QUIT")
    elif protocol == "pop3":
        if implicit:
            _pop3_greeting(w)
        _pop3_capa(w)
        w.sendall(b"QUIT\r\n", "QUIT")
    elif implicit:
        _ctrl_greeting(w)
    else:
        # After #!TLS XMail waits for the login line and greets no more: an
        # empty line is refused at once, and nothing is logged for it.
        w.sendall(b"\r\n", "CTRL")
        _ctrl_reply(w, "CTRL")


def _ssl_reason(exc: Exception) -> str:
    parts = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            parts.append(str(item[-1]))
    return "; ".join(p for p in parts if p) or (str(exc.args[1]) if len(exc.args) > 1 else type(exc).__name__)


def _is_alert(reason: str) -> bool:
    return "alert" in reason.lower()


def _demands_client_cert(w: _Wire, fail: _Fail) -> bool:
    # TLS 1.3 names the refusal (alert 116, "certificate required"); TLS 1.2
    # servers answer the missing certificate with "handshake failure", and
    # XMail may just close: after a CertificateRequest any of these means
    # the server wanted a certificate that a mail client does not have.
    if "certificate required" in fail.alert.lower():
        return True
    return w.cert_requested and fail.kind in (Problem.CLOSED, Problem.TLS_SESSION, Problem.HANDSHAKE)


@dataclass
class _Served:
    version: str
    cipher: str
    certs: list[x509.Certificate]


def _handshake(w: _Wire, sni: str | None) -> _Served:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    # See what old servers offer (TLS 1.0, weak ciphers) instead of failing
    # on them: the result says they are outdated.
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")

    def info(conn: Any, where: int, ret: int) -> None:
        # A CertificateRequest: the server asks for a client certificate
        # (SSLWantVerify) and may insist on it (SSLWantCert).
        if b"certificate request" in (conn.get_state_string() or b"").lower():
            w.cert_requested = True

    ctx.set_info_callback(info)
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    if sni:
        conn.set_tlsext_host_name(sni.encode("ascii"))
    if w.buffer:
        # Bytes after the "go ahead" and before our ClientHello: no TLS
        # server sends those.
        raise _garbage_tls(w, w.buffer)
    w.tls = conn
    w.phase = "tls"

    first = True
    while True:
        try:
            conn.do_handshake()
            break
        except SSL.WantReadError:
            pass
        except SSL.Error as exc:
            try:
                w.flush()  # our alert, so the server logs why
            except _Fail:
                pass
            reason = _ssl_reason(exc)
            raise _Fail(Problem.HANDSHAKE, Msg.of("probe.handshake", port=w.port, reason=reason),
                        Msg.of("probe.handshake.fix"), reachable=True, alert=reason) from None
        w.flush()
        data = w.raw_recv(waiting_for="TLS")
        if not data:
            raise _Fail(Problem.HANDSHAKE, Msg.of("probe.handshake.closed", port=w.port),
                        Msg.of("probe.handshake.fix"), reachable=True)
        if first and data[:1] not in (b"\x15", b"\x16"):
            # Not a TLS record (handshake or alert) at all.
            raise _garbage_tls(w, data)
        first = False
        conn.bio_write(data)
    # Our Finished (and, in TLS 1.3, our empty Certificate) go out now.
    w.flush()
    certs = conn.get_peer_cert_chain(as_cryptography=True) or []
    w.buffer, w.received, w.secure = b"", b"", True
    return _Served(version=conn.get_protocol_version_name(), cipher=conn.get_cipher_name() or "", certs=certs)


def _garbage_tls(w: _Wire, data: bytes) -> _Fail:
    return _Fail(Problem.GARBAGE, Msg.of("probe.garbage.tls_expected", port=w.port, text=_preview(data)),
                 Msg.of("probe.garbage.tls_expected.fix", name=w.name), reachable=True)


def _client_cert_fail(w: _Wire, want_cert: bool | None) -> _Fail:
    # What the MailRoot's server.tab says, when there is one to read.
    if want_cert is None:
        cause = "probe.client_cert.unknown"
    else:
        cause = "probe.client_cert.set" if want_cert else "probe.client_cert.not_set"
    return _Fail(Problem.CLIENT_CERT, Msg.of("probe.client_cert", port=w.port, cause=Msg.of(cause)),
                 Msg.of("probe.client_cert.fix"), reachable=True)


def _close_tls(w: _Wire) -> None:
    try:
        w.tls.shutdown()
        w.flush()
    except (SSL.Error, _Fail):
        pass


_STARTTLS: dict[str, Callable[[_Wire], None]] = {"smtp": _starttls_smtp, "pop3": _starttls_pop3,
                                                 "ctrl": _starttls_ctrl}


def _fetch(name: str, host: str, port: int, sni: str | None, timeout: float,
           want_cert: bool | None) -> _Served:
    deadline = time.monotonic() + timeout
    w = _Wire(name, host, port, deadline, timeout)
    served: _Served | None = None
    try:
        mode = _mode(name)
        if mode in _STARTTLS:
            _STARTTLS[mode](w)
        served = _handshake(w, sni)
        _after_tls(w)
        _close_tls(w)
        return served
    except _Fail as fail:
        if w.tls is not None and _demands_client_cert(w, fail):
            fail = _client_cert_fail(w, want_cert)
        fail.served = served
        raise fail from None
    finally:
        w.close()


# -- judging what was served -------------------------------------------------------

def _anchors(mr: MailRoot | None, cafile_certs: Sequence[x509.Certificate]) -> dict[str, Sequence[x509.Certificate]]:
    if mr is None:
        return {chainmod.Anchor.PUBLIC: chainmod.public_roots(), chainmod.Anchor.CAFILE: list(cafile_certs)}
    try:
        certs_pem = certfiles.load_file(mr.certs_pem).certificates
    except XmailnbError:
        certs_pem = []
    return anchor_sets(mr, certs_pem, cafile_certs, given_as=chainmod.Anchor.CAFILE)


def _trust_remedy(problem: chainmod.ChainProblem | None) -> Msg | None:
    """What to do about why the served chain did not verify (by its reason,
    never by the wording of the message)."""
    remedy = _TRUST_REMEDIES.get(problem.reason) if problem is not None else None
    return Msg.of(remedy) if remedy else None


_TRUST_REMEDIES: dict[chainmod.Reason, str] = {
    chainmod.Reason.HOSTNAME: "probe.fix.hostname",
    chainmod.Reason.EXPIRED: "probe.fix.expired",
    chainmod.Reason.NOT_YET_VALID: "probe.fix.expired",
    chainmod.Reason.UNKNOWN_ISSUER: "probe.fix.untrusted",
    chainmod.Reason.UNTRUSTED_ROOT: "probe.fix.untrusted",
    chainmod.Reason.SELF_SIGNED: "probe.fix.untrusted",
}


def _with(first: Msg, second: Msg | None) -> Msg:
    return first if second is None else Msg.of("probe.with", first=first, second=second)


def _mismatch(served: Sequence[x509.Certificate],
              installed: Sequence[x509.Certificate] | None) -> Mismatch | None:
    if not installed:  # no MailRoot to compare with, or no server.cert in it
        return Mismatch.NOTHING_INSTALLED
    served_fps, installed_fps = [certfiles.cert_fingerprint(c) for c in served], [certfiles.cert_fingerprint(c) for c in installed]
    if served_fps == installed_fps:
        return None
    if served_fps[0] != installed_fps[0]:
        return Mismatch.OTHER_CERTIFICATE
    if len(served_fps) < len(installed_fps) and served_fps == installed_fps[:len(served_fps)]:
        return Mismatch.LEAF_ONLY if len(served_fps) == 1 else Mismatch.OTHER_CHAIN
    return Mismatch.OTHER_CHAIN


def _mismatch_msg(kind: Mismatch, served: Sequence[x509.Certificate],
                  installed: Sequence[x509.Certificate] | None) -> Msg:
    if kind is Mismatch.LEAF_ONLY:
        return Msg.of("probe.mismatch.leaf_only", served=len(served), installed=len(installed or ()))
    if kind is Mismatch.OTHER_CERTIFICATE:
        return Msg.of("probe.mismatch.other", subject=_name(served[0].subject))
    return Msg.of(f"probe.mismatch.{kind.value}")


def _mismatch_fix(kind: Mismatch) -> Msg:
    if kind is Mismatch.NOTHING_INSTALLED:
        return Msg.of("probe.fix.nothing_installed")
    return Msg.of("probe.fix.leaf_only" if kind is Mismatch.LEAF_ONLY else "probe.fix.mismatch")


def _name(name: x509.Name) -> str:
    try:
        text = name.rfc4514_string()
    except ValueError:
        text = ""
    return text or "-"


def _fill_served(r: EndpointResult, served: _Served) -> None:
    certs = served.certs
    r.tls_version, r.cipher, r.certificates = served.version, served.cipher, certs
    r.chain = [ServedCert(_name(c.subject), _name(c.issuer), certfiles.cert_fingerprint(c)) for c in certs]


def _judge(r: EndpointResult, served: _Served, verify_name: str, anchors: Mapping[str, Sequence[x509.Certificate]],
           installed: list[x509.Certificate] | None, have_mailroot: bool, at: dt.datetime) -> None:
    _fill_served(r, served)
    certs = served.certs
    if not certs:
        r.status, r.problem = Status.ERROR, Problem.NO_CERT
        r.message, r.fix = Msg.of("probe.no_cert", port=r.port), Msg.of("probe.handshake.fix")
        return
    r.days_left = min((c.not_valid_after_utc - at).days for c in certs)
    mismatch: Mismatch | None = None
    mismatch_msg: Msg | None = None
    if have_mailroot:
        mismatch = _mismatch(certs, installed)
        r.matches_installed = mismatch is None
        if mismatch is not None:
            mismatch_msg = _mismatch_msg(mismatch, certs, installed)

    trust = chainmod.verify_trust(certs[0], certs[1:], anchors=anchors, hostname=verify_name, at=at)
    r.verified, r.anchor = trust.trusted, trust.anchor
    tls = Msg.of("probe.tls", version=served.version, cipher=served.cipher)
    if not trust.trusted:
        reason = trust.reason or Msg.of("probe.not_verified.unknown")
        r.status, r.problem = Status.ERROR, Problem.NOT_VERIFIED
        r.message = _with(Msg.of("probe.not_verified", tls=tls, hostname=verify_name, reason=reason),
                          mismatch_msg)
        remedy = _trust_remedy(trust.problem)
        if mismatch is Mismatch.LEAF_ONLY or (remedy is None and mismatch is not None):
            r.fix = _mismatch_fix(mismatch)
        else:
            r.fix = remedy or Msg.of("probe.fix.diagnose")
        return
    verified = Msg.of("probe.verified", tls=tls, count=len(certs), hostname=verify_name,
                      anchor=Msg.of(f"probe.anchor.{r.anchor}"),
                      left=Msg.of("probe.days_left", count=r.days_left))
    issues = chainmod.check_order(certs)
    old_tls = served.version in ("TLSv1", "TLSv1.1", "SSLv3")
    if mismatch is not None:
        r.status, r.message, r.fix = Status.WARN, _with(verified, mismatch_msg), _mismatch_fix(mismatch)
    elif issues:
        # Say it in served terms: check_order's messages speak of server.cert.
        key = "probe.duplicate" if all(i.code == "duplicate" for i in issues) else "probe.order"
        r.status, r.message = Status.WARN, _with(verified, Msg.of(key))
        r.fix = Msg.of("probe.fix.order")
    elif old_tls:
        r.status = Status.WARN
        r.message = _with(verified, Msg.of("probe.old_tls", version=served.version))
        r.fix = Msg.of("probe.fix.old_tls")
    elif r.days_left < EXPIRY_WARN_DAYS:
        r.status = Status.WARN
        r.message = _with(verified, Msg.of("probe.expiring", count=r.days_left))
        r.fix = Msg.of("probe.fix.expired")
    elif r.anchor in (chainmod.Anchor.PRACTICE, chainmod.Anchor.CERTS_PEM):
        r.status, r.fix = Status.INFO, Msg.of(f"probe.fix.anchor.{r.anchor}")
        r.message = _with(verified, Msg.of("probe.same") if r.matches_installed else None)
    else:
        r.status, r.fix = Status.OK, None
        r.message = _with(verified, Msg.of("probe.same") if r.matches_installed else None)


def _probe_one(name: str, host: str, port: int, sni: str | None, timeout: float,
               want_cert: bool | None) -> EndpointResult | _Served:
    r = EndpointResult(name=name, host=host, port=port)
    try:
        served = _fetch(name, host, port, sni, timeout, want_cert)
    except _Fail as fail:
        r.reachable, r.status, r.problem, r.message, r.fix = fail.reachable, Status.ERROR, fail.kind, fail.msg, fail.fix
        if fail.served is not None:
            try:
                _fill_served(r, fail.served)
            except chainmod.PARSE_ERRORS:  # the facts are a bonus; the reason is what counts
                log.debug("could not describe the served chain", exc_info=True)
        return r
    except Exception as exc:  # a bug boundary: never a traceback for what a server sends
        log_unexpected(log, f"probing {name} port {port}", exc)
        r.reachable, r.status, r.problem = True, Status.ERROR, Problem.UNEXPECTED
        r.message = Msg.of("probe.unexpected", port=port, reason=type(exc).__name__)
        r.fix = Msg.of("probe.closed.fix")
        return r
    return served


def _skipped(name: str, host: str, port: int) -> EndpointResult:
    flag = STARTTLS_FLAGS[name]
    return EndpointResult(name=name, host=host, port=port, status=Status.INFO, problem=Problem.STARTTLS_OFF,
                          message=Msg.of("probe.starttls_off", name=name, port=port, flag=flag),
                          fix=Msg.of("probe.starttls_off.fix", flag=flag))


def _check_ports(ports: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(ports, Mapping):
        raise InputError.of("probe.ports.empty", "probe.ports.fix", field="ports", names=", ".join(ENDPOINTS))
    for name, port in ports.items():
        if name not in ENDPOINTS or isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError.of("probe.ports.bad_port", "probe.ports.fix", field="ports",
                                item=_shown(f"{name}={port}"), names=", ".join(ENDPOINTS))
    return dict(ports)


def probe(
    host: str = "127.0.0.1",
    *,
    ports: Mapping[str, int] | None = None,
    servername: str | None = None,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    mailroot: MailRoot | None = None,
    remembered: bool = True,
) -> list[EndpointResult]:
    """Probe the endpoints of a running server; one result per endpoint.

    Args:
        host: where the server runs (name or address).
        ports: endpoint name -> port (names from :data:`ENDPOINTS`), probed
            as given; default :func:`default_ports` (XMail's stock listeners
            or those named for the MailRoot; a STARTTLS endpoint that
            server.tab turns off gets an ``info`` result saying so).
        servername: the host name clients use, sent as SNI and verified;
            default the MailRoot's mail host name (server.tab), else *host*.
        cafile: extra trusted CA certificates (PEM, DER, PKCS#7).
        timeout: network time allowed per endpoint, in seconds; endpoints
            run concurrently, so this bounds the whole probe too.
        mailroot: compare with its installed server.cert, trust its
            practice root and certs.pem, and name server.tab's settings
            in the reasons.  On the practice sandbox, a port nobody
            listens on is answered with "start the practice server".
        remembered: without *ports*, probe the listeners named for
            *mailroot* (``False``: XMail's stock ones, as after
            ``--ports default``).

    Raises:
        InputError: bad host, endpoint names or ports, bad timeout,
            unreadable cafile.
    """
    timeout = _check_timeout(timeout)
    host = check_host(host)
    skipped: dict[str, int] = {}
    if ports is None:
        wanted, skipped = default_ports(mailroot, remembered=remembered)
    else:
        wanted = _check_ports(ports)
    cafile_certs = _load_cafile(cafile) if cafile else []
    verify_name = (servername or "").strip().rstrip(".").lower() or None
    if verify_name is not None and not _is_ip(verify_name):
        try:
            verify_name = normalize_hostname_option(verify_name)
        except InputError as exc:
            exc.field = "servername"
            raise
    tab = _servertab(mailroot)
    if verify_name is None and tab is not None:
        verify_name = mail_hostname(tab)
    verify_name = verify_name or host.strip("[]")
    sni = None if _is_ip(verify_name) else _ascii_name(verify_name)
    want_cert = _flag_on(tab, "SSLWantCert") if tab is not None else None

    outcomes: dict[str, EndpointResult | _Served] = {}
    if wanted:
        with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="xmailnb-probe") as pool:
            futures = {name: pool.submit(_probe_one, name, host, port, sni, timeout, want_cert)
                       for name, port in wanted.items()}
            outcomes = {name: f.result() for name, f in futures.items()}

    anchors = _anchors(mailroot, cafile_certs)
    installed = installed_chain(mailroot) if mailroot is not None else None
    at = clock.now()
    results = []
    for name, outcome in outcomes.items():
        if isinstance(outcome, EndpointResult):
            results.append(outcome)
            continue
        r = EndpointResult(name=name, host=host, port=wanted[name], reachable=True)
        try:
            _judge(r, outcome, verify_name, anchors, installed, mailroot is not None, at)
        except chainmod.WorkLimitExceeded as exc:
            r.status, r.problem, r.verified, r.anchor = Status.ERROR, Problem.TOO_COSTLY, False, None
            r.message = Msg.of("probe.too_costly", port=r.port, count=len(outcome.certs), limit=exc.limit)
            r.fix = Msg.of("probe.too_costly.fix")
        except Exception as exc:  # a bug boundary: a certificate too odd to judge still gets a clear line
            log_unexpected(log, f"judging what {name} port {r.port} served", exc)
            r.status, r.problem = Status.ERROR, Problem.UNEXPECTED
            r.message = Msg.of("probe.unexpected", port=r.port, reason=type(exc).__name__)
            r.fix = Msg.of("probe.fix.diagnose")
        results.append(r)
    results.extend(_skipped(name, host, port) for name, port in skipped.items())
    if mailroot is not None and mailroot.is_sandbox:
        for r in results:
            if r.problem is Problem.REFUSED:
                # The sandbox has no XMail: the practice server is what listens.
                r.fix = Msg.of("probe.refused.fix.sandbox", name=r.name, port=r.port)
    return results


def passed(results: Sequence[EndpointResult]) -> bool:
    """Did the live check pass: at least one endpoint was probed and none
    failed.  Endpoints left out because server.tab turns STARTTLS off there
    are neither a failure nor a pass.  The one rule for the command's exit
    status, the page's summary and the step's mark."""
    probed = [r for r in results if r.checked]
    return bool(probed) and all(r.status is not Status.ERROR for r in probed)


def reached_server(results: Sequence[EndpointResult]) -> bool:
    """At least one endpoint answered a TCP connection: the check reached a
    server (the ports it used are then worth remembering)."""
    return any(r.reachable for r in results)


def worst_status(results: Sequence[EndpointResult]) -> Status:
    """The worst status among *results* (``ok`` for none)."""
    return Status.worst(r.status for r in results)


def record(mailroot: MailRoot, results: Sequence[EndpointResult]) -> None:
    """Remember in *mailroot*'s progress log that a live check ran.

    Whether it passed is :func:`passed`.
    """
    served = []
    for r in results:
        if r.checked and r.chain and r.chain[0].sha256 not in served:
            served.append(r.chain[0].sha256)
    checked = [r for r in results if r.checked]
    failed = sum(1 for r in checked if r.status is Status.ERROR)
    progress.record_probe(mailroot, passed=passed(results), worst=worst_status(results), served_sha256=served,
                          failed=failed, total=len(checked))


def probe_findings(results: Sequence[EndpointResult]) -> list[Finding]:
    """The results as diagnosis findings with check ids ``probe.<name>``."""
    findings = []
    for r in results:
        details = {"host": r.host, "port": r.port, "reachable": r.reachable, "tls_version": r.tls_version,
                   "cipher": r.cipher, "chain": [c.to_json() for c in r.chain], "verified": r.verified,
                   "matches_installed": r.matches_installed, "days_left": r.days_left, "anchor": r.anchor,
                   "problem": str(r.problem) if r.problem is not None else None}
        findings.append(Finding(f"probe.{r.name}", r.status, r.message, r.fix, details))
    return findings
