"""Diagnosis of a MailRoot's TLS set-up: checks -> findings.

Every check id in :data:`CHECK_IDS` always appears in a report, in that
order; a check that cannot run says why, with status ``info``.  Findings
carry :class:`~xmailnb.i18n.Msg` values, rendered by the view.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from cryptography import x509

from ..files import read_regular
from ..logs import log_unexpected
from ..mailroot.servertab import (
    ServerTab,
    flag_value,
    mail_hostname,
    tls_inconsistencies,
)
from ..mailroot.store import recover_interrupted
from ..pki import certfiles, keys
from ..pki import chain as chainmod
from .. import clock
from ..errors import XmailnbError
from ..i18n import Msg, local_date
from ..mailroot.layout import REL_PRACTICE_ISSUED_SERVER, MailRoot, read_problem
from ..pki import csr as csrmod
from ..status import Status
from ..steps import Step, Target
from .findings import Finding, Report, finding
from .installed import anchor_sets, pending_public_key, practice_issued
from .renewal import renewal_finding

if sys.platform != "win32":  # file ownership is judged on POSIX only
    import grp
    import pwd

__all__ = ["CHECK_IDS", "diagnose", "check_title", "EXPIRY_WARN_DAYS"]

log = logging.getLogger(__name__)

CHECK_IDS = (
    "mailroot",
    "key.present",
    "key.usable",
    "key.permissions",
    "cert.present",
    "cert.pair",
    "cert.validity",
    "cert.hostname",
    "cert.chain",
    "cert.trust",
    "ca.files",
    "settings.tls",
    "csr.pending",
)
EXPIRY_WARN_DAYS = 30


@dataclass
class _State:
    """What the checks learn from the files, read once."""

    mr: MailRoot
    at: dt.datetime
    hostname: str | None = None
    hostname_source: str | None = None
    tab: Any = None
    key: Any = None
    key_data: bytes | None = None
    certs: list[x509.Certificate] = field(default_factory=list)
    certs_pem: list[x509.Certificate] = field(default_factory=list)
    certs_pem_error: Msg | None = None
    problems: dict[str, Msg] = field(default_factory=dict)
    #: Where the certificate for a key and CSR that wait in sslconf is
    #: got (``None``: no usable pair waits): a new key is then no fix.
    waiting: Target | None = None

    @property
    def leaf(self) -> x509.Certificate | None:
        return self.certs[0] if self.certs else None


def _read(path: os.PathLike[str] | str, s: _State | None = None) -> bytes | None:
    """The file at *path* (regular files only, bounded: a FIFO or a device
    in its place must not hang the diagnosis); why not is kept in *s*."""
    try:
        return read_regular(path, certfiles.MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if s is not None:
            name = os.path.relpath(path, s.mr.path) if os.path.isabs(path) else str(path)
            s.problems[str(path)] = read_problem(name.replace(os.sep, "/"), exc)
        return None


def _days_left(cert: x509.Certificate, at: dt.datetime) -> int:
    return (cert.not_valid_after_utc - at).days


def check_title(check: str) -> Msg:
    """The name of a check, as the page labels it ("Validity period")."""
    return Msg.of(f"diagnose.check.{check}")


def _skip(check: str, reason: str) -> Finding:
    """A check that cannot run yet; ``details["skipped"]`` says why
    (``no_key``, ``no_cert``), so a view can group them."""
    return Finding(check, Status.INFO, Msg.of(f"diagnose.skip.{reason}", check=check_title(check)),
                   details={"skipped": reason})


# -- the checks ----------------------------------------------------------------

def _check_mailroot(s: _State) -> Finding:
    key = "diagnose.mailroot.sandbox" if s.mr.is_sandbox else "diagnose.mailroot.ok"
    return finding("mailroot", Status.OK, key, path=str(s.mr.path))


def _check_key_present(s: _State) -> Finding:
    if s.mr.server_key.is_file():
        return finding("key.present", Status.OK, "diagnose.key.present.ok")
    if os.path.lexists(s.mr.server_key):
        # A folder, FIFO, device or dangling link where the key should be.
        _read(s.mr.server_key, s)
        problem = s.problems.get(str(s.mr.server_key))
        if problem is not None:
            return Finding("key.present", Status.ERROR, problem, Msg.of("diagnose.key.present.missing.fix"))
    if s.waiting is not None:
        return Finding("key.present", Status.ERROR, Msg.of("diagnose.key.present.missing"),
                       Msg.of("diagnose.key.present.missing.waiting.fix"), target=s.waiting)
    return finding("key.present", Status.ERROR, "diagnose.key.present.missing", "diagnose.key.present.missing.fix")


def _waiting_target(mr: MailRoot) -> Target | None:
    """Where to go on with a key and CSR that wait in sslconf, readable and
    belonging together: install the certificate the practice CA issued for
    them, else get one (step 3).  ``None`` when no such pair waits."""
    key = pending_public_key(mr)
    if key is None:
        return None
    try:
        request = certfiles.csr_from(read_regular(mr.pending_csr), name=mr.rel_pending_csr)
    except (OSError, XmailnbError, ValueError, TypeError):
        return None
    if not keys.public_key_matches(key, request):
        return None
    try:
        issued = certfiles.certificates_from(read_regular(mr.file(REL_PRACTICE_ISSUED_SERVER)),
                                             name=REL_PRACTICE_ISSUED_SERVER)
    except (OSError, XmailnbError, ValueError):
        issued = []
    if issued and keys.public_key_matches(key, issued[0]):
        return Target(Step.INSTALL, "xm-install-cert")
    return Target(Step.SUBMIT)


def _check_key_usable(s: _State) -> Finding:
    data = _read(s.mr.server_key, s)
    if data is None:
        problem = s.problems.get(str(s.mr.server_key))
        if problem is not None:
            return Finding("key.usable", Status.ERROR, problem, Msg.of("diagnose.key.unreadable.fix"), outside=True)
        if s.mr.server_key.exists():
            return finding("key.usable", Status.ERROR, "diagnose.key.unreadable", "diagnose.key.unreadable.fix",
                           outside=True)
        return _skip("key.usable", "no_key")
    s.key_data = data
    if certfiles.is_encrypted_key_pem(data):
        return finding("key.usable", Status.ERROR, "diagnose.key.encrypted", "diagnose.key.encrypted.fix",
                       target=Target(Step.INSTALL, "xm-install-passphrase"))
    try:
        s.key = certfiles.private_key_from(data, name=s.mr.rel_server_key)
    except XmailnbError as exc:
        return Finding("key.usable", Status.ERROR, exc.msg, Msg.of("diagnose.key.broken.fix"),
                       target=Target(Step.INSTALL, "xm-rollback"))
    summary = keys.key_summary(s.key)
    problem = keys.key_strength_problem(s.key)
    if problem is not None:
        return Finding("key.usable", Status.ERROR, problem, Msg.of("diagnose.key.weak.fix"), {"key": summary})
    if summary.startswith("EC"):
        return finding("key.usable", Status.INFO, "diagnose.key.ec", details={"key": summary}, key=summary)
    return finding("key.usable", Status.OK, "diagnose.key.ok", details={"key": summary}, key=summary)


def _service_account(mr: MailRoot) -> tuple[int, int] | None:
    """The account XMail runs as, taken to be the MailRoot folder's owner
    (its service account owns the spool it writes); ``None`` for root."""
    try:
        st = os.stat(mr.path)
    except OSError:
        return None
    return None if st.st_uid == 0 else (st.st_uid, st.st_gid)


def _account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _can_read(st: os.stat_result, uid: int, gid: int) -> bool:
    """Whether *uid* (primary group *gid*) may read a file with *st*, by the
    classic owner/group/other rule (no ACLs)."""
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    groups = {gid}
    try:
        name = pwd.getpwuid(uid).pw_name
        groups |= {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    except KeyError:
        pass
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _check_key_permissions(s: _State) -> Finding:
    if not s.mr.server_key.exists():
        return _skip("key.permissions", "no_key")
    if os.name != "posix":
        return finding("key.permissions", Status.INFO, "diagnose.key.permissions.windows")
    st = s.mr.server_key.stat()
    mode = stat.S_IMODE(st.st_mode)
    octal = f"{mode:04o}"
    account = _service_account(s.mr)
    if account is not None and not _can_read(st, *account):
        # Installed as root into a MailRoot XMail runs from as its own
        # account: a key XMail cannot read fails every TLS handshake.
        name = _account_name(account[0])
        params: dict[str, Any] = {"mode": octal, "account": name, "owner": _account_name(st.st_uid),
                  "path": str(s.mr.server_key)}
        return finding("key.permissions", Status.ERROR, "diagnose.key.permissions.owner",
                  "diagnose.key.permissions.owner.fix", params, **params)
    if mode & stat.S_IROTH or mode & stat.S_IWOTH:
        return finding("key.permissions", Status.ERROR, "diagnose.key.permissions.world",
                  "diagnose.key.permissions.fix", {"mode": octal}, mode=octal)
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        return finding("key.permissions", Status.WARN, "diagnose.key.permissions.group",
                  "diagnose.key.permissions.fix", {"mode": octal}, mode=octal)
    return finding("key.permissions", Status.OK, "diagnose.key.permissions.ok", details={"mode": octal}, mode=octal)


def _check_cert_present(s: _State) -> Finding:
    data = _read(s.mr.server_cert, s)
    if data is None:
        problem = s.problems.get(str(s.mr.server_cert))
        if problem is not None:
            return Finding("cert.present", Status.ERROR, problem, Msg.of("diagnose.cert.unreadable.fix"), outside=True)
        if s.mr.server_cert.exists():
            return finding("cert.present", Status.ERROR, "diagnose.cert.unreadable", "diagnose.cert.unreadable.fix",
                           outside=True)
        return finding("cert.present", Status.ERROR, "diagnose.cert.missing", "diagnose.cert.missing.fix")
    try:
        s.certs = certfiles.certificates_from(data, name=s.mr.rel_server_cert)
    except XmailnbError as exc:
        return Finding("cert.present", Status.ERROR, exc.msg, Msg.of("diagnose.cert.broken.fix"))
    leaf = s.certs[0]
    return finding("cert.present", Status.OK, "diagnose.cert.present.ok",
              details={"subject": chainmod.name_text(leaf.subject, "en"), "count": len(s.certs),
                       "sha256": certfiles.cert_fingerprint(leaf)},
              subject=chainmod.display_name(leaf.subject), count=len(s.certs))


def _check_cert_pair(s: _State) -> Finding:
    if s.leaf is None:
        return _skip("cert.pair", "no_cert")
    if s.key is None:
        return _skip("cert.pair", "no_key")
    try:
        s.leaf.public_key()
    except chainmod.PARSE_ERRORS:
        # A key algorithm nobody can read: no client can use the certificate.
        return finding("cert.pair", Status.ERROR, "diagnose.cert.pair.unreadable", "diagnose.cert.broken.fix")
    if keys.public_key_matches(s.key, s.leaf):
        return finding("cert.pair", Status.OK, "diagnose.cert.pair.ok")
    return finding("cert.pair", Status.ERROR, "diagnose.cert.pair.mismatch", "diagnose.cert.pair.mismatch.fix")


def _check_cert_validity(s: _State) -> Finding:
    if s.leaf is None:
        return _skip("cert.validity", "no_cert")
    for cert in s.certs:
        subject = chainmod.display_name(cert.subject)
        # RFC 5280 4.1.2.5: valid "through" notAfter, that instant included.
        if cert.not_valid_after_utc < s.at:
            return finding("cert.validity", Status.ERROR, "diagnose.cert.expired", "diagnose.cert.expired.fix",
                      {"not_after": cert.not_valid_after_utc.isoformat()},
                      subject=subject, date=local_date(cert.not_valid_after_utc))
        if cert.not_valid_before_utc > s.at:
            return finding("cert.validity", Status.ERROR, "diagnose.cert.not_yet_valid", "diagnose.cert.not_yet_valid.fix",
                      {"not_before": cert.not_valid_before_utc.isoformat()},
                      subject=subject, date=cert.not_valid_before_utc)
    leaf = s.leaf
    # The soonest expiry in the chain is what the server really has left.
    soonest = min(s.certs, key=lambda c: c.not_valid_after_utc)
    days = _days_left(soonest, s.at)
    details = {"not_after": soonest.not_valid_after_utc.isoformat(), "days_left": days}
    date = local_date(soonest.not_valid_after_utc)
    if days < EXPIRY_WARN_DAYS:
        return finding("cert.validity", Status.WARN, "diagnose.cert.expiring", "diagnose.cert.expiring.fix", details,
                  count=days, date=date, subject=chainmod.display_name(soonest.subject))
    key = "diagnose.cert.valid" if soonest is leaf else "diagnose.cert.valid.chain"
    return finding("cert.validity", Status.OK, key, details=details, count=days, date=date,
              subject=chainmod.display_name(soonest.subject))


def _check_cert_hostname(s: _State) -> Finding:
    if s.leaf is None:
        return _skip("cert.hostname", "no_cert")
    names = chainmod.hostnames(s.leaf)
    details = {"hostname": s.hostname, "names": names}
    if not s.hostname:
        return finding("cert.hostname", Status.INFO, "diagnose.cert.hostname.unknown",
                  "diagnose.cert.hostname.unknown.fix", details, names=", ".join(names) or "-")
    if chainmod.covers_hostname(s.leaf, s.hostname):
        return finding("cert.hostname", Status.OK, "diagnose.cert.hostname.ok", details=details, hostname=s.hostname,
                  source=s.hostname_source)
    # Host-name messages only when the names are the problem: a v1
    # certificate cannot hold any, one without subjectAltName holds none.
    if s.leaf.version != x509.Version.v3:
        return finding("cert.hostname", Status.ERROR, "diagnose.cert.hostname.version", "diagnose.cert.hostname.version.fix",
                  details, hostname=s.hostname, source=s.hostname_source)
    if not _has_san(s.leaf):
        return finding("cert.hostname", Status.ERROR, "diagnose.cert.hostname.no_san", "diagnose.cert.hostname.fix",
                  details, hostname=s.hostname, source=s.hostname_source, names=", ".join(names) or "-")
    return finding("cert.hostname", Status.ERROR, "diagnose.cert.hostname.mismatch", "diagnose.cert.hostname.fix",
              details, hostname=s.hostname, source=s.hostname_source, names=", ".join(names) or "-")


def _has_san(cert: x509.Certificate) -> bool:
    return bool(chainmod.hostnames(cert)) and chainmod.has_san(cert)


def _anchors(s: _State) -> dict[str, Sequence[x509.Certificate]]:
    return anchor_sets(s.mr, s.certs_pem)


def _check_cert_chain(s: _State) -> Finding:
    if s.leaf is None:
        return _skip("cert.chain", "no_cert")
    issues = chainmod.check_order(s.certs)
    if issues:
        return Finding("cert.chain", Status.ERROR, issues[0].msg, Msg.of("diagnose.cert.chain.order.fix"),
                       {"issues": [i.code for i in issues]})
    if len(s.certs) == 1 and chainmod.is_self_signed(s.leaf):
        return finding("cert.chain", Status.OK, "diagnose.cert.chain.self_signed")
    try:
        plan = chainmod.plan_chain(s.certs, leaf=s.leaf, anchors=_anchors(s))
    except XmailnbError as exc:
        return Finding("cert.chain", Status.ERROR, exc.msg, Msg.of("diagnose.cert.chain.order.fix"))
    details = {"length": len(s.certs), "complete": plan.complete, "anchor": plan.anchor}
    if not plan.complete:
        last = s.certs[-1]
        return finding("cert.chain", Status.WARN, "diagnose.cert.chain.incomplete", "diagnose.cert.chain.incomplete.fix",
                  details, issuer=chainmod.display_name(last.issuer))
    if plan.root is not None:
        return finding("cert.chain", Status.INFO, "diagnose.cert.chain.root_included",
                  "diagnose.cert.chain.root_included.fix", details, count=len(s.certs))
    return finding("cert.chain", Status.OK, "diagnose.cert.chain.ok", details=details, count=len(s.certs))


def _check_cert_trust(s: _State) -> Finding:
    """The verdict of :func:`xmailnb.pki.chain.judge`, the one install and the
    dashboard use (trust alone here: the host name has its own check)."""
    if s.leaf is None:
        return _skip("cert.trust", "no_cert")
    verdict = chainmod.judge(s.leaf, s.certs[1:], anchors=_anchors(s), hostname=None, at=s.at)
    details: dict[str, Any] = {"anchor": verdict.anchor, "trusted": verdict.trusted}
    problem = verdict.problem
    if problem is not None:
        details["reason"] = problem.reason.name.lower()
    if problem is not None and verdict.anchor_known and problem.reason not in (
            chainmod.Reason.EXPIRED, chainmod.Reason.NOT_YET_VALID, chainmod.Reason.HOSTNAME):
        # Expiry is cert.validity's finding; saying it twice adds nothing.
        return Finding("cert.trust", Status.ERROR, Msg.of("diagnose.cert.trust.refused", reason=problem.msg),
                       problem.fix, details)
    if len(s.certs) == 1 and verdict.self_signed:
        return finding("cert.trust", Status.WARN, "diagnose.cert.trust.self_signed", "diagnose.cert.trust.self_signed.fix",
                  details)
    if verdict.trusted and verdict.anchor == chainmod.Anchor.PUBLIC:
        return finding("cert.trust", Status.OK, "diagnose.cert.trust.public", details=details)
    if (verdict.trusted and verdict.anchor == chainmod.Anchor.PRACTICE) or (not verdict.trusted and practice_issued(s.certs)):
        return finding("cert.trust", Status.WARN, "diagnose.cert.trust.practice", "diagnose.cert.trust.practice.fix",
                  {**details, "anchor": str(chainmod.Anchor.PRACTICE)})
    if verdict.trusted:
        return finding("cert.trust", Status.INFO, "diagnose.cert.trust.certs_pem", "diagnose.cert.trust.certs_pem.fix",
                  details)
    reason = problem.msg if problem is not None else Msg.of("diagnose.cert.trust.unknown_reason")
    return finding("cert.trust", Status.WARN, "diagnose.cert.trust.private", "diagnose.cert.trust.private.fix",
              details, reason=reason)


def _flag(s: _State, name: str) -> bool:
    if s.tab is None:
        return False
    value = s.tab.get(name)
    return flag_value(value) if value is not None else False


def _check_ca_files(s: _State) -> Finding:
    # XMail 1.27 (SSLConfig.cpp, SSLBind.cpp) loads CA files only to verify
    # the other side: certs.pem when SSLUseCertsFile is 1 and the file
    # exists, certs/ when SSLUseCertsDir is 1 and the folder exists, and only
    # while SSLWantVerify or SSLWantCert is 1.  A file it never reads is
    # nothing to warn about.
    use_file, use_dir = _flag(s, "SSLUseCertsFile"), _flag(s, "SSLUseCertsDir")
    verify = _flag(s, "SSLWantVerify") or _flag(s, "SSLWantCert")
    has_file = s.mr.certs_pem.is_file()
    has_dir = s.mr.certs_dir.is_dir()
    dir_entries = _dir_entries(s.mr.certs_dir) if has_dir else []
    details = {"SSLUseCertsFile": use_file, "SSLUseCertsDir": use_dir, "verify": verify, "certs_pem": has_file,
               "certs_dir": has_dir, "certs_pem_count": len(s.certs_pem)}
    read_file, read_dir = verify and use_file and has_file, verify and use_dir and has_dir
    if read_file and s.certs_pem_error is not None:
        # SSL_CTX_load_verify_locations fails: XMail gives up on every TLS
        # connection (ERR_SSL_VERPATHS), not only on client certificates.
        return Finding("ca.files", Status.ERROR, Msg.of("diagnose.ca.certs_pem.fatal", reason=s.certs_pem_error),
                       Msg.of("diagnose.ca.certs_pem.broken.fix"), details)
    if verify and use_file and not has_file:
        return finding("ca.files", Status.WARN, "diagnose.ca.file_missing", "diagnose.ca.file_missing.fix", details)
    if verify and use_dir:
        if not dir_entries:
            return finding("ca.files", Status.WARN, "diagnose.ca.dir_missing", "diagnose.ca.dir_missing.fix", details)
        bad = [n for n in dir_entries if not _is_hash_name(n)]
        if bad:
            return finding("ca.files", Status.WARN, "diagnose.ca.dir_names", "diagnose.ca.dir_names.fix", details,
                      names=", ".join(sorted(bad)[:5]))
    if read_file or read_dir:
        return finding("ca.files", Status.OK, "diagnose.ca.ok", details=details, count=len(s.certs_pem))
    if has_file and s.certs_pem_error is not None:
        # Not read by XMail; xmailnb itself cannot use it as a trust list either.
        return Finding("ca.files", Status.INFO, Msg.of("diagnose.ca.certs_pem.unread", reason=s.certs_pem_error),
                       Msg.of("diagnose.ca.certs_pem.broken.fix"), details)
    if has_file or dir_entries:
        if verify:
            return finding("ca.files", Status.INFO, "diagnose.ca.unused", "diagnose.ca.unused.fix", details)
        return finding("ca.files", Status.OK, "diagnose.ca.not_read", details=details)
    if verify:
        # SSL_CTX_set_default_verify_paths: OpenSSL's own locations.
        return finding("ca.files", Status.INFO, "diagnose.ca.defaults", "diagnose.ca.file_missing.fix", details)
    return finding("ca.files", Status.OK, "diagnose.ca.none", details=details)


def _dir_entries(path: os.PathLike[str] | str) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(path)]
    except OSError:
        return []


def _is_hash_name(name: str) -> bool:
    # c_rehash names: 8 lower-case hex digits, a dot and a sequence number.
    stem, dot, seq = name.partition(".")
    return (len(stem) == 8 and all(c in "0123456789abcdef" for c in stem) and dot == "."
            and (seq.isdigit() or (seq[:1] == "r" and seq[1:].isdigit())))


def _check_settings(s: _State) -> Finding:
    if s.tab is None:
        return finding("settings.tls", Status.ERROR, "diagnose.settings.unreadable", "diagnose.settings.unreadable.fix")
    problems = tls_inconsistencies(s.tab)
    if not problems:
        return finding("settings.tls", Status.OK, "diagnose.settings.ok")
    # Every problem is told, not only the worst: the status is the worst one's.
    worst = max(problems, key=lambda p: p.severity)
    details = {"problems": [p.code for p in problems],
               "issues": [{"code": p.code, "severity": str(p.severity), "names": list(p.names)} for p in problems]}
    if len(problems) == 1:
        return Finding("settings.tls", worst.severity, worst.msg, worst.fix or Msg.of("diagnose.settings.fix"),
                       details)
    message = Msg.of("diagnose.settings.several", count=len(problems),
                     items=_numbered([(n, p.msg) for n, p in enumerate(problems, 1)]))
    fixes = [(n, p.fix) for n, p in enumerate(problems, 1) if p.fix is not None]
    fix = _numbered(fixes) if fixes else Msg.of("diagnose.settings.fix")
    return Finding("settings.tls", worst.severity, message, fix, details)


def _numbered(items: Sequence[tuple[int, Msg]]) -> Msg:
    """``(1) first (2) second ...`` as one message, each part in its language."""
    parts = [Msg.of("diagnose.settings.item", n=n, text=msg) for n, msg in items]
    out = parts[-1]
    for part in reversed(parts[:-1]):
        out = Msg.of("diagnose.settings.join", first=part, rest=out)
    return out


def _check_csr(s: _State) -> Finding:
    data = _read(s.mr.pending_csr, s)
    if data is None:
        problem = s.problems.get(str(s.mr.pending_csr))
        if problem is not None:
            return Finding("csr.pending", Status.WARN, problem, Msg.of("diagnose.csr.broken.fix"))
        return finding("csr.pending", Status.INFO, "diagnose.csr.none")
    try:
        request = certfiles.csr_from(data, name=s.mr.rel_pending_csr)
    except XmailnbError as exc:
        return Finding("csr.pending", Status.WARN, exc.msg, Msg.of("diagnose.csr.broken.fix"))
    desc = csrmod.describe_csr(request)
    details = {"cn": desc.get("cn"), "sans": desc.get("sans"), "sha256": desc.get("sha256")}
    pending_key_data = _read(s.mr.pending_key)
    if pending_key_data is None:
        return finding("csr.pending", Status.WARN, "diagnose.csr.no_key", "diagnose.csr.no_key.fix", details,
                  cn=desc.get("cn"))
    problems = csrmod.csr_problems(request)
    if problems:
        return Finding("csr.pending", Status.WARN, problems[0], Msg.of("diagnose.csr.problem.fix"), details)
    if s.leaf is not None and keys.public_key_matches(request.public_key(), s.leaf):
        return finding("csr.pending", Status.INFO, "diagnose.csr.installed", details=details, cn=desc.get("cn"))
    return finding("csr.pending", Status.INFO, "diagnose.csr.waiting", "diagnose.csr.waiting.fix", details,
              cn=desc.get("cn"), names=", ".join(desc.get("sans") or []))


_NEW_KEY = Target(Step.CSR, "xm-csr-generate")

# Where each check's problem is fixed in the workbook, unless the check
# named another place (or none) itself.
_TARGETS: dict[str, Target] = {
    "key.present": Target(Step.CSR, "xm-csr-generate"),
    "key.usable": Target(Step.CSR, "xm-csr-generate"),
    "cert.present": Target(Step.INSTALL, "xm-install-cert"),
    "cert.pair": Target(Step.INSTALL, "xm-install-cert"),
    "cert.validity": Target(Step.CSR, "xm-csr-generate"),
    "cert.hostname": Target(Step.CSR, "xm-csr-cn"),
    "cert.chain": Target(Step.INSTALL, "xm-install-chain"),
    "cert.trust": Target(Step.SUBMIT),
    "ca.files": Target(Step.SETTINGS),
    "settings.tls": Target(Step.SETTINGS),
    "csr.pending": Target(Step.CSR, "xm-csr-generate"),
}


def _targeted(found: Finding, s: _State) -> Finding:
    if found.status in (Status.ERROR, Status.WARN) and found.target is None and not found.outside:
        found.target = _TARGETS.get(found.check)
        if s.waiting is not None and found.target == _NEW_KEY:
            # A key and CSR already wait: the way on is their certificate.
            found.target = s.waiting
    return found


_CHECKS: dict[str, Callable[[_State], Finding]] = {
    "mailroot": _check_mailroot,
    "key.present": _check_key_present,
    "key.usable": _check_key_usable,
    "key.permissions": _check_key_permissions,
    "cert.present": _check_cert_present,
    "cert.pair": _check_cert_pair,
    "cert.validity": _check_cert_validity,
    "cert.hostname": _check_cert_hostname,
    "cert.chain": _check_cert_chain,
    "cert.trust": _check_cert_trust,
    "ca.files": _check_ca_files,
    "settings.tls": _check_settings,
    "csr.pending": _check_csr,
}


def diagnose(mr: MailRoot, hostname: str | None = None, *, at: dt.datetime | None = None,
             extra: Sequence[Finding] | None = None) -> Report:
    """Run every check on *mr* and return the report.

    Args:
        hostname: the mail host name clients use; default server.tab's
            SmtpServerDomain, else RootDomain.
        at: the time to judge validity at (default now).
        extra: findings made elsewhere (e.g. ``probe.<name>`` from
            :func:`xmailnb.checks.probe.probe_findings`), appended after the checks.
    """
    # A change interrupted half-way (a killed install) is finished or undone
    # first, so the diagnosis never judges a half-replaced pair.
    recover_interrupted(mr)
    s = _State(mr=mr, at=at or clock.now())
    s.waiting = _waiting_target(mr)
    try:
        s.tab = ServerTab.read(mr.server_tab)
    except OSError:
        s.tab = None
    if hostname:
        s.hostname, s.hostname_source = hostname.strip().rstrip(".").lower(), "option"
    elif s.tab is not None:
        s.hostname = mail_hostname(s.tab)
        s.hostname_source = "server.tab" if s.hostname else None
    pem_data = _read(mr.certs_pem, s)
    if str(mr.certs_pem) in s.problems:
        s.certs_pem_error = s.problems[str(mr.certs_pem)]
    if pem_data is not None:
        try:
            s.certs_pem = certfiles.load_material(pem_data, name=mr.rel_certs_pem,
                                                  max_certificates=certfiles.MAX_BUNDLE_CERTIFICATES).certificates
            if not s.certs_pem:
                s.certs_pem_error = Msg.of("diagnose.ca.certs_pem.empty")
        except XmailnbError as exc:
            s.certs_pem_error = exc.msg
    findings = []
    # One budget of signature checks for the whole diagnosis: a hostile
    # server.cert costs seconds, however many checks look at it.
    with chainmod.work_budget():
        for check in CHECK_IDS:
            try:
                findings.append(_targeted(_CHECKS[check](s), s))
            except XmailnbError as exc:
                findings.append(Finding(check, Status.ERROR, exc.msg, exc.fix))
            except Exception as exc:  # a bug or an unforeseen file: one finding, never a crash
                where = log_unexpected(log, f"checking {check}", exc)
                findings.append(Finding(check, Status.ERROR, Msg.of("diagnose.check_failed",
                                                                    error=f"{type(exc).__name__}: {exc}"),
                                        Msg.of("diagnose.check_failed.fix", log=str(where) if where else "-")))
    # acme.renewal appears only where ACME was used; a damaged ACME record
    # is one finding, the rest of the diagnosis still shown.
    try:
        acme = renewal_finding(mr, at=s.at)
    except XmailnbError as exc:
        acme = Finding("acme.renewal", Status.ERROR, exc.msg, exc.fix)
    if acme is not None:
        findings.append(acme)
    findings.extend(extra or ())
    return Report(mailroot=mr, findings=findings, hostname=s.hostname)
