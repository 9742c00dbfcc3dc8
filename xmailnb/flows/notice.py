"""The announcement for mail-client users: which host name to type, which
ports and security settings to choose, and to keep certificate verification on.

The host name is the one clients must use for the certificate to match: the
one given, else server.tab's mail host name, and it is checked against the
installed certificate so that the notice never tells users to configure a
name that would make their mail program warn.

The ports are those the server really offers with TLS: XMail's stock
listeners (SMTPS 465, SMTP 25, POP3S 995, POP3 110), or the ones the
administrator named for the live check (:mod:`xmailnb.mailroot.workbook`), such as
submission on 587, which XMail has only when it is started with an extra
``-SI ...:587``.  A STARTTLS port is offered only while server.tab leaves
STARTTLS on for it (``EnableSMTP-TLS``, ``EnablePOP3-TLS``), and no port is
ever offered without TLS.

>>> print(notice_text(mr, "en"))   # doctest: +SKIP
Subject: ...
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import progress
from ..checks.installed import installed_chain, leaf_sha256, practice_issued
from ..errors import InputError
from ..i18n import Lines, Msg, text
from ..mailroot.endpoints import DEFAULT_ENDPOINTS, ENDPOINTS, STARTTLS_FLAGS
from ..mailroot.layout import MailRoot
from ..mailroot.servertab import ServerTab, mail_hostname, variable
from ..mailroot.workbook import probe_settings
from ..pki import chain
from ..pki.csr import normalize_hostname_option

__all__ = ["ClientPort", "client_ports", "notice_host", "notice_text", "record_shown"]


@dataclass(frozen=True)
class ClientPort:
    """A port mail clients may use, and how TLS starts on it.

    Attributes:
        service: ``"send"`` (SMTP) or ``"receive"`` (POP3).
        endpoint: the probe's endpoint name (``smtps``, ``submission``, ...).
        port: the port number.
        starttls: TLS starts with STARTTLS/STLS (else from the first byte).
    """

    service: str
    endpoint: str
    port: int
    starttls: bool


# The order users are offered them in: implicit TLS first (nothing to get
# wrong), then STARTTLS; port 25 last (many providers block it for clients).
_CLIENT_ENDPOINTS = (("send", "smtps", False), ("send", "submission", True), ("send", "smtp", True),
                     ("receive", "pop3s", False), ("receive", "pop3", True))


def client_ports(mr: MailRoot) -> list[ClientPort]:
    """The ports users can configure, in the order the notice offers them."""
    listeners = probe_settings(mr).ports or {n: ENDPOINTS[n] for n in DEFAULT_ENDPOINTS}
    try:
        tab: ServerTab | None = ServerTab.read(mr.server_tab)
    except OSError:
        tab = None

    def starttls_on(endpoint: str) -> bool:
        flag = STARTTLS_FLAGS[endpoint]
        var = variable(flag)
        assert var is not None
        return var.effective(tab.get(flag) if tab is not None else None) == "1"

    out = []
    for service, endpoint, starttls in _CLIENT_ENDPOINTS:
        if endpoint in listeners and (not starttls or starttls_on(endpoint)):
            out.append(ClientPort(service, endpoint, listeners[endpoint], starttls))
    return out


def notice_host(mr: MailRoot, hostname: str | None = None) -> tuple[str, list[Msg]]:
    """The host name users must configure, and warnings for the administrator.

    Args:
        hostname: the name users connect to; default server.tab's mail host
            name (SmtpServerDomain, else RootDomain), else the first
            non-wildcard name of the installed certificate.

    Returns:
        ``(hostname, warnings)``: warnings say when there is no certificate
        yet, or only a practice one, so the notice should not go out yet,
        and when no encrypted port is left for sending or receiving.

    Raises:
        InputError: the name is invalid, not covered by the installed
            certificate, or cannot be determined (``field="hostname"``).
    """
    certs = installed_chain(mr)
    leaf = certs[0] if certs else None
    name: str | None = normalize_hostname_option(hostname) if hostname and hostname.strip() else None
    if name is None:
        try:
            name = mail_hostname(ServerTab.read(mr.server_tab))
        except OSError:
            name = None
    if name is None and leaf is not None:
        name = next((n for n in chain.hostnames(leaf) if not n.startswith("*.")), None)
    if name is None:
        raise InputError.of("notice.no_hostname", "notice.no_hostname.fix", field="hostname")
    warnings: list[Msg] = []
    if leaf is None:
        warnings.append(Msg.of("notice.warn.no_cert", hostname=name))
    else:
        if not chain.covers_hostname(leaf, name):
            raise InputError.of("notice.not_covered", "notice.not_covered.fix", field="hostname", hostname=name,
                                names=", ".join(chain.hostnames(leaf)) or "-")
        if practice_issued(certs):
            warnings.append(Msg.of("notice.warn.practice"))
    services = {p.service for p in client_ports(mr)}
    for service in ("send", "receive"):
        if service not in services:
            warnings.append(Msg.of(f"notice.warn.no_port.{service}"))
    return name, warnings


def _port_lines(ports: list[ClientPort]) -> Lines:
    # Composed from catalog lines, never from rendered strings: a string
    # parameter would have its line breaks escaped (see i18n.Lines).
    indent = "   "
    if not ports:
        return Lines((Msg.of("notice.port.none"),), prefix=indent)
    lines = []
    for p in ports:
        key = "notice.port.starttls" if p.starttls else "notice.port.tls"
        if p.endpoint == "smtp":
            key = "notice.port.smtp25"
        lines.append(Msg.of(key, port=p.port))
    if len(lines) == 1:
        return Lines((lines[0],), prefix=indent)
    return Lines((Msg.of("notice.port.choose"), Lines(tuple(lines), prefix="- ")), prefix=indent)


def notice_text(mr: MailRoot, lang: str, hostname: str | None = None) -> str:
    """The notice for mail-client users in *lang* (``ja`` or ``en``).

    Raises:
        InputError: see :func:`notice_host`.
    """
    name, _warnings = notice_host(mr, hostname)
    ports = client_ports(mr)
    sending = _port_lines([p for p in ports if p.service == "send"])
    receiving = _port_lines([p for p in ports if p.service == "receive"])
    return text("notice.body", lang, hostname=name, sending=sending, receiving=receiving).strip("\n") + "\n"


def record_shown(mr: MailRoot, *, how: str = "shown", once: bool = False) -> None:
    """Remember in the progress log that the notice was shown or downloaded
    for the certificate installed now (see :func:`xmailnb.checks.progress.record_notice`).

    Args:
        once: record only if no notice was recorded for this certificate yet
            (a view that re-renders the notice often).
    """
    if once:
        leaf = leaf_sha256(mr)
        if any(e.get("event") == "notice" and e.get("cert_sha256") == leaf for e in progress.events(mr)):
            return
    progress.record_notice(mr, how=how)
