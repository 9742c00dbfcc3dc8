"""What a user does to a MailRoot: create a CSR, install, change settings, roll back.

Each action validates everything first and only then hands complete new file
contents to :class:`~xmailnb.store.Store`, the one place that writes.  The
command line and the widgets both call these functions, so they refuse the
same inputs with the same messages.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from . import certfiles, chain as chainmod, keys
from . import clock
from .errors import InputError, XmailnbError
from .i18n import Msg
from .mailroot import MailRoot
from .store import ArchiveEntry, Store

__all__ = [
    "Upload",
    "CsrResult",
    "InstallPlan",
    "create_csr",
    "plan_install",
    "apply_install",
    "change_settings",
    "rollback",
    "pending_csr_exists",
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
    :data:`xmailnb.certfiles.MAX_INPUT_BYTES`), counted while reading.

    ``/dev/zero``, a FIFO or a folder is refused at once, never read.

    Raises:
        InputError: ``actions.not_regular`` (naming the kind),
            ``certfiles.too_large`` or ``actions.unreadable``.
    """
    from .fsread import FileTooLarge, NotRegularFile, read_regular

    name = str(path)
    limit = certfiles.MAX_INPUT_BYTES if limit is None else limit
    try:
        return read_regular(path, limit)
    except FileTooLarge:
        try:
            size: int | str = os.stat(path).st_size
        except OSError:
            size = f"> {limit}"
        raise InputError.of("certfiles.too_large", "certfiles.too_large.fix", field=field,
                            name=name, size=size, limit=limit) from None
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


def pending_csr_exists(mr: MailRoot) -> bool:
    return mr.pending_csr.exists() or mr.pending_key.exists()


def create_csr(mr: MailRoot, request: Any, *, key: Any = None) -> CsrResult:
    """Generate a key (unless *key* is given) and a CSR, and write both.

    Writes ``sslconf/server.key`` (0600), ``sslconf/server.csr`` and
    ``sslconf/server.csr.json`` (memo, subject, time); an existing pending
    pair is archived first.

    Raises:
        InputError: the request is invalid.
        BusyError: another writer holds the MailRoot.
    """
    from . import csr as csrmod

    if key is None:
        key = keys.generate_private_key(request.key)
    built = csrmod.build_csr(request, key)
    pem = csrmod.csr_pem(built)
    description = csrmod.describe_csr(built)
    meta = {
        "created": clock.now().isoformat(timespec="seconds"),
        "memo": request.memo,
        "subject": {k: description.get(k) for k in ("country", "state", "locality", "org", "unit", "cn", "email")},
        "sans": description["sans"],
        "key": description["key"],
        "csr_sha256": description["sha256"],
        "public_key_sha256": description["public_key_sha256"],
    }
    details = {"cn": request.cn, "sans": description["sans"], "key": description["key"],
               "csr_sha256": description["sha256"], "public_key_sha256": description["public_key_sha256"]}
    with Store(mr).transaction("csr", details) as tx:
        replaced = tx.read(mr.rel_pending_csr) is not None or tx.read(mr.rel_pending_key) is not None
        tx.write(mr.rel_pending_key, keys.private_key_pem(key))
        tx.write(mr.rel_pending_csr, pem)
        tx.write(mr.rel_pending_meta, (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return CsrResult(csr=built, pem=pem, description=description, entry=tx.entry, replaced_pending=replaced)


def read_pending_meta(mr: MailRoot) -> dict[str, Any]:
    try:
        doc = json.loads((mr.read(mr.rel_pending_meta) or b"").decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


# -- install -------------------------------------------------------------------

@dataclass
class InstallPlan:
    """Everything an install would write, checked, before anything is written."""

    leaf: x509.Certificate
    intermediates: list[x509.Certificate]
    root: x509.Certificate | None
    key: Any
    key_source: str  # "given", "bundle", "pending", "installed"
    hostname: str | None
    hostname_source: str | None  # "option", "server.tab"
    ca_added: list[x509.Certificate]
    trust: Any
    chain: Any
    warnings: list[Msg] = field(default_factory=list)
    server_cert: bytes = b""
    server_key: bytes = b""
    certs_pem: bytes | None = None

    def changes(self, mr: MailRoot) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {mr.rel_server_cert: self.server_cert,
                                        mr.rel_server_key: self.server_key}
        if self.certs_pem is not None:
            out[mr.rel_certs_pem] = self.certs_pem
        return out

    def describe(self, lang: str) -> dict[str, Any]:
        """The preview: what was recognised and what will be written (no key material)."""
        return {
            "leaf": chainmod.describe(self.leaf),
            "intermediates": [chainmod.describe(c) for c in self.intermediates],
            "root_left_out": chainmod.describe(self.root) if self.root is not None else None,
            "key": {"source": self.key_source, "type": keys.key_summary(self.key),
                    "public_key_sha256": keys.public_key_fingerprint(self.key)},
            "hostname": self.hostname,
            "chain_complete": bool(self.chain.complete),
            "trusted": bool(self.trust.trusted),
            "trust_anchor": self.trust.anchor,
            "ca_added": [chainmod.describe(c) for c in self.ca_added],
            "warnings": [w.render(lang) for w in self.warnings],
        }


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _load_certs(upload: Upload, field_name: str, passphrase: bytes | None) -> certfiles.Material:
    try:
        material = certfiles.load_material(upload.data, name=upload.name, passphrase=passphrase,
                                           field=field_name)
        if not material.certificates:
            # Re-read for the precise reason: a CSR, a lone key, ...
            certfiles.certificates_from(upload.data, name=upload.name, field=field_name)
    except XmailnbError as exc:
        raise _with_field(exc, field_name)
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
        return certfiles.load_material(data, name=mr.rel_certs_pem).certificates
    except XmailnbError:
        return []


def merge_certs_pem(mr: MailRoot, base: bytes | None,
                    ca_certs: Sequence[x509.Certificate]) -> tuple[bytes | None, list[x509.Certificate]]:
    """certs.pem with the CA certificates it lacks appended (every other
    byte kept), and those added; ``(None, [])`` when none is missing."""
    known = {_fingerprint(c) for c in _certs_in(mr, base)}
    added = [c for c in chainmod.unique(list(ca_certs)) if _fingerprint(c) not in known]
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
                bundle_keys: Sequence[Any], passphrase: bytes | None) -> tuple[Any, str]:
    if key_upload is not None:
        try:
            key = certfiles.private_key_from(key_upload.data, name=key_upload.name,
                                             passphrase=passphrase, field="key")
        except XmailnbError as exc:
            raise _with_field(exc, "key")
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
    return names[0] if names else cert.subject.rfc4514_string()


def normalize_hostname_option(value: str) -> str:
    """The host name clients connect to, as given by the user (IDN -> A-labels).

    Raises:
        InputError: not a valid host name (field ``hostname``).
    """
    from .csr import normalize_hostname

    name, err = normalize_hostname(value, wildcard=False)
    if err is not None:
        raise InputError(err, Msg.of("actions.hostname.invalid.fix"), field="hostname")
    return name


def _servertab_hostname(mr: MailRoot) -> str | None:
    from .servertab import ServerTab, mail_hostname

    try:
        data = mr.read(mr.rel_server_tab)
    except OSError:
        return None
    return mail_hostname(ServerTab.parse(data)) if data is not None else None


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
) -> InstallPlan:
    """Check everything an install needs and compute the files it would write.

    Nothing is written.  The server certificate may come with its chain and
    key in one bundle (PEM, PKCS#7, PKCS#12) or in separate files, in any
    order.

    Raises:
        InputError: with ``field`` naming the input at fault (``cert``,
            ``chain``, ``key``, ``ca``, ``hostname``).
    """
    at = at or clock.now()
    cert_material = _load_certs(cert, "cert", passphrase)
    chain_certs: list[x509.Certificate] = []
    bundle_keys = list(cert_material.keys)
    for upload in chain:
        m = _load_certs(upload, "chain", passphrase)
        chain_certs.extend(m.certificates)
        bundle_keys.extend(m.keys)
    ca_certs: list[x509.Certificate] = []
    if ca is not None:
        ca_certs = _load_certs(ca, "ca", passphrase).certificates
        not_ca = [c for c in ca_certs if not chainmod.is_ca(c)]
        if not_ca:
            raise InputError.of("actions.ca.not_ca", "actions.ca.not_ca.fix", field="ca",
                                name=ca.name, subject=not_ca[0].subject.rfc4514_string())

    # Checked before the chain: cryptography cannot even verify a SHA-1
    # signature, which would otherwise read as a broken link.
    for candidate in cert_material.certificates:
        weak_sig = None if chainmod.is_ca(candidate) else _weak_signature(candidate)
        if weak_sig:
            raise InputError.of("actions.cert.weak_signature", "actions.cert.weak_signature.fix", field="cert",
                                algorithm=weak_sig)

    # The leaf must come from the file given as the server certificate: a CA
    # certificate there, or a server certificate among the intermediates, is
    # the classic mix-up this refuses.
    try:
        leaf = chainmod.plan_chain(cert_material.certificates).leaf
    except XmailnbError as exc:
        raise _with_field(exc, "cert")
    if any(not chainmod.is_ca(c) and _fingerprint(c) != _fingerprint(leaf) for c in chain_certs):
        other = next(c for c in chain_certs if not chainmod.is_ca(c) and _fingerprint(c) != _fingerprint(leaf))
        raise InputError.of("actions.chain.leaf_given", "actions.chain.leaf_given.fix", field="chain",
                            subject=other.subject.rfc4514_string())

    certs_pem_bytes, certs_pem_certs = _read_certs_pem(mr)
    anchors = {"public": chainmod.public_roots(), "certs.pem": certs_pem_certs + ca_certs}
    try:
        plan = chainmod.plan_chain(chainmod.unique(cert_material.certificates + chain_certs), leaf=leaf,
                                   anchors=anchors)
    except XmailnbError as exc:
        raise _with_field(exc, "chain")

    warnings: list[Msg] = []
    if not plan.complete:
        if not allow_incomplete:
            raise InputError.of("actions.chain.incomplete", "actions.chain.incomplete.fix", field="chain",
                                issuer=leaf_issuer(plan).rfc4514_string())
        warnings.append(Msg.of("actions.chain.incomplete.allowed", issuer=leaf_issuer(plan).rfc4514_string()))

    for c in [plan.leaf, *plan.intermediates]:
        when = c.not_valid_after_utc
        if when <= at:
            raise InputError.of("actions.cert.expired", "actions.cert.expired.fix",
                                field="cert" if c is plan.leaf else "chain",
                                subject=c.subject.rfc4514_string(), date=when.date().isoformat())
        if c.not_valid_before_utc > at:
            raise InputError.of("actions.cert.not_yet_valid", "actions.cert.not_yet_valid.fix",
                                field="cert" if c is plan.leaf else "chain",
                                subject=c.subject.rfc4514_string(),
                                date=c.not_valid_before_utc.isoformat(timespec="minutes"))
    problem = keys.key_strength_problem(plan.leaf.public_key())
    if problem is not None:
        raise InputError(problem, Msg.of("actions.key.weak.fix"), field="cert")

    hostname_source = None
    if hostname:
        hostname, hostname_source = normalize_hostname_option(hostname), "option"
    else:
        hostname = _servertab_hostname(mr)
        hostname_source = "server.tab" if hostname else None
    if hostname:
        if not chainmod.covers_hostname(plan.leaf, hostname):
            raise InputError.of("actions.hostname.not_covered", "actions.hostname.not_covered.fix",
                                field="cert", hostname=hostname, source=hostname_source,
                                names=", ".join(chainmod.hostnames(plan.leaf)) or "-")
    else:
        warnings.append(Msg.of("actions.hostname.unknown"))

    chosen_key, key_source = _choose_key(mr, plan.leaf, key, bundle_keys, passphrase)
    key_problem = keys.key_strength_problem(chosen_key)
    if key_problem is not None:
        raise InputError(key_problem, Msg.of("actions.key.weak.fix"), field="key")

    trust = chainmod.verify_trust(plan.leaf, plan.intermediates, anchors=anchors, hostname=None, at=at)
    if not trust.trusted:
        warnings.append(Msg.of("actions.trust.private"))

    # A preview only: the install recomputes it from certs.pem as it is
    # under the lock, so a CA another admin added meanwhile is kept.
    new_certs_pem, added = merge_certs_pem(mr, certs_pem_bytes, ca_certs)

    return InstallPlan(
        leaf=plan.leaf, intermediates=list(plan.intermediates), root=plan.root,
        key=chosen_key, key_source=key_source, hostname=hostname, hostname_source=hostname_source,
        ca_added=added, trust=trust, chain=plan, warnings=warnings,
        server_cert=certfiles.certs_to_pem([plan.leaf, *plan.intermediates]),
        server_key=keys.private_key_pem(chosen_key),
        certs_pem=new_certs_pem,
    )


def leaf_issuer(plan: Any) -> x509.Name:
    last = plan.intermediates[-1] if plan.intermediates else plan.leaf
    return last.issuer


def _weak_signature(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # unsupported algorithm: nothing to judge here
        return None
    if algorithm is not None and algorithm.name in ("sha1", "md5"):
        return algorithm.name.upper().replace("SHA1", "SHA-1")
    return None


def apply_install(mr: MailRoot, plan: InstallPlan) -> ArchiveEntry | None:
    """Write the planned files through the store (archive first, journaled,
    atomic).  certs.pem is read again under the lock and only the CA
    certificates it still lacks are appended."""
    details = {
        "leaf_sha256": certfiles.cert_fingerprint(plan.leaf),
        "intermediates_sha256": [certfiles.cert_fingerprint(c) for c in plan.intermediates],
        "subject": plan.leaf.subject.rfc4514_string(),
        "not_after": plan.leaf.not_valid_after_utc.isoformat(),
        "key_source": plan.key_source,
        "public_key_sha256": keys.public_key_fingerprint(plan.key),
    }
    with Store(mr).transaction("install", details) as tx:
        tx.write(mr.rel_server_cert, plan.server_cert)
        tx.write(mr.rel_server_key, plan.server_key)
        added: list[x509.Certificate] = []
        if plan.ca_added:
            new_pem, added = merge_certs_pem(mr, tx.read(mr.rel_certs_pem), plan.ca_added)
            if new_pem is not None:
                tx.write(mr.rel_certs_pem, new_pem)
        tx.details["ca_added_sha256"] = [certfiles.cert_fingerprint(c) for c in added]
    return tx.entry


# -- settings and rollback -----------------------------------------------------

def change_settings(mr: MailRoot, assignments: Mapping[str, str | None]) -> ArchiveEntry | None:
    """Set server.tab TLS variables; only the changed lines differ afterwards.

    A value of ``None`` removes the setting (its line is commented out), so
    XMail's default applies again: for ``SmtpNoTLSAuths`` "not set" and "set
    to the empty value" mean different things.

    Raises:
        InputError: an unknown name or an invalid value (nothing written).
    """
    from .servertab import ServerTab, check_name, validate_setting

    normalised: dict[str, str | None] = {}
    for name, value in assignments.items():
        try:
            if value is None:
                check_name(name)
                normalised[name] = None
            else:
                normalised[name] = validate_setting(name, value)
        except XmailnbError as exc:
            raise _with_field(exc, name)
    # Read and edited under the lock: two admins changing different
    # variables at the same moment both keep their change.
    with Store(mr).transaction("settings", {"set": normalised}) as tx:
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


# -- the CA checklist ----------------------------------------------------------

#: The items of the CA submission checklist, in order (texts ``ui.submit.item.<id>``).
CHECKLIST: tuple[str, ...] = ("choose", "send", "validate", "receive", "keep")


def _checklist_ticked(data: bytes | None) -> list[str]:
    try:
        doc = json.loads((data or b"").decode("utf-8"))
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
    with Store(mr).transaction("checklist") as tx:
        before = set(_checklist_ticked(tx.read(mr.rel_checklist)))
        now = before | {item} if ticked else before - {item}
        result = [i for i in CHECKLIST if i in now]
        if now == before:
            return result
        doc = {"ticked": result, "updated": clock.now().isoformat(timespec="seconds")}
        tx.details["ticked"] = result
        tx.write(mr.rel_checklist, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return result
