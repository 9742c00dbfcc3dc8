"""The announcement for mail-client users: which host name to type, which
ports and security settings to choose, and to keep certificate verification on.

The host name is the one clients must use for the certificate to match: the
one given, else server.tab's mail host name, and it is checked against the
installed certificate so that the notice never tells users to configure a
name that would make their mail program warn.

>>> print(notice_text(mr, "en"))   # doctest: +SKIP
Subject: ...
"""

from __future__ import annotations

from cryptography import x509

from .errors import InputError
from .i18n import Msg, text
from .mailroot import MailRoot

__all__ = ["notice_host", "notice_text"]


def _installed(mr: MailRoot) -> list[x509.Certificate]:
    from . import certfiles
    from .errors import XmailnbError

    try:
        data = mr.read(mr.rel_server_cert, certfiles.MAX_INPUT_BYTES)
        return certfiles.certificates_from(data, name=mr.rel_server_cert) if data is not None else []
    except (OSError, XmailnbError):
        return []


def notice_host(mr: MailRoot, hostname: str | None = None) -> tuple[str, list[Msg]]:
    """The host name users must configure, and warnings for the administrator.

    Args:
        hostname: the name users connect to; default server.tab's mail host
            name (SmtpServerDomain, else RootDomain), else the first
            non-wildcard name of the installed certificate.

    Returns:
        ``(hostname, warnings)``: warnings say when there is no certificate
        yet, or only a practice one, so the notice should not go out yet.

    Raises:
        InputError: the name is invalid, not covered by the installed
            certificate, or cannot be determined (``field="hostname"``).
    """
    from . import chain
    from .actions import normalize_hostname_option
    from .diagnose import _practice_issuer
    from .servertab import ServerTab, mail_hostname

    certs = _installed(mr)
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
        if _practice_issuer(certs):
            warnings.append(Msg.of("notice.warn.practice"))
    return name, warnings


def notice_text(mr: MailRoot, lang: str, hostname: str | None = None) -> str:
    """The notice for mail-client users in *lang* (``ja`` or ``en``).

    Raises:
        InputError: see :func:`notice_host`.
    """
    name, _warnings = notice_host(mr, hostname)
    return text("notice.body", lang, hostname=name).strip("\n") + "\n"
