"""What a user does to a MailRoot: create a CSR, install, change settings, roll back.

Each action validates everything first and only then hands complete new file
contents to :class:`~xmailnb.mailroot.store.Store`, the one place that writes.  The
command line and the widgets both call these functions, so they refuse the
same inputs with the same messages.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..checks.installed import anchor_sets
from ..files import FileTooLarge, NotRegularFile, read_regular, sha256_hex
from ..mailroot.servertab import (
    ServerTab,
    check_name,
    mail_hostname_of,
    validate_setting,
)
from ..pki import certfiles, keys
from ..pki import chain as chainmod
from .. import boundedjson, clock
from ..errors import InputError, XmailnbError
from ..i18n import Msg
from ..mailroot.layout import MailRoot
from ..mailroot.store import Action, ArchiveEntry, Store
from ..pki import csr as csrmod
from ..pki.csr import normalize_hostname_option

__all__ = [
    "Upload",
    "CsrResult",
    "InstallPlan",
    "create_csr",
    "RenewalKey",
    "renewal_key",
    "plan_install",
    "apply_install",
    "change_settings",
    "rollback",
    "FileEffect",
    "RollbackEffects",
    "rollback_preview",
    "rollback_outcome",
    "rollback_choices",
    "entry_what",
    "entry_time",
    "pending_csr_exists",
    "pending_form_values",
    "PendingMeta",
    "read_pending_meta",
    "CHECKLIST",
    "read_checklist",
    "tick_checklist",
]


@dataclass(frozen=True)
class Upload:
    """Bytes the user handed over, and the name to call them by in messages."""

    data: bytes
    name: str

    @classmethod
    def from_path(cls, path: str, limit: int | None = None) -> "Upload":
        """The file at *path*, read as :func:`read_user_file` does."""
        return cls(read_user_file(path, limit), str(path))


def read_user_file(path: str, limit: int | None = None, *, field: str | None = None) -> bytes:
    """A file the user names (``--cert``, ``--passphrase-file``, ...): only a
    regular file, at most *limit* bytes (default
    :data:`xmailnb.pki.certfiles.MAX_INPUT_BYTES`), counted while reading.

    ``/dev/zero``, a FIFO or a folder is refused at once, never read.

    Raises:
        InputError: ``actions.not_regular`` (naming the kind),
            ``certfiles.too_large`` or ``actions.unreadable``.
    """
    name = str(path)
    limit = certfiles.MAX_INPUT_BYTES if limit is None else limit
    try:
        return read_regular(path, limit)
    except FileTooLarge:
        try:
            size: int | str = os.stat(path).st_size
        except OSError:
            size = f"> {limit}"
        raise certfiles.too_large(name, size, field=field, limit=limit) from None
    except NotRegularFile as exc:
        raise InputError.of("actions.not_regular", "actions.not_regular.fix", field=field,
                            name=name, kind=Msg.of(f"mailroot.kind.{exc.kind}")) from None
    except OSError as exc:
        raise InputError.of("actions.unreadable", "actions.unreadable.fix", field=field,
                            name=name, reason=exc.strerror or str(exc)) from None



def _with_field(exc: XmailnbError, name: str) -> XmailnbError:
    if exc.field is None:
        exc.field = name
    return exc


# -- CSR -----------------------------------------------------------------------

@dataclass
class CsrResult:
    csr: x509.CertificateSigningRequest
    pem: bytes
    description: dict[str, Any]
    entry: ArchiveEntry | None
    replaced_pending: bool
    #: made from the installed server.key (a renewal that keeps the key)
    reused_key: bool = False


def pending_csr_exists(mr: MailRoot) -> bool:
    return mr.pending_csr.exists() or mr.pending_key.exists()


@dataclass(frozen=True)
class RenewalKey:
    """The installed server.key, checked for a renewal that keeps it.

    Attributes:
        key: the private key.
        pem: server.key exactly as it is on disk (copied to sslconf/ as is).
        summary: e.g. ``"RSA 2048"``.
    """

    key: Any
    pem: bytes
    summary: str


def renewal_key(mr: MailRoot) -> RenewalKey:
    """The installed server.key, if a new CSR may be made from it.

    A renewal that keeps the key lets the later install replace only
    server.cert: XMail reads server.cert and server.key as two files on
    every connection, so replacing both can pair a new certificate with the
    old key for a connection that arrives in between.

    Raises:
        InputError: (``field="renew"``) no server.key, unreadable,
            encrypted (XMail cannot use it), not a key, too weak, no
            certificate installed, or the key does not belong to the
            installed server.cert.
    """
    def refuse(msg_key: str, /, **params: Any) -> InputError:
        return InputError(Msg(msg_key, params), Msg.of("csr.renew.fix"), field="renew")

    try:
        data = read_regular(mr.server_key, limit=certfiles.MAX_INPUT_BYTES)
    except FileNotFoundError:
        raise refuse("csr.renew.no_key", path=mr.rel_server_key) from None
    except OSError as exc:
        raise refuse("csr.renew.unreadable", path=mr.rel_server_key,
                     reason=exc.strerror or type(exc).__name__) from None
    if certfiles.is_encrypted_key_pem(data):
        raise refuse("csr.renew.encrypted", path=mr.rel_server_key)
    try:
        key = certfiles.private_key_from(data, name=mr.rel_server_key, field="renew")
    except XmailnbError as exc:
        raise InputError(exc.msg, Msg.of("csr.renew.fix"), field="renew") from None
    problem = keys.key_strength_problem(key)
    if problem is not None:
        raise InputError(problem, Msg.of("csr.renew.fix"), field="renew")
    try:
        certs = certfiles.certificates_from(read_regular(mr.server_cert, limit=certfiles.MAX_INPUT_BYTES),
                                            name=mr.rel_server_cert)
    except (OSError, XmailnbError):
        raise refuse("csr.renew.no_cert", path=mr.rel_server_cert) from None
    if not certs or not keys.public_key_matches(key, certs[0]):
        raise refuse("csr.renew.mismatch", key=mr.rel_server_key, cert=mr.rel_server_cert)
    return RenewalKey(key=key, pem=data, summary=keys.key_summary(key))


_SUBJECT_FIELDS = ("country", "state", "locality", "org", "unit", "cn", "email")


@dataclass(frozen=True)
class PendingMeta:
    """What :func:`create_csr` records beside the pending CSR
    (``sslconf/server.csr.json``): its memo, subject, names, key and
    fingerprints, and when it was made."""

    created: str | None = None
    memo: str = ""
    #: The subject's fields (:data:`_SUBJECT_FIELDS`); ``None`` for one left empty.
    subject: Mapping[str, str | None] = field(default_factory=dict)
    sans: tuple[str, ...] = ()
    key: str = ""
    #: ``new`` (a key made with the CSR) or ``installed`` (a renewal that keeps server.key).
    key_source: str = ""
    csr_sha256: str | None = None
    public_key_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object, in the order it is written."""
        return {"created": self.created, "memo": self.memo, "subject": dict(self.subject),
                "sans": list(self.sans), "key": self.key, "key_source": self.key_source,
                "csr_sha256": self.csr_sha256, "public_key_sha256": self.public_key_sha256}

    @classmethod
    def from_json(cls, doc: Any) -> PendingMeta | None:
        """The record in *doc*, keeping only values of the right type; ``None`` if *doc* is not an object."""
        if not isinstance(doc, dict):
            return None

        def text(name: str) -> str | None:
            value = doc.get(name)
            return value if isinstance(value, str) else None

        subject_in = doc.get("subject")
        subject = {name: value if isinstance(value := subject_in.get(name), str) else None
                   for name in _SUBJECT_FIELDS} if isinstance(subject_in, dict) else {}
        sans_in = doc.get("sans")
        sans = tuple(n for n in sans_in if isinstance(n, str)) if isinstance(sans_in, list) else ()
        return cls(created=text("created"), memo=text("memo") or "", subject=subject, sans=sans,
                   key=text("key") or "", key_source=text("key_source") or "", csr_sha256=text("csr_sha256"),
                   public_key_sha256=text("public_key_sha256"))


def create_csr(mr: MailRoot, request: Any, *, key: Any = None, reuse_key: bool = False) -> CsrResult:
    """Generate a key (unless *key* is given) and a CSR, and write both.

    Writes ``sslconf/server.key`` (0600), ``sslconf/server.csr`` and
    ``sslconf/server.csr.json`` (memo, subject, time); an existing pending
    pair is archived first.

    Args:
        key: use this private key instead of making one.
        reuse_key: renewal with the same key: the CSR is made from the
            installed server.key (see :func:`renewal_key`), which is copied
            unchanged to sslconf/server.key, so that installing the new
            certificate replaces only server.cert.  The request's key
            type and size are ignored then.

    Raises:
        InputError: the request is invalid, or (*reuse_key*) the installed
            key cannot be kept (``field="renew"``).
        BusyError: another writer holds the MailRoot.
    """
    key_pem: bytes | None = None
    if reuse_key:
        kept = renewal_key(mr)
        key, key_pem = kept.key, kept.pem
    elif key is None:
        key = keys.generate_private_key(request.key)
    built = csrmod.build_csr(request, key)
    pem = csrmod.csr_pem(built)
    description = csrmod.describe_csr(built)
    meta = PendingMeta(created=clock.now().isoformat(timespec="seconds"), memo=request.memo,
                       subject={k: description.get(k) for k in _SUBJECT_FIELDS},
                       sans=tuple(description["sans"]), key=description["key"],
                       key_source="installed" if reuse_key else "new", csr_sha256=description["sha256"],
                       public_key_sha256=description["public_key_sha256"])
    details = {"cn": request.cn, "sans": description["sans"], "key": description["key"],
               "key_source": meta.key_source,
               "csr_sha256": description["sha256"], "public_key_sha256": description["public_key_sha256"]}
    with Store(mr).transaction(Action.CSR, details) as tx:
        replaced = tx.read(mr.rel_pending_csr) is not None or tx.read(mr.rel_pending_key) is not None
        tx.write(mr.rel_pending_key, key_pem if key_pem is not None else keys.private_key_pem(key))
        tx.write(mr.rel_pending_csr, pem)
        tx.write(mr.rel_pending_meta,
                 (json.dumps(meta.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return CsrResult(csr=built, pem=pem, description=description, entry=tx.entry, replaced_pending=replaced,
                     reused_key=reuse_key)


def read_pending_meta(mr: MailRoot) -> PendingMeta | None:
    """The record beside the pending CSR; ``None`` when there is none or it cannot be read."""
    try:
        doc = boundedjson.loads(mr.read(mr.rel_pending_meta) or b"", name=mr.rel_pending_meta)
    except (OSError, ValueError):
        return None
    return PendingMeta.from_json(doc)


def pending_form_values(mr: MailRoot, *, hostname_fallback: bool = False) -> dict[str, str]:
    """The CSR form's values (names of :data:`xmailnb.csr.FIELDS`, as text)
    for the pending CSR: from the record written beside it, else from the
    CSR itself; ``{}`` when there is none.  A key size or curve the form
    does not offer (:data:`xmailnb.pki.keys.RSA_SIZES`, ``EC_CURVES``) is
    left out: the form's default stands for it.

    The one place that turns a pending CSR back into form values: the CSR
    step shows them, an ACME renewal asks again for the same subject.

    Args:
        hostname_fallback: without a pending common name, take server.tab's
            mail host name (SmtpServerDomain, else RootDomain) as ``cn``.
    """
    meta = read_pending_meta(mr)
    subject: Mapping[str, Any] = meta.subject if meta is not None else {}
    sans: list[Any] = list(meta.sans) if meta is not None else []
    key_text = meta.key if meta is not None else ""
    if not subject.get("cn"):
        try:
            data = mr.read(mr.rel_pending_csr)
            desc = csrmod.describe_csr(certfiles.csr_from(data, name=mr.rel_pending_csr)) if data else {}
        except (OSError, XmailnbError, ValueError):
            desc = {}
        subject = {k: desc.get(k) for k in _SUBJECT_FIELDS}
        sans, key_text = list(desc.get("sans") or []), str(desc.get("key") or "")
    values = {name: str(subject[name]) for name in _SUBJECT_FIELDS if isinstance(subject.get(name), str)
              and subject[name]}
    aliases = [n for n in sans if isinstance(n, str) and n != values.get("cn")]
    if aliases:
        values["aliases"] = " ".join(aliases)
    if meta is not None and meta.memo:
        values["memo"] = meta.memo
    kind, _, rest = key_text.partition(" ")
    if kind.lower() == "rsa" and rest.isdigit():
        values["keytype"] = "rsa"
        if int(rest) in keys.RSA_SIZES:
            values["keysize"] = rest
    elif kind.lower() == "ec" and rest:
        values["keytype"] = "ec"
        if rest in keys.EC_CURVES:
            values["curve"] = rest
    if hostname_fallback and not values.get("cn"):
        host = mail_hostname_of(mr)
        if host:
            values["cn"] = host
    return values


# -- install -------------------------------------------------------------------

@dataclass
class InstallPlan:
    """Everything an install would write, checked, before anything is written."""

    leaf: x509.Certificate
    intermediates: list[x509.Certificate]
    root: x509.Certificate | None
    key: PrivateKeyTypes
    key_source: str  # "given", "bundle", "pending", "installed"
    hostname: str | None
    hostname_source: str | None  # "option", "server.tab"
    ca_added: list[x509.Certificate]
    trust: chainmod.TrustResult
    chain: chainmod.ChainPlan
    warnings: list[Msg] = field(default_factory=list)
    left_out: list[x509.Certificate] = field(default_factory=list)
    server_cert: bytes = b""
    server_key: bytes = b""
    certs_pem: bytes | None = None

    def changes(self, mr: MailRoot) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {mr.rel_server_cert: self.server_cert,
                                        mr.rel_server_key: self.server_key}
        if self.certs_pem is not None:
            out[mr.rel_certs_pem] = self.certs_pem
        return out

    def preview(self) -> list[Msg]:
        """What was recognised and what will be written, one line each, in
        order (no key material); the command line and the page both show
        these lines, then :attr:`warnings`."""
        leaf = self.leaf
        lines = [
            Msg.of("preview.leaf", subject=chainmod.display_name(leaf.subject),
                   names=", ".join(chainmod.hostnames(leaf)) or "-"),
            Msg.of("preview.issuer", issuer=chainmod.display_name(leaf.issuer)),
            Msg.of("preview.validity", not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc),
        ]
        lines += [Msg.of("preview.intermediate", n=n, subject=chainmod.display_name(c.subject))
                  for n, c in enumerate(self.intermediates, 1)]
        if self.root is not None:
            lines.append(Msg.of("preview.root", subject=chainmod.display_name(self.root.subject)))
        lines += [Msg.of("preview.left_out", subject=chainmod.display_name(c.subject)) for c in self.left_out]
        lines.append(Msg.of("preview.key", type=keys.key_summary(self.key),
                            source=Msg.of(f"preview.key_source.{self.key_source}")))
        if self.hostname:
            lines.append(Msg.of("preview.hostname", hostname=self.hostname))
        if self.trust.trusted and self.trust.anchor:
            lines.append(Msg.of("preview.trusted", anchor=Msg.of(f"preview.anchor.{self.trust.anchor}")))
        lines += [Msg.of("preview.ca_added", subject=chainmod.display_name(c.subject)) for c in self.ca_added]
        lines.append(Msg.of("preview.written", count=len(self.intermediates)))
        return lines

    def describe(self, lang: str) -> dict[str, Any]:
        """The preview: what was recognised and what will be written (no key material)."""
        return {
            "leaf": chainmod.describe(self.leaf, lang),
            "intermediates": [chainmod.describe(c, lang) for c in self.intermediates],
            "root_left_out": chainmod.describe(self.root, lang) if self.root is not None else None,
            "left_out": [chainmod.describe(c, lang) for c in self.left_out],
            "key": {"source": self.key_source, "type": keys.key_summary(self.key),
                    "public_key_sha256": keys.public_key_fingerprint(self.key)},
            "hostname": self.hostname,
            "chain_complete": bool(self.chain.complete),
            "trusted": bool(self.trust.trusted),
            "trust_anchor": self.trust.anchor,
            "ca_added": [chainmod.describe(c, lang) for c in self.ca_added],
            "warnings": [w.render(lang) for w in self.warnings],
        }


def _load_certs(upload: Upload, field_name: str, passphrase: bytes | None) -> certfiles.Material:
    try:
        material = certfiles.load_material(upload.data, name=upload.name, passphrase=passphrase,
                                           field=field_name)
        # No certificate: say precisely what the file holds instead.
        certfiles.require_certificates(material, field_name)
    except XmailnbError as exc:
        _with_field(exc, field_name)
        raise
    return material


def _read_certs_pem(mr: MailRoot) -> tuple[bytes | None, list[x509.Certificate]]:
    try:
        data = mr.read(mr.rel_certs_pem)
    except OSError:
        return None, []
    return data, _certs_in(mr, data)


def _certs_in(mr: MailRoot, data: bytes | None) -> list[x509.Certificate]:
    if data is None:
        return []
    try:
        return certfiles.load_material(data, name=mr.rel_certs_pem,
                                       max_certificates=certfiles.MAX_BUNDLE_CERTIFICATES).certificates
    except XmailnbError:
        return []


def merge_certs_pem(mr: MailRoot, base: bytes | None,
                    ca_certs: Sequence[x509.Certificate]) -> tuple[bytes | None, list[x509.Certificate]]:
    """certs.pem with the CA certificates it lacks appended (every other
    byte kept), and those added; ``(None, [])`` when none is missing."""
    known = {certfiles.cert_fingerprint(c) for c in _certs_in(mr, base)}
    added = [c for c in chainmod.unique(list(ca_certs)) if certfiles.cert_fingerprint(c) not in known]
    if not added:
        return None, []
    text = base or b""
    if text and not text.endswith(b"\n"):
        text += b"\r\n" if b"\r\n" in text else b"\n"
    return text + certfiles.certs_to_pem(added), added


def _read_key(mr: MailRoot, rel: str) -> Any:
    try:
        data = mr.read(rel)
        return certfiles.private_key_from(data, name=rel) if data is not None else None
    except (OSError, XmailnbError):
        return None


def _choose_key(mr: MailRoot, leaf: x509.Certificate, key_upload: Upload | None,
                bundle_keys: Sequence[PrivateKeyTypes], passphrase: bytes | None) -> tuple[PrivateKeyTypes, str]:
    if key_upload is not None:
        try:
            key = certfiles.private_key_from(key_upload.data, name=key_upload.name,
                                             passphrase=passphrase, field="key")
        except XmailnbError as exc:
            _with_field(exc, "key")
            raise
        if not keys.public_key_matches(key, leaf):
            raise InputError.of("actions.key.mismatch", "actions.key.mismatch.fix", field="key",
                                name=key_upload.name, cn=_cn(leaf))
        return key, "given"
    for key in bundle_keys:
        if keys.public_key_matches(key, leaf):
            return key, "bundle"
    for rel, source in ((mr.rel_pending_key, "pending"), (mr.rel_server_key, "installed")):
        key = _read_key(mr, rel)
        if key is not None and keys.public_key_matches(key, leaf):
            return key, source
    raise InputError.of("actions.key.none", "actions.key.none.fix", field="key", cn=_cn(leaf))


def _cn(cert: x509.Certificate) -> str:
    names = chainmod.hostnames(cert)
    return names[0] if names else chainmod.name_text(cert.subject, "en")


# Reasons with an install message of their own (a whole sentence naming the
# certificate); every other reason is said as "clients would reject it: ...".
_INSTALL_KEYS = {
    chainmod.Reason.EXPIRED: "actions.cert.expired",
    chainmod.Reason.NOT_YET_VALID: "actions.cert.not_yet_valid",
    chainmod.Reason.WEAK_SIGNATURE: "actions.cert.weak_signature",
    chainmod.Reason.NO_SAN: "actions.cert.no_san",
}


def _refusal(problem: chainmod.ChainProblem, fields: Mapping[str, str], hostname: str | None,
             hostname_source: str | None, leaf: x509.Certificate) -> InputError:
    """The install refusal for *problem*, beside the input at fault."""
    field_name = "cert"
    if problem.cert is not None:
        field_name = fields.get(certfiles.cert_fingerprint(problem.cert), "chain")
    if problem.reason is chainmod.Reason.HOSTNAME and hostname:
        named: dict[str, Any] = {"hostname": hostname, "source": hostname_source,
                                 "names": ", ".join(chainmod.hostnames(leaf)) or "-"}
        return InputError(Msg("actions.hostname.not_covered", named), Msg("actions.hostname.not_covered.fix", named),
                          field="hostname" if hostname_source == "option" else "cert")
    params: dict[str, Any] = dict(problem.msg.params)
    if problem.reason in (chainmod.Reason.EXPIRED, chainmod.Reason.NOT_YET_VALID) and problem.cert is not None:
        cert = problem.cert
        params["date"] = (cert.not_valid_after_utc if problem.reason is chainmod.Reason.EXPIRED
                          else cert.not_valid_before_utc)
    key = _INSTALL_KEYS.get(problem.reason)
    if key is not None:
        return InputError(Msg(key, params), problem.fix, field=field_name)
    return InputError(Msg.of("actions.chain.refused", reason=problem.msg), problem.fix, field=field_name)


def plan_install(
    mr: MailRoot,
    cert: Upload,
    chain: Sequence[Upload] = (),
    *,
    key: Upload | None = None,
    ca: Upload | None = None,
    passphrase: bytes | None = None,
    hostname: str | None = None,
    allow_incomplete: bool = False,
    at: dt.datetime | None = None,
    cancel: threading.Event | None = None,
) -> InstallPlan:
    """Check everything an install needs and compute the files it would write.

    Nothing is written.  The server certificate may come with its chain and
    key in one bundle (PEM, PKCS#7, PKCS#12) or in separate files, in any
    order, with extra certificates (left out, with a note).  The verdict is
    :func:`xmailnb.pki.chain.judge`'s, the one diagnose and the dashboard use:
    when the chain reaches a known anchor (a public root, the CA given with
    *ca*, certs.pem, the practice root) and a client would reject it, the
    install is refused with the reason; when no anchor is known, it is
    installed with a warning.

    The causes are ranked as a user must hear them, the same for the page
    and the command line: a file that cannot be read, then the server
    certificate (which one, and whether a key for it is at hand: a
    certificate made for another key cannot be used at all), then what
    clients would refuse, then what is missing from the chain, naming a
    file given as the intermediate that is not the issuer.

    The work is bounded (:func:`xmailnb.pki.chain.work_budget`): at most
    :data:`~xmailnb.pki.certfiles.MAX_CERTIFICATES` certificates in all,
    and a set *cancel* stops it at the next signature check.

    Raises:
        InputError: with ``field`` naming the input at fault (``cert``,
            ``chain``, ``key``, ``ca``, ``hostname``).
        xmailnb.pki.chain.Cancelled: *cancel* was set.
    """
    with chainmod.work_budget(cancel=cancel):
        return _plan_install(mr, cert, chain, key=key, ca=ca, passphrase=passphrase, hostname=hostname,
                             allow_incomplete=allow_incomplete, at=at)


def _plan_install(mr: MailRoot, cert: Upload, chain: Sequence[Upload], *, key: Upload | None,
                  ca: Upload | None, passphrase: bytes | None, hostname: str | None,
                  allow_incomplete: bool, at: dt.datetime | None) -> InstallPlan:
    at = at or clock.now()
    fields: dict[str, str] = {}
    names: dict[str, str] = {}
    notes: list[Msg] = []
    cert_material = _load_certs(cert, "cert", passphrase)
    notes += cert_material.notes
    chain_certs: list[x509.Certificate] = []
    bundle_keys = list(cert_material.keys)
    for upload in chain:
        m = _load_certs(upload, "chain", passphrase)
        for c in m.certificates:
            names.setdefault(certfiles.cert_fingerprint(c), upload.name)
        chain_certs.extend(m.certificates)
        _check_total(len(cert_material.certificates) + len(chain_certs))
        bundle_keys.extend(m.keys)
        notes += m.notes
    ca_certs: list[x509.Certificate] = []
    if ca is not None:
        ca_material = _load_certs(ca, "ca", passphrase)
        ca_certs = ca_material.certificates
        notes += ca_material.notes
        not_ca = [c for c in ca_certs if not chainmod.is_ca(c)]
        if not_ca:
            raise InputError.of("actions.ca.not_ca", "actions.ca.not_ca.fix", field="ca",
                                name=ca.name, subject=chainmod.display_name(not_ca[0].subject))
    for c in ca_certs:
        fields.setdefault(certfiles.cert_fingerprint(c), "ca")
    for c in chain_certs:
        fields.setdefault(certfiles.cert_fingerprint(c), "chain")
    for c in cert_material.certificates:
        fields[certfiles.cert_fingerprint(c)] = "cert"
    _check_total(len(cert_material.certificates) + len(chain_certs) + len(ca_certs))

    # The leaf must come from the file given as the server certificate: a CA
    # certificate there, or a server certificate among the intermediates, is
    # the classic mix-up this refuses.
    try:
        leaf = chainmod.pick_leaf(cert_material.certificates)
    except XmailnbError as exc:
        _with_field(exc, "cert")
        raise
    # A certificate that signs another one given is acting as a CA (a
    # defective one is the verdict's business), not a second server's.
    pool = cert_material.certificates + chain_certs
    other = next((c for c in chain_certs if not chainmod.is_ca(c) and certfiles.cert_fingerprint(c) != certfiles.cert_fingerprint(leaf)
                  and not any(o is not c and chainmod.issued_by(o, c) for o in pool)), None)
    if other is not None:
        raise InputError.of("actions.chain.leaf_given", "actions.chain.leaf_given.fix", field="chain",
                            subject=chainmod.display_name(other.subject))

    # A certificate made for another key cannot be used at all, whatever
    # else is right or missing: said first.  (A key nobody can read is the
    # verdict's to name.)
    chosen = _choose_key(mr, leaf, key, bundle_keys, passphrase) if _readable_key(leaf) else None

    problem = keys.key_strength_problem(leaf.public_key()) if _readable_key(leaf) else None
    if problem is not None:
        raise InputError(problem, Msg.of("actions.key.weak.fix"), field="cert")

    hostname_source = None
    if hostname:
        hostname, hostname_source = normalize_hostname_option(hostname), "option"
    else:
        hostname = mail_hostname_of(mr)
        hostname_source = "server.tab" if hostname else None

    certs_pem_bytes, certs_pem_certs = _read_certs_pem(mr)
    anchors = anchor_sets(mr, certs_pem_certs, ca_certs)
    given = chainmod.unique(cert_material.certificates + chain_certs)
    verdict = chainmod.judge(leaf, given, anchors=anchors, hostname=hostname, at=at,
                             required=[chainmod.Anchor.GIVEN] if ca_certs else [])
    warnings: list[Msg] = list(notes)
    if verdict.problem is not None and verdict.anchor_known:
        raise _refusal(verdict.problem, fields, hostname, hostname_source, leaf)

    served = verdict.served
    complete = verdict.trusted or verdict.self_signed or (len(served) > 1 and chainmod.is_ca(served[-1])) \
        or verdict.root is not None
    if not complete:
        top = served[-1]
        wrong = next((c for c in verdict.left_out if c.subject == top.issuer), None)
        if wrong is not None:
            raise InputError.of("chain.wrong_issuer", "chain.wrong_issuer.fix", field="chain",
                                subject=chainmod.display_name(wrong.subject),
                                child=chainmod.display_name(top.subject))
        issuer = chainmod.display_name(top.issuer)
        misgiven = _misgiven(verdict.left_out, names, issuer)
        if not allow_incomplete:
            if misgiven is not None:
                raise misgiven
            raise InputError.of("actions.chain.incomplete", "actions.chain.incomplete.fix", field="chain",
                                issuer=issuer)
        if misgiven is not None:
            warnings.append(misgiven.msg)
        warnings.append(Msg.of("actions.chain.incomplete.allowed", issuer=issuer))

    if not hostname:
        warnings.append(Msg.of("actions.hostname.unknown"))
    if not verdict.trusted:
        warnings.append(Msg.of("actions.trust.private"))
    elif verdict.anchor == chainmod.Anchor.PRACTICE:
        warnings.append(Msg.of("actions.trust.practice"))
    for w in verdict.warnings:
        warnings.append(Msg.of("actions.rule", rule=w.msg))
    root = verdict.root
    left_out = [c for c in verdict.left_out if root is None or certfiles.cert_fingerprint(c) != certfiles.cert_fingerprint(root)]
    for c in left_out:
        why = "expired" if c.not_valid_after_utc < at else "unused"
        warnings.append(Msg.of(f"actions.chain.left_out.{why}", subject=chainmod.display_name(c.subject)))

    chosen_key, key_source = chosen or _choose_key(mr, leaf, key, bundle_keys, passphrase)
    key_problem = keys.key_strength_problem(chosen_key)
    if key_problem is not None:
        raise InputError(key_problem, Msg.of("actions.key.weak.fix"), field="key")

    trust = chainmod.TrustResult(verdict.trusted, verdict.anchor, verdict.self_signed,
                                 verdict.problem.msg if verdict.problem else None, verdict.problem)
    plan = chainmod.ChainPlan(leaf=leaf, intermediates=list(served[1:]), root=root, unrelated=left_out,
                              complete=complete, anchor=verdict.anchor)

    # A preview only: the install recomputes it from certs.pem as it is
    # under the lock, so a CA another admin added meanwhile is kept.
    new_certs_pem, added = merge_certs_pem(mr, certs_pem_bytes, ca_certs)

    return InstallPlan(
        leaf=leaf, intermediates=list(served[1:]), root=root,
        key=chosen_key, key_source=key_source, hostname=hostname, hostname_source=hostname_source,
        ca_added=added, trust=trust, chain=plan, warnings=warnings, left_out=left_out,
        server_cert=certfiles.certs_to_pem(served),
        server_key=keys.private_key_pem(chosen_key),
        certs_pem=new_certs_pem,
    )


def _check_total(total: int) -> None:
    """Refuse more certificates in one install than one file may hold, as
    soon as the files read so far hold them (before reading the others)."""
    if total > certfiles.MAX_CERTIFICATES:
        raise InputError.of("actions.too_many", "actions.too_many.fix", field="chain",
                            found=total, limit=certfiles.MAX_CERTIFICATES)


def _misgiven(left_out: Sequence[x509.Certificate], names: Mapping[str, str],
              issuer: str | Msg) -> InputError | None:
    """What a file given as the intermediate is instead, when the chain
    stops short of it: the root CA itself, or a CA that did not issue the
    server certificate; the message also names the intermediate still
    missing (*issuer*)."""
    for c in left_out:
        name = names.get(certfiles.cert_fingerprint(c))
        if name is None:
            continue
        subject = chainmod.display_name(c.subject)
        key = "actions.chain.is_root" if chainmod.is_ca(c) and chainmod.is_self_signed(c) \
            else "actions.chain.not_issuer"
        params = {"name": name, "subject": subject, "issuer": issuer}
        return InputError(Msg(key, params), Msg(key + ".fix", params), field="chain")
    return None


def _readable_key(cert: x509.Certificate) -> bool:
    try:
        cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def leaf_issuer(plan: InstallPlan) -> x509.Name:
    last = plan.intermediates[-1] if plan.intermediates else plan.leaf
    return last.issuer


def apply_install(mr: MailRoot, plan: InstallPlan) -> ArchiveEntry | None:
    """Write the planned files through the store (archive first, journaled,
    atomic).  certs.pem is read again under the lock and only the CA
    certificates it still lacks are appended.

    server.key is left alone when it already holds the planned key (a
    renewal that kept the key), whatever its PEM form: XMail reads the two
    files separately on every connection, and replacing only server.cert
    leaves no moment at which a connection could pair the new certificate
    with another key.
    """
    details = {
        "leaf_sha256": certfiles.cert_fingerprint(plan.leaf),
        "intermediates_sha256": [certfiles.cert_fingerprint(c) for c in plan.intermediates],
        "subject": plan.leaf.subject.rfc4514_string(),
        "not_after": plan.leaf.not_valid_after_utc.isoformat(),
        "key_source": plan.key_source,
        "public_key_sha256": keys.public_key_fingerprint(plan.key),
    }
    with Store(mr).transaction(Action.INSTALL, details) as tx:
        tx.write(mr.rel_server_cert, plan.server_cert)
        if not _holds_key(tx.read(mr.rel_server_key), plan.key):
            tx.write(mr.rel_server_key, plan.server_key)
        added: list[x509.Certificate] = []
        if plan.ca_added:
            new_pem, added = merge_certs_pem(mr, tx.read(mr.rel_certs_pem), plan.ca_added)
            if new_pem is not None:
                tx.write(mr.rel_certs_pem, new_pem)
        tx.details["ca_added_sha256"] = [certfiles.cert_fingerprint(c) for c in added]
    return tx.entry


def _holds_key(data: bytes | None, key: Any) -> bool:
    """*data* (server.key as read under the lock) holds exactly *key*,
    unencrypted, in any PEM form XMail reads."""
    if data is None or certfiles.is_encrypted_key_pem(data):
        return False
    try:
        installed = certfiles.private_key_from(data, name=MailRoot.rel_server_key)
        return keys.private_key_pem(installed) == keys.private_key_pem(key)
    except (XmailnbError, ValueError, TypeError):
        return False


# -- settings and rollback -----------------------------------------------------

def change_settings(mr: MailRoot, assignments: Mapping[str, str | None]) -> ArchiveEntry | None:
    """Set server.tab TLS variables; only the changed lines differ afterwards.

    A value of ``None`` removes the setting (its line is commented out), so
    XMail's default applies again: for ``SmtpNoTLSAuths`` "not set" and "set
    to the empty value" mean different things.

    Raises:
        InputError: an unknown name or an invalid value (nothing written).
    """
    normalised: dict[str, str | None] = {}
    for name, value in assignments.items():
        try:
            if value is None:
                check_name(name)
                normalised[name] = None
            else:
                normalised[name] = validate_setting(name, value)
        except XmailnbError as exc:
            _with_field(exc, name)
            raise
    # Read and edited under the lock: two admins changing different
    # variables at the same moment both keep their change.
    with Store(mr).transaction(Action.SETTINGS, {"set": normalised}) as tx:
        data = tx.read(mr.rel_server_tab)
        if data is None:
            raise InputError.of("actions.unreadable", "actions.unreadable.fix", name=mr.rel_server_tab,
                                reason=os.strerror(errno.ENOENT))
        tab = ServerTab.parse(data)
        tx.details["before"] = {name: tab.get(name) for name in normalised}
        for name, new in normalised.items():
            if new is None:
                tab.unset(name)
            else:
                tab.set(name, new)
        tx.write(mr.rel_server_tab, tab.to_bytes())
    return tx.entry


def rollback(mr: MailRoot, entry_id: str | None = None) -> tuple[ArchiveEntry, ArchiveEntry | None]:
    """Restore an archived state (default: the newest change to the server's
    files), chosen and read under the lock; see :meth:`Store.rollback`."""
    return Store(mr).rollback(entry_id)


# -- what a rollback does, in words ----------------------------------------------

class FileEffect(StrEnum):
    """What restoring an archived state does to one file."""

    REMOVE = "remove"    #: the file did not exist then: it is removed
    REPLACE = "replace"  #: another version existed then: it comes back
    RESTORE = "restore"  #: the file is gone now: the archived one is put back
    KEEP = "keep"        #: already as it was then


@dataclass(frozen=True)
class RollbackEffects:
    """The files a rollback changes (or changed) and what that means.

    Attributes:
        entry: the archived state restored.
        files: relative name -> effect, for every file the state names.
    """

    entry: ArchiveEntry
    files: Mapping[str, FileEffect]

    def names(self, effect: FileEffect) -> list[str]:
        return sorted(n for n, e in self.files.items() if e is effect)

    @property
    def changes_anything(self) -> bool:
        return any(e is not FileEffect.KEEP for e in self.files.values())

    def _touches(self, names: Sequence[str], *effects: FileEffect) -> bool:
        return any(self.files.get(n) in effects for n in names)

    def file_lines(self, *, done: bool = False) -> list[Msg]:
        """One line per kind of change: "To be removed: server.cert, server.key"."""
        prefix = "rollback." + ("done" if done else "file")
        return [Msg.of(f"{prefix}.{effect.value}", files=names)
                for effect in (FileEffect.REMOVE, FileEffect.REPLACE, FileEffect.RESTORE)
                if (names := self.names(effect))]

    def consequences(self, *, done: bool = False) -> list[Msg]:
        """What the change means for the mail server, most important first."""
        pair = (MailRoot.rel_server_cert, MailRoot.rel_server_key)
        pending = (MailRoot.rel_pending_key, MailRoot.rel_pending_csr)
        out: list[Msg] = []
        if self._touches(pair, FileEffect.REMOVE):
            out.append(Msg.of("rollback.effect.tls_stopped" if done else "rollback.effect.tls_stops"))
        elif self._touches(pair, FileEffect.REPLACE, FileEffect.RESTORE):
            out.append(Msg.of("rollback.effect.cert_back"))
        if self._touches(pending, FileEffect.REMOVE):
            out.append(Msg.of("rollback.effect.pending_gone"))
        elif self._touches(pending, FileEffect.REPLACE, FileEffect.RESTORE):
            out.append(Msg.of("rollback.effect.pending_back"))
        if self._touches((MailRoot.rel_server_tab,), FileEffect.REPLACE, FileEffect.RESTORE):
            out.append(Msg.of("rollback.effect.settings"))
        return out

    def question(self) -> Msg:
        if self.entry.action == Action.ROLLBACK:
            # Not "roll back to before a rollback": say it undoes that rollback.
            return Msg.of("rollback.question.undo", time=entry_time(self.entry))
        return Msg.of("rollback.question", what=entry_what(self.entry), time=entry_time(self.entry))

    def outcome(self) -> Msg:
        if self.entry.action == Action.ROLLBACK and self.changes_anything:
            return Msg.of("rollback.done.undo", time=entry_time(self.entry))
        key = "rollback.done" if self.changes_anything else "rollback.unchanged"
        return Msg.of(key, what=entry_what(self.entry), time=entry_time(self.entry))


def _effects(entry: ArchiveEntry, before: Mapping[str, str | None]) -> RollbackEffects:
    """Effects of making the files as *entry* archived them, from *before*
    (relative name -> SHA-256 or ``None`` for a missing file)."""
    out: dict[str, FileEffect] = {}
    for rel, then in entry.files.items():
        now = before.get(rel)
        if then == now:
            out[rel] = FileEffect.KEEP
        elif then is None:
            out[rel] = FileEffect.REMOVE
        elif now is None:
            out[rel] = FileEffect.RESTORE
        else:
            out[rel] = FileEffect.REPLACE
    return RollbackEffects(entry, out)


def rollback_preview(mr: MailRoot, entry: ArchiveEntry) -> RollbackEffects:
    """What rolling back to *entry* would do to the files as they are now
    (nothing is changed; the rollback itself decides again under the lock)."""
    current: dict[str, str | None] = {}
    for rel in entry.files:
        try:
            current[rel] = sha256_hex(read_regular(mr.file(rel), 64 * 1024 * 1024))
        except FileNotFoundError:
            current[rel] = None
        except OSError:
            current[rel] = "unreadable"
    return _effects(entry, current)


def rollback_outcome(target: ArchiveEntry, new: ArchiveEntry | None) -> RollbackEffects:
    """What the rollback that restored *target* did: *new* archived the files
    as they were just before it (``None``: nothing needed changing)."""
    if new is None:
        return RollbackEffects(target, {rel: FileEffect.KEEP for rel in target.files})
    return _effects(target, new.files)


def entry_time(entry: ArchiveEntry) -> dt.datetime | str:
    """When *entry* was archived (shown in local time), or its raw text."""
    try:
        when = dt.datetime.fromisoformat(entry.time)
    except ValueError:
        return entry.time
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _subject_name(details: Mapping[str, Any], *keys_: str) -> str | Msg | None:
    for key in keys_:
        value = details.get(key)
        if not isinstance(value, str) or not value:
            continue
        try:
            name = x509.Name.from_rfc4514_string(value)
        except ValueError:
            return value
        cns = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(cns[0].value) if cns else chainmod.display_name(name)
    return None


def entry_what(entry: ArchiveEntry) -> Msg:
    """The change *entry* was archived before, in words ("installing the
    certificate for mail.example.jp")."""
    details = entry.details if isinstance(entry.details, Mapping) else {}
    if entry.action in (Action.INSTALL, Action.CSR):
        name = _subject_name(details, "subject") if entry.action == Action.INSTALL else details.get("cn")
        if isinstance(name, str) and name:
            return Msg.of(f"rollback.what.{entry.action}", name=name)
        return Msg.of(f"rollback.what.{entry.action}.unnamed")
    if entry.action == Action.SETTINGS:
        changed = details.get("set")
        names = sorted(changed) if isinstance(changed, Mapping) else []
        if names:
            return Msg.of("rollback.what.settings", names=names)
    if entry.action in (Action.ROLLBACK, Action.PRACTICE_CA):
        return Msg.of(f"rollback.what.{entry.action}")
    return Msg.of("rollback.what.other", action=entry.action)


def rollback_choices(entries: Sequence[ArchiveEntry]) -> tuple[list[tuple[Msg, ArchiveEntry]], str | None]:
    """Labels for a list of archived states (newest first) and the one to
    offer first: undoing the newest rollback when that is the newest change,
    else undoing the newest install, else the newest change.

    Labels are distinct (a number is added where two would read alike) and
    name no archive id: a time in local time and the change it preceded.
    """
    # Right after a rollback, undoing it comes first (the install it undid is
    # already undone).
    newest = entries[0] if entries else None
    default = (newest.id if newest is not None and newest.action == Action.ROLLBACK
               else next((e.id for e in entries if e.action == Action.INSTALL), newest.id if newest else None))
    seen: dict[tuple[str, str], int] = {}
    out: list[tuple[Msg, ArchiveEntry]] = []
    for entry in entries:
        what, when = entry_what(entry), entry_time(entry)
        if entry.id == default and entry.action == Action.INSTALL:
            label = Msg.of("rollback.label.undo_install", what=what, time=when)
        elif entry.id == default and entry.action == Action.ROLLBACK:
            label = Msg.of("rollback.label.undo_rollback", time=when)
        else:
            label = Msg.of("rollback.label", what=what, time=when)
        shown_as = (label.render("en"), label.render("ja"))
        n = seen[shown_as] = seen.get(shown_as, 0) + 1
        if n > 1:
            label = Msg.of("rollback.label.nth", label=label, n=n)
        out.append((label, entry))
    return out, default


# -- the CA checklist ----------------------------------------------------------

#: The items of the CA submission checklist, in order (texts ``ui.submit.item.<id>``).
CHECKLIST: tuple[str, ...] = ("choose", "send", "validate", "receive", "keep")


def _checklist_ticked(data: bytes | None) -> list[str]:
    try:
        doc = boundedjson.loads(data or b"", name="sslconf/checklist.json")
    except ValueError:
        return []
    ticked = doc.get("ticked") if isinstance(doc, dict) else None
    return [i for i in CHECKLIST if isinstance(ticked, list) and i in ticked]


def read_checklist(mr: MailRoot) -> list[str]:
    """The ticked checklist items (``sslconf/checklist.json``), in order."""
    try:
        return _checklist_ticked(mr.read(mr.rel_checklist))
    except OSError:
        return []


def tick_checklist(mr: MailRoot, item: str, ticked: bool) -> list[str]:
    """Tick (or untick) one checklist item; returns the items ticked now.

    Only *item* changes: the file is read and rewritten under the lock, so
    ticks made at the same moment on another page are kept.

    Raises:
        InputError: *item* is not a checklist item.
        BusyError, StoreError: as for every write.
    """
    if item not in CHECKLIST:
        raise InputError.of("actions.checklist.unknown", "actions.checklist.unknown.fix", item=str(item))
    with Store(mr).transaction(Action.CHECKLIST) as tx:
        before = set(_checklist_ticked(tx.read(mr.rel_checklist)))
        now = before | {item} if ticked else before - {item}
        result = [i for i in CHECKLIST if i in now]
        if now == before:
            return result
        doc = {"ticked": result, "updated": clock.now().isoformat(timespec="seconds")}
        tx.details["ticked"] = result
        tx.write(mr.rel_checklist, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return result
