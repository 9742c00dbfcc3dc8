"""What ACME left in a MailRoot: the settings an order used and the outcome of
the last attempts, under ``sslconf/acme/``.

The order itself is :mod:`xmailnb.flows.acme`; the renewal check of the
diagnosis (:mod:`xmailnb.checks.renewal`) reads the same records, so both
live here, below either of them.

>>> settings = AcmeSettings(directory=LETSENCRYPT_STAGING, challenge="dns-01")
>>> settings.validate().challenge
'dns-01'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..boundedjson import JsonLimitError
from ..boundedjson import loads as bounded_loads
from ..errors import InputError, UsageError, XmailnbError
from ..i18n import Msg
from ..pki import certfiles
from ..pki import csr as csrmod
from .layout import ACME_DIR, REL_ACME_DIRECTORY_CA, REL_ACME_SETTINGS, REL_ACME_STATUS, MailRoot
from .store import Action, Store

__all__ = [
    "LETSENCRYPT",
    "LETSENCRYPT_STAGING",
    "CHALLENGES",
    "DEFAULT_RENEW_DAYS",
    "AcmeSettings",
    "load_settings",
    "AcmeAttempt",
    "AcmeStatus",
    "AcmeSuccess",
    "load_status",
    "update_status",
    "json_doc",
    "dump_json",
    "parse_dns_server",
]

#: settings.json and status.json are a few KB.
_MAX_JSON_BYTES = 1024 * 1024

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
CHALLENGES = ("http-01", "dns-01")
DEFAULT_RENEW_DAYS = 30


@dataclass
class AcmeSettings:
    """What an order uses; ``issue`` records it for ``renew``.

    Attributes:
        directory: the CA's RFC 8555 directory URL.
        email: contact address for the account (optional).
        challenge: ``"http-01"`` or ``"dns-01"``.
        http_port: where the http-01 responder listens (the CA always asks
            port 80; a different port only makes sense behind a forward).
        http_address: the address it binds (``""``: every address).
        directory_ca: extra trust anchor (PEM) for the CA's own HTTPS.
        dns_hook: a command run once per TXT record (dns-01); it gets the
            record in the environment, as certbot's manual hooks do.
        dns_check: check each TXT record is visible before asking the CA.
        dns_server: ask this DNS server (``ADDR`` or ``ADDR:PORT``) for
            that check instead of the system's resolver.
        accounts: directory URL -> account URL, filled in on registration.
    """

    directory: str = LETSENCRYPT
    email: str = ""
    challenge: str = "http-01"
    http_port: int = 80
    http_address: str = ""
    directory_ca: bytes | None = None
    dns_hook: str = ""
    dns_check: bool = False
    dns_server: str = ""
    accounts: dict[str, str] = field(default_factory=dict)

    def validate(self) -> "AcmeSettings":
        """Check and normalise the settings; return them for chaining.

        Raises:
            UsageError: a value the command line should not have accepted
                (field ``directory``, ``challenge``, ``http_port``, ...).
            InputError: an invalid e-mail address or trust-anchor file.
        """
        self.directory = (self.directory or "").strip()
        if not self.directory.lower().startswith(("https://", "http://")):
            raise UsageError(Msg.of("acme.settings.directory", value=self.directory),
                             Msg.of("acme.settings.directory.fix"), field="directory")
        if self.challenge not in CHALLENGES:
            raise UsageError(Msg.of("acme.settings.challenge", value=self.challenge),
                             Msg.of("acme.settings.challenge.fix"), field="challenge")
        if not isinstance(self.http_port, int) or not 1 <= self.http_port <= 65535:
            raise UsageError(Msg.of("acme.settings.port", value=self.http_port),
                             Msg.of("acme.settings.port.fix"), field="http_port")
        if self.email:
            value, err = csrmod.validate_field("email", self.email)
            if err is not None:
                raise InputError(err, Msg.of("acme.settings.email.fix"), field="email")
            self.email = value
        if self.directory_ca is not None:
            try:
                certs = certfiles.certificates_from(self.directory_ca, name="--directory-ca",
                                                    field="directory_ca")
            except XmailnbError as exc:
                exc.field = "directory_ca"
                raise
            self.directory_ca = certfiles.certs_to_pem(certs)
        if self.dns_server:
            parse_dns_server(self.dns_server)
        return self

    def record(self) -> dict[str, Any]:
        """The JSON kept in ``sslconf/acme/settings.json`` (the anchor is a file beside it)."""
        doc = asdict(self)
        doc["directory_ca"] = REL_ACME_DIRECTORY_CA if self.directory_ca else None
        return doc

    @classmethod
    def from_record(cls, doc: Mapping[str, Any], directory_ca: bytes | None) -> "AcmeSettings":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in doc.items() if k in known and k != "directory_ca"}
        return cls(**values, directory_ca=directory_ca)


def json_doc(data: bytes | None, name: str = ACME_DIR) -> dict[str, Any]:
    """The JSON object in *data* (``{}`` when missing or damaged).

    Raises:
        JsonLimitError: larger or deeper than any document written here
            (a refusal naming *name*, not a silent default).
    """
    try:
        doc = bounded_loads(data or b"", name=name, max_bytes=_MAX_JSON_BYTES)
    except JsonLimitError:
        raise
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _read_json(mr: MailRoot, rel: str) -> dict[str, Any]:
    try:
        return json_doc(mr.read(rel), rel)
    except OSError:
        return {}


def dump_json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def load_settings(mr: MailRoot) -> AcmeSettings | None:
    """The settings ``issue`` recorded, or ``None`` when ACME was never used here."""
    doc = _read_json(mr, REL_ACME_SETTINGS)
    if not doc:
        return None
    anchor = None
    if doc.get("directory_ca"):
        try:
            anchor = mr.read(REL_ACME_DIRECTORY_CA)
        except OSError:
            anchor = None
    try:
        return AcmeSettings.from_record(doc, anchor)
    except TypeError:
        return None


def _text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return value if isinstance(value, str) else None


def _record(doc: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = doc.get(name)
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class AcmeAttempt:
    """The last order or renewal tried: ``result`` is ``ok`` or ``failed``;
    a failure keeps its message and fix as :class:`Msg` records."""

    action: str
    time: str
    result: str
    error: Mapping[str, Any] | None = None
    fix: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "time": self.time, "result": self.result}
        if self.error is not None:
            doc["error"] = dict(self.error)
        if self.fix is not None:
            doc["fix"] = dict(self.fix)
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> AcmeAttempt | None:
        if not isinstance(doc, dict):
            return None
        return cls(action=_text(doc, "action") or "", time=_text(doc, "time") or "",
                   result=_text(doc, "result") or "", error=_record(doc, "error"), fix=_record(doc, "fix"))


@dataclass(frozen=True)
class AcmeSuccess:
    """The last certificate ACME issued and xmailnb installed."""

    action: str
    time: str
    leaf_sha256: str
    not_after: str
    names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "time": self.time, "leaf_sha256": self.leaf_sha256,
                "not_after": self.not_after, "names": list(self.names)}

    @classmethod
    def from_json(cls, doc: Any) -> AcmeSuccess | None:
        if not isinstance(doc, dict):
            return None
        names = doc.get("names")
        return cls(action=_text(doc, "action") or "", time=_text(doc, "time") or "",
                   leaf_sha256=_text(doc, "leaf_sha256") or "", not_after=_text(doc, "not_after") or "",
                   names=tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else ())


@dataclass(frozen=True)
class AcmeStatus:
    """``sslconf/acme/status.json``: the last attempt, the last success, the
    fingerprints of the certificates ACME issued here (newest first) and
    the renewal's ``--days``.  A field never set is left out of the file."""

    last_attempt: AcmeAttempt | None = None
    last_success: AcmeSuccess | None = None
    issued: tuple[str, ...] = ()
    renew_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.last_attempt is not None:
            doc["last_attempt"] = self.last_attempt.to_json()
        if self.last_success is not None:
            doc["last_success"] = self.last_success.to_json()
        if self.issued:
            doc["issued"] = list(self.issued)
        if self.renew_days is not None:
            doc["renew_days"] = self.renew_days
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> AcmeStatus:
        """The status in *doc*; what is missing or of the wrong type is left at its default."""
        if not isinstance(doc, dict):
            return cls()
        issued, days = doc.get("issued"), doc.get("renew_days")
        return cls(last_attempt=AcmeAttempt.from_json(doc.get("last_attempt")),
                   last_success=AcmeSuccess.from_json(doc.get("last_success")),
                   issued=tuple(f for f in issued if isinstance(f, str)) if isinstance(issued, list) else (),
                   renew_days=days if isinstance(days, int) and not isinstance(days, bool) else None)


def load_status(mr: MailRoot) -> AcmeStatus:
    """Outcome of the last attempt and the last success (all fields unset when none)."""
    return AcmeStatus.from_json(_read_json(mr, REL_ACME_STATUS))


def update_status(mr: MailRoot, edit: Callable[[AcmeStatus], AcmeStatus], details: Mapping[str, Any]) -> None:
    """Read status.json under the store's lock, let *edit* make the new
    status from it, write that back: a renewal and a dashboard recording at
    the same moment both count."""
    with Store(mr).transaction(Action.ACME, details) as tx:
        status = AcmeStatus.from_json(json_doc(tx.read(REL_ACME_STATUS), REL_ACME_STATUS))
        tx.write(REL_ACME_STATUS, dump_json(edit(status).to_json()))


def parse_dns_server(value: str) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT`` as ``(host, port)`` (port 53 by default).

    Raises:
        UsageError: not an address with an optional port (field ``dns_server``).
    """
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _dns_port(rest[1:], value)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _dns_port(p, value)
    if not host:
        raise UsageError(Msg.of("acme.settings.dns_server", value=value),
                         Msg.of("acme.settings.dns_server.fix"), field="dns_server")
    return host, port


def _dns_port(text: str, value: str) -> int:
    try:
        port = int(text)
        if 1 <= port <= 65535:
            return port
    except ValueError:
        pass
    raise UsageError(Msg.of("acme.settings.dns_server", value=value),
                     Msg.of("acme.settings.dns_server.fix"), field="dns_server")
