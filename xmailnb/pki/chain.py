"""Certificate chains: which certificate is the server's, in what order the
others must follow, whether the chain is trusted, and which host names it covers.

XMail 1.27 serves ``server.cert`` as it is written (OpenSSL's
``SSL_CTX_use_certificate_chain_file``): the server certificate first, then
the certificate that signed it, then that one's issuer.  CAs hand out bundles
in any order, sometimes with the root, sometimes with a certificate of another
chain; :func:`plan_chain` sorts that out by signatures, never by names alone,
and :func:`check_order` diagnoses a server.cert exactly as written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
import importlib.util
import ipaddress
import os
import threading
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, Mapping, Sequence

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from publicsuffixlist import PublicSuffixList

from .. import clock
from ..errors import InputError, XmailnbError
from ..i18n import Msg, local_date
from .certfiles import WEAK_HASHES, cert_fingerprint, der_children, hash_label, san_values
from .keys import key_summary

#: What reading a malformed certificate's parts may raise (cryptography
#: parses extensions, names and keys lazily, on first access).
PARSE_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                                             x509.DuplicateExtension, x509.UnsupportedGeneralNameType)

_LINK_ERRORS: tuple[type[Exception], ...] = (InvalidSignature, *PARSE_ERRORS)

__all__ = [
    "PARSE_ERRORS",
    "SIGNATURE_BUDGET",
    "NAME_CONSTRAINT_CHECKS",
    "WorkLimitExceeded",
    "Cancelled",
    "work_budget",
    "is_ca",
    "is_self_signed",
    "issued_by",
    "ChainPlan",
    "pick_leaf",
    "plan_chain",
    "unique",
    "ChainIssue",
    "check_order",
    "hostnames",
    "has_san",
    "san_covers_hostname",
    "covers_hostname",
    "public_roots",
    "Reason",
    "Rule",
    "Role",
    "ChainProblem",
    "Anchor",
    "Verdict",
    "judge",
    "display_name",
    "name_text",
    "TrustResult",
    "verify_trust",
    "describe",
]


# -- bounded work ----------------------------------------------------------------

#: The most signature checks one plan, verdict or diagnosis may make.  A real
#: chain, even with cross-signed variants and old intermediates, needs under
#: fifty; 2,000 sort out some forty-five certificates that all carry one
#: name.  At 0.1 to 0.5 ms a check (EC P-256 on a busy machine) the work
#: stays around a second, whatever the certificates are.
SIGNATURE_BUDGET = 2_000

#: The most (name, name constraint) comparisons a chain may ask for: OpenSSL's
#: own limit (NAME_CHECK_MAX in crypto/x509/v3_ncons.c), past which it refuses
#: the chain, as cryptography's verifier does.
NAME_CONSTRAINT_CHECKS = 1 << 20


class WorkLimitExceeded(InputError):
    """Sorting out the certificates given would take more than
    :data:`SIGNATURE_BUDGET` signature checks: refused, nothing changed."""

    def __init__(self, limit: int) -> None:
        super().__init__(Msg.of("chain.budget", limit=limit), Msg.of("chain.budget.fix"), field="chain")
        self.limit = limit


class Cancelled(XmailnbError):
    """The work was stopped by the user (the dashboard's Stop button)."""

    def __init__(self) -> None:
        super().__init__(Msg.of("chain.cancelled"))


class _Budget:
    def __init__(self, limit: int, cancel: threading.Event | None) -> None:
        self.limit = limit
        self.left = limit
        self.cancel = cancel

    def spend(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        self.left -= 1
        if self.left < 0:
            raise WorkLimitExceeded(self.limit)


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("xmailnb_chain_budget", default=None)


@contextlib.contextmanager
def work_budget(limit: int = SIGNATURE_BUDGET, *, cancel: threading.Event | None = None) -> Iterator[None]:
    """Bound the signature checks made inside the block to *limit*; when
    *cancel* is set, the next check raises :class:`Cancelled`.

    Every planning and judging function opens one of its own; an outer block
    (an install's whole check, a dashboard worker) makes them share it.

    Raises:
        WorkLimitExceeded: more than *limit* checks were needed.
        Cancelled: *cancel* was set.
    """
    if _BUDGET.get() is not None:
        yield
        return
    token = _BUDGET.set(_Budget(limit, cancel))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


# Signature results by the fingerprints of (child, issuer): a signature
# verifies or not whatever the time, so a plan and a verdict on the same
# files share them.
_LINKS: dict[tuple[bytes, bytes], bool] = {}
_LINKS_MAX = 50_000


def _name_key(name: x509.Name) -> Any:
    """A key equal for names that compare equal (cryptography compares the
    attributes' values, not their string types, as OpenSSL's name chaining
    does after canonicalising), so an index never misses an issuer."""
    try:
        return tuple(frozenset((a.oid.dotted_string, a.value) for a in rdn) for rdn in name.rdns)
    except PARSE_ERRORS:
        return None


class _Index:
    """Certificates by subject, so an issuer is looked for among the few
    that carry the right name, never by comparing every pair."""

    def __init__(self, certs: Sequence[x509.Certificate]) -> None:
        self.certs = list(certs)
        self.by_subject: dict[Any, list[x509.Certificate]] = {}
        self.by_issuer: dict[Any, list[x509.Certificate]] = {}
        for c in self.certs:
            self.by_subject.setdefault(_name_key(c.subject), []).append(c)
            self.by_issuer.setdefault(_name_key(c.issuer), []).append(c)

    def issuers(self, child: x509.Certificate) -> list[x509.Certificate]:
        """The certificates of the index that signed *child* (not itself)."""
        return [c for c in self.by_subject.get(_name_key(child.issuer), ()) if c is not child and issued_by(child, c)]

    def issues_others(self, cert: x509.Certificate) -> bool:
        """Whether *cert* signed another certificate of the index."""
        return any(o is not cert and issued_by(o, cert) for o in self.by_issuer.get(_name_key(cert.subject), ()))


# -- single certificates -------------------------------------------------------

def is_ca(cert: x509.Certificate) -> bool:
    """Whether *cert* is a CA certificate (BasicConstraints ``cA`` set).

    A version 1 certificate has no extensions at all; old self-signed roots
    are v1, so a self-signed v1 certificate counts as a CA.  A certificate
    whose extensions cannot be read is not a CA (certfiles refuses those).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        try:
            return cert.version == x509.Version.v1 and is_self_signed(cert)
        except x509.InvalidVersion:
            return False
    except PARSE_ERRORS:
        return False


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether *issuer* signed *child*: names chain and the signature verifies.

    Each signature check counts against the :func:`work_budget` in force.
    """
    try:
        if child.issuer != issuer.subject:
            return False
    except PARSE_ERRORS:
        return False
    key = (_fp(child), _fp(issuer))
    known = _LINKS.get(key)
    if known is not None:
        return known
    _spend()
    try:
        child.verify_directly_issued_by(issuer)
        result = True
    except _LINK_ERRORS:
        result = False
    if len(_LINKS) >= _LINKS_MAX:
        _LINKS.clear()
    _LINKS[key] = result
    return result


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether *cert* names itself as issuer and its signature verifies with
    its own key."""
    try:
        same = cert.subject == cert.issuer
    except PARSE_ERRORS:
        return False
    return same and issued_by(cert, cert)


def _fp(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _subject(cert: x509.Certificate) -> str | Msg:
    return display_name(cert.subject)


def unique(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """*certs* without repeats (same DER), in their order."""
    seen: set[bytes] = set()
    out = []
    for cert in certs:
        fp = _fp(cert)
        if fp not in seen:
            seen.add(fp)
            out.append(cert)
    return out


def _server_like(cert: x509.Certificate) -> bool:
    """A self-signed certificate that is plainly a server's despite cA=TRUE.

    ``openssl req -x509`` marks what it makes as a CA by default, so many
    self-signed server certificates carry cA=TRUE.  A root CA never names a
    host, so a DNS/IP subjectAltName or the serverAuth usage tells them apart.
    """
    if not is_self_signed(cert):
        return False
    if san_values(_san(cert)):
        return True
    eku = _ext(cert, x509.ExtendedKeyUsage)
    return eku is not None and ExtendedKeyUsageOID.SERVER_AUTH in eku.value


def _leaf_like(cert: x509.Certificate) -> bool:
    return not is_ca(cert) or _server_like(cert)


# -- planning a chain ----------------------------------------------------------

@dataclass
class ChainPlan:
    """The server certificate and what must follow it in server.cert.

    Attributes:
        leaf: the server certificate.
        intermediates: the CA certificates to write after it, the leaf's
            issuer first.
        root: a self-signed CA certificate the user gave; clients have it
            already, so it is left out when writing.
        unrelated: given certificates left out because they are not on the
            chain (a cross-signed variant of a CA already on it, an expired
            old intermediate, another CA's certificate).
        complete: nothing needs adding to server.cert: the chain ends at a
            given root, at a CA certificate (an intermediate whose issuer is
            left to the clients), at an issuer found in the anchors, or the
            leaf is self-signed.  ``False`` means the intermediate after the
            leaf is missing.
        anchor: ``"given"`` when the chain ends at a given root (or the leaf
            is self-signed), else the name of the anchor set holding the last
            issuer (``"public"``, ``"certs.pem"``, ...), or ``None`` (unknown:
            :func:`verify_trust` judges trust).
    """

    leaf: x509.Certificate
    intermediates: list[x509.Certificate] = field(default_factory=list)
    root: x509.Certificate | None = None
    unrelated: list[x509.Certificate] = field(default_factory=list)
    complete: bool = False
    anchor: str | None = None

    @property
    def last(self) -> x509.Certificate:
        """The last certificate that would be written (the leaf or the top intermediate)."""
        return self.intermediates[-1] if self.intermediates else self.leaf


def pick_leaf(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The server certificate among *certs*: the one non-CA certificate that
    signs none of the others (a self-signed server certificate marked as a
    CA counts as a server's).

    Raises:
        InputError: only CA certificates (``chain.leaf.is_ca``) or several
            server certificates (``chain.leaf.several``).
    """
    with work_budget():
        return _pick_leaf(unique(certs))


def _pick_leaf(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    index = _Index(certs)
    issues_others = index.issues_others

    candidates = [c for c in certs if not is_ca(c) and not issues_others(c)]
    if not candidates:
        candidates = [c for c in certs if not is_ca(c)]
    if not candidates:
        candidates = [c for c in certs if _server_like(c) and not issues_others(c)]
    if not candidates:
        # Only CA certificates: name the lowest one, the likeliest mix-up.
        lowest = next((c for c in certs if not issues_others(c)), certs[0])
        raise InputError.of("chain.leaf.is_ca", "chain.leaf.is_ca.fix", field="cert",
                            subject=_subject(lowest))
    if len(candidates) > 1:
        raise InputError.of("chain.leaf.several", "chain.leaf.several.fix", field="cert",
                            subjects=[Msg.of("chain.name.plain", name=_subject(c)) for c in candidates],
                            count=len(candidates))
    return candidates[0]


def _find_issuer(child: x509.Certificate, pool: _Index, remaining: set[bytes]) -> x509.Certificate | None:
    found = [c for c in pool.issuers(child) if _fp(c) in remaining]
    if not found:
        return None
    if len(found) > 1:
        # Cross-signed variants of one CA all verify.  Prefer a CA, then one
        # that ends the chain (self-signed) or whose own issuer was given, so
        # the chain reaches as far as the given certificates allow.
        def rank(c: x509.Certificate) -> tuple[bool, bool]:
            reaches = is_self_signed(c) or bool(pool.issuers(c))
            return (not is_ca(c), not reaches)

        found.sort(key=rank)
    return found[0]


def _anchor_for(cert: x509.Certificate, anchors: Mapping[str, Sequence[x509.Certificate]]) -> str | None:
    issuer = cert.issuer
    for name, roots in anchors.items():
        if roots is _public_roots():
            # The public bundle is searched by subject, not one by one.
            candidates: Sequence[x509.Certificate] = _public_by_subject().get(issuer.public_bytes(), ())
            if cert in candidates or any(issued_by(cert, root) for root in candidates):
                return name
            if cert in _public_roots():
                return name
            continue
        for root in roots:
            # Certificate equality compares the DER encoding (in Rust): much
            # cheaper than hashing every root.
            if root == cert or (root.subject == issuer and issued_by(cert, root)):
                return name
    return None


def plan_chain(
    certs: Sequence[x509.Certificate],
    *,
    leaf: x509.Certificate | None = None,
    anchors: Mapping[str, Sequence[x509.Certificate]] | None = None,
) -> ChainPlan:
    """Find the server certificate in *certs* and order its chain by signatures.

    *certs* may come in any order, with duplicates, with or without the root.
    An incomplete chain (missing intermediate) is not an error here:
    :attr:`ChainPlan.complete` says so and the caller decides.

    Args:
        certs: every certificate the user gave.
        leaf: the server certificate, when the caller knows it; otherwise the
            one non-CA certificate that signs none of the others.
        anchors: trusted CA sets by name (e.g. ``{"public": public_roots()}``),
            searched in order for the issuer of the last certificate.

    Raises:
        InputError: only CA certificates were given (``chain.leaf.is_ca``),
            several server certificates (``chain.leaf.several``), or the
            chain stops short while a given certificate carries the missing
            issuer's name but did not sign (``chain.wrong_issuer``).
        ValueError: *certs* is empty and no *leaf* was given.
        WorkLimitExceeded: sorting them out needs more than
            :data:`SIGNATURE_BUDGET` signature checks.
    """
    with work_budget():
        return _plan_chain(certs, leaf, anchors)


def _plan_chain(certs: Sequence[x509.Certificate], leaf: x509.Certificate | None,
                anchors: Mapping[str, Sequence[x509.Certificate]] | None) -> ChainPlan:
    anchors = anchors or {}
    pool = unique([*certs, leaf] if leaf is not None else certs)
    if not pool:
        raise ValueError("plan_chain needs at least one certificate")
    if leaf is None:
        leaf = _pick_leaf(pool)
    else:
        leaf = next(c for c in pool if _fp(c) == _fp(leaf))

    chain = [leaf]
    index = _Index(pool)
    left = {_fp(c) for c in pool if c is not leaf}
    while not is_self_signed(chain[-1]):
        issuer = _find_issuer(chain[-1], index, left)
        if issuer is None:
            break
        chain.append(issuer)
        left.discard(_fp(issuer))
    remaining = [c for c in pool if _fp(c) in left]

    plan = ChainPlan(leaf=leaf)
    if len(chain) > 1 and is_self_signed(chain[-1]):
        plan.intermediates, plan.root = chain[1:-1], chain[-1]
        plan.complete, plan.anchor = True, "given"
    else:
        plan.intermediates = chain[1:]
        if is_self_signed(leaf):
            plan.complete, plan.anchor = True, "given"
        else:
            plan.anchor = _anchor_for(chain[-1], anchors)
            # A chain that reaches a CA certificate is what server.cert needs:
            # clients hold the root, which is normally not handed out.  What
            # goes missing in practice is the intermediate after the leaf.
            plan.complete = plan.anchor is not None or (len(chain) > 1 and is_ca(chain[-1]))

    # Whatever is not on the chain is left out, as clients ignore it: a
    # cross-signed variant, an expired old intermediate, another CA's
    # certificate.  Only when the chain stops short and a left-out
    # certificate carries the missing issuer's name is that worth a refusal:
    # it is the intermediate of another chain, downloaded by mistake.
    plan.unrelated = list(remaining)
    if not plan.complete:
        top = chain[-1]
        wrong = next((c for c in remaining if c.subject == top.issuer), None)
        if wrong is not None:
            raise InputError.of("chain.wrong_issuer", "chain.wrong_issuer.fix", field="chain",
                                subject=_subject(wrong), child=_subject(top))
    return plan


# -- diagnosing an existing server.cert ----------------------------------------

@dataclass(frozen=True)
class ChainIssue:
    """One problem of a server.cert as written: a stable ``code`` and a message.

    Codes: ``duplicate``, ``first_is_ca``, ``order`` (right certificates,
    wrong order) and ``bad_link`` (a certificate does not sign the one before
    it).
    """

    code: str
    msg: Msg


def check_order(certs: Sequence[x509.Certificate]) -> list[ChainIssue]:
    """Problems of *certs* in exactly the order they are written.

    An empty list means: server certificate first, each following
    certificate signs the one before it, nothing repeated.  A trailing root
    is not an issue (see :attr:`ChainPlan.root`).
    """
    with work_budget():
        return _check_order(certs)


def _check_order(certs: Sequence[x509.Certificate]) -> list[ChainIssue]:
    issues: list[ChainIssue] = []
    seen: set[bytes] = set()
    unique = []
    for cert in certs:
        fp = _fp(cert)
        if fp in seen:
            issues.append(ChainIssue("duplicate", Msg.of("chain.issue.duplicate", subject=_subject(cert))))
            continue
        seen.add(fp)
        unique.append(cert)
    if not unique:
        return issues

    broken = [i for i in range(len(unique) - 1) if not issued_by(unique[i], unique[i + 1])]
    first_is_ca = not _leaf_like(unique[0])
    if broken:
        try:
            plan = plan_chain(unique)
        except InputError:
            plan = None
        if plan is not None and not plan.unrelated:
            expected = [plan.leaf, *plan.intermediates, *([plan.root] if plan.root else [])]
            if len(expected) == len(unique):
                issues.append(ChainIssue("order", Msg.of("chain.issue.order", leaf=_subject(plan.leaf),
                                                         first=_subject(unique[0]))))
                return issues
    if first_is_ca:
        issues.append(ChainIssue("first_is_ca", Msg.of("chain.issue.first_is_ca", subject=_subject(unique[0]))))
    for i in broken:
        issues.append(ChainIssue("bad_link", Msg.of("chain.issue.bad_link", issuer=_subject(unique[i + 1]),
                                                    child=_subject(unique[i]), position=i + 2)))
    return issues


# -- host names ----------------------------------------------------------------

def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    """The subjectAltName of *cert*; ``None`` without one or when the
    extensions cannot be parsed (the verdict names that defect)."""
    ext = _ext(cert, x509.SubjectAlternativeName)
    return ext.value if ext is not None else None


def has_san(cert: x509.Certificate) -> bool:
    """Whether *cert* has a (readable) subjectAltName extension."""
    return _san(cert) is not None


def _sans(cert: x509.Certificate) -> list[str]:
    return san_values(_san(cert))


def hostnames(cert: x509.Certificate) -> list[str]:
    """The names *cert* is for: DNS and IP subjectAltNames, or the common
    name when the certificate has no subjectAltName extension at all."""
    if _san(cert) is not None:
        return _sans(cert)
    try:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    except ValueError:
        return []


def covers_hostname(cert: x509.Certificate, hostname: str) -> bool:
    """Whether a client connecting to *hostname* accepts *cert*'s names.

    Follows RFC 6125 as mail clients do: wildcards cover exactly one label,
    the common name is ignored, an IP address must be an IP subjectAltName.
    Internationalised names are compared in their ASCII (punycode) form.

    Only the names are judged: the matching is cryptography's own (its
    server verifier), run on a stand-in certificate that carries nothing
    but *cert*'s subjectAltName, so that a defect elsewhere in *cert* (a v1
    certificate, a long serial number, a critical extension) never reads as
    a name mismatch.  Trust, validity and key strength have their own checks.
    """
    return san_covers_hostname(_san(cert), hostname)


def san_covers_hostname(san: x509.SubjectAlternativeName | None, hostname: str) -> bool:
    """Whether the names of *san* (a certificate's or a CSR's) cover
    *hostname*: the rule of :func:`covers_hostname`.

    >>> san = x509.SubjectAlternativeName([x509.DNSName("*.example.jp")])
    >>> san_covers_hostname(san, "mail.example.jp"), san_covers_hostname(san, "a.b.example.jp")
    (True, False)
    """
    name = hostname.strip().rstrip(".")
    if not name:
        return False
    try:
        subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        try:
            subject = x509.DNSName(_ascii_hostname(name))
        except ValueError:
            return False
    if san is None:
        return False
    try:
        probe = _name_probe(san)
    except (ValueError, TypeError):
        return False
    names_only = ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    try:
        verifier = (PolicyBuilder().store(Store([probe])).time(probe.not_valid_before_utc)
                    .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=names_only)
                    .build_server_verifier(subject))
        verifier.verify(probe, [])
    except (VerificationError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def _probe_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@lru_cache(maxsize=256)
def _name_probe(san: x509.SubjectAlternativeName) -> x509.Certificate:
    """A throw-away certificate holding only the subjectAltName *san*."""
    key = _probe_key()
    start = clock.now().replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xmailnb name check")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + dt.timedelta(days=1))
            .add_extension(san, critical=False).sign(key, hashes.SHA256()))


def _ascii_hostname(name: str) -> str:
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(str(exc)) from None


# -- trust ---------------------------------------------------------------------

@lru_cache(maxsize=1)
def _public_roots() -> tuple[x509.Certificate, ...]:
    # certifi.where() (and even importing certifi) goes through
    # importlib.resources, which costs more than parsing the whole bundle;
    # the file sits next to the module in every wheel.  Distributions that
    # patch where() drop that file, and get their own answer.
    spec = importlib.util.find_spec("certifi")
    path = os.path.join(os.path.dirname(spec.origin), "cacert.pem") if spec and spec.origin else ""
    if not os.path.isfile(path):
        import certifi  # the fallback only: importing certifi costs more than parsing the bundle

        path = certifi.where()
    with open(path, "rb") as fh:
        bundle = fh.read()
    # One call for the whole bundle: certifi's file is plain PEM, none of the
    # forgiving parsing user files need.  Some of Mozilla's old roots carry a
    # negative serial number, which cryptography warns about; they are still
    # valid anchors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(x509.load_pem_x509_certificates(bundle))


def public_roots() -> Sequence[x509.Certificate]:
    """The publicly trusted root CAs (Mozilla's list, as shipped by certifi).

    Read once per process; the same (immutable) sequence every time."""
    return _public_roots()


@lru_cache(maxsize=1)
def _public_by_subject() -> dict[bytes, tuple[x509.Certificate, ...]]:
    index: dict[bytes, list[x509.Certificate]] = {}
    for root in _public_roots():
        index.setdefault(root.subject.public_bytes(), []).append(root)
    return {k: tuple(v) for k, v in index.items()}


@lru_cache(maxsize=1)
def _public_store() -> Any:
    return Store(list(_public_roots()))


class Anchor(enum.StrEnum):
    """The names of the sets of trusted CAs a verdict is reached against
    (a verdict's ``anchor`` is one of them)."""

    PUBLIC = "public"        #: the publicly trusted roots (certifi's Mozilla bundle)
    GIVEN = "ca"             #: the CA certificate the administrator gave with an install
    CAFILE = "cafile"        #: the CA file given to the live check
    CERTS_PEM = "certs.pem"  #: XMail's own certs.pem
    PRACTICE = "practice"    #: the practice CA's root (training)


class Reason(enum.Enum):
    """Why a chain is refused: what a verifying client would trip over.

    The value is the message key; its fix is the same key plus ``.fix``.
    Code branches on the member, never on the key.
    """

    EXPIRED = "chain.trust.expired"
    NOT_YET_VALID = "chain.trust.not_yet_valid"
    SELF_SIGNED = "chain.trust.self_signed"
    UNTRUSTED_ROOT = "chain.trust.untrusted_root"
    UNKNOWN_ISSUER = "chain.trust.unknown_issuer"
    NOT_GIVEN_ANCHOR = "chain.trust.not_given_anchor"
    NO_SAN = "chain.trust.no_san"
    HOSTNAME = "chain.trust.hostname"
    NOT_SERVER = "chain.trust.not_server"
    CA_NOT_SERVER = "chain.trust.ca_not_server"
    LEAF_KEY_USAGE = "chain.trust.leaf_key_usage"
    LEAF_IS_CA = "chain.trust.leaf_is_ca"
    NOT_CA = "chain.trust.not_ca"
    CA_KEY_USAGE = "chain.trust.ca_key_usage"
    CA_BASIC_CONSTRAINTS = "chain.trust.ca_basic_constraints"
    PATH_LENGTH = "chain.trust.path_length"
    NAME_EXCLUDED = "chain.trust.name_excluded"
    NAME_NOT_PERMITTED = "chain.trust.name_not_permitted"
    NAME_CONSTRAINTS_INVALID = "chain.trust.name_constraints_invalid"
    NAME_CONSTRAINTS_BUDGET = "chain.trust.name_constraints_budget"
    CRITICAL_EXTENSION = "chain.trust.critical_extension"
    EXTENSION_CRITICALITY = "chain.trust.extension_criticality"
    WEAK_KEY = "chain.trust.weak_key"
    WEAK_SIGNATURE = "chain.trust.weak_signature"
    WILDCARD = "chain.trust.wildcard"
    KEY_IDENTIFIERS = "chain.trust.key_identifiers"
    SERIAL = "chain.trust.serial"
    VERSION = "chain.trust.version"
    MALFORMED = "chain.trust.malformed"
    EMPTY_NAME = "chain.trust.empty_name"
    BAD_SIGNATURE = "chain.trust.bad_signature"
    TOO_LONG = "chain.trust.too_long"
    REJECTED = "chain.trust.rejected"

    @property
    def about_issuer(self) -> bool:
        """The chain does not reach an anchor (rather than breaking a rule)."""
        return self in (Reason.SELF_SIGNED, Reason.UNTRUSTED_ROOT, Reason.UNKNOWN_ISSUER,
                        Reason.NOT_GIVEN_ANCHOR)


class Rule(enum.Enum):
    """A rule of RFC 5280 or the CA/Browser Forum that clients do not enforce:
    broken, the chain is installed with a warning naming it."""

    NO_EKU = "chain.rule.no_eku"
    ANY_EKU = "chain.rule.any_eku"
    ROOT_EKU = "chain.rule.root_eku"
    NO_AKI = "chain.rule.no_aki"
    NO_SKI = "chain.rule.no_ski"
    SERIAL_ZERO = "chain.rule.serial_zero"
    CN_NOT_IN_SAN = "chain.rule.cn_not_in_san"
    PRIVATE_SUFFIX_WILDCARD = "chain.rule.private_suffix_wildcard"
    NOT_CRITICAL = "chain.rule.not_critical"


class Role(enum.Enum):
    LEAF = "chain.role.leaf"
    INTERMEDIATE = "chain.role.intermediate"
    ROOT = "chain.role.root"


@dataclass(frozen=True)
class ChainProblem:
    """One reason a chain is refused, with the certificate at fault."""

    reason: Reason
    cert: x509.Certificate | None = None
    role: Role | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"subject": "", "which": "", "empty": Msg.of("chain.name.empty")}
        if self.cert is not None:
            out["subject"] = display_name(self.cert.subject)
            out["which"] = Msg.of((self.role or Role.LEAF).value, subject=out["subject"])
        out.update(self.params)
        return out

    @property
    def msg(self) -> Msg:
        return Msg(self.reason.value, self._params())

    @property
    def fix(self) -> Msg:
        key = self.reason.value + ".fix"
        if self.reason in (Reason.EXPIRED, Reason.NOT_YET_VALID) and self.role is not None:
            key = f"{self.reason.value}.fix.{self.role.name.lower()}"
        return Msg(key, self._params())


@dataclass(frozen=True)
class Warning_:
    rule: Rule
    cert: x509.Certificate
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def msg(self) -> Msg:
        return Msg(self.rule.value, {"subject": display_name(self.cert.subject), **self.params})


@dataclass
class Verdict:
    """What a verifying client would make of a server certificate and the
    certificates handed over with it.

    Attributes:
        trusted: the chain verified against the anchor set ``anchor``.
        anchor: the name of that set (``"public"``, ``"certs.pem"``, ...).
        path: the chain a client would build: the leaf first, then each
            issuer, ending at the anchor when trusted (else as far as the
            given certificates reach).
        problem: why it is refused (``None`` when it is not).
        anchor_known: the chain reaches (or was meant to reach) a known
            anchor, so a problem is the client's verdict, not a guess.
        warnings: rules broken that clients do not enforce.
        left_out: given certificates that are not on the path.
        self_signed: the server certificate is self-signed.
    """

    trusted: bool
    path: list[x509.Certificate]
    anchor: str | None = None
    problem: ChainProblem | None = None
    anchor_known: bool = False
    warnings: list[Warning_] = field(default_factory=list)
    left_out: list[x509.Certificate] = field(default_factory=list)
    self_signed: bool = False

    @property
    def leaf(self) -> x509.Certificate:
        return self.path[0]

    @property
    def served(self) -> list[x509.Certificate]:
        """What server.cert must hold: the path without a self-signed top
        (clients have the root; the leaf itself stays when self-signed)."""
        if len(self.path) > 1 and is_self_signed(self.path[-1]):
            return self.path[:-1]
        return list(self.path)

    @property
    def root(self) -> x509.Certificate | None:
        """The self-signed top of the path, left out of server.cert."""
        return self.path[-1] if len(self.path) > 1 and is_self_signed(self.path[-1]) else None


@dataclass
class TrustResult:
    """Whether clients trusting some anchor set would accept the chain.

    Attributes:
        trusted: the chain verified against one anchor set.
        anchor: the name of that set (``"public"``, ``"certs.pem"``, ...).
        self_signed: the server certificate is self-signed.
        reason: why it did not verify, in plain words (``None`` if trusted).
        problem: the same as a :class:`ChainProblem` (branch on ``problem.reason``).
    """

    trusted: bool
    anchor: str | None = None
    self_signed: bool = False
    reason: Msg | None = None
    problem: ChainProblem | None = None


def display_name(name: x509.Name | None) -> str | Msg:
    """A distinguished name as people read it (RFC 4514), or
    "(empty name)" in the user's language when it has no attributes."""
    if name is None:
        return Msg.of("chain.name.empty")
    try:
        text = name.rfc4514_string()
    except ValueError:
        return Msg.of("chain.name.unreadable")
    return text if text else Msg.of("chain.name.empty")


def _verify_name(leaf: x509.Certificate, hostname: str | None) -> Any:
    if hostname is not None:
        try:
            return IPAddress(ipaddress.ip_address(hostname.strip("[]")))
        except ValueError:
            return DNSName(_ascii_hostname(hostname.strip().rstrip(".")))
    san = _san(leaf)
    if san is not None:
        dns = san.get_values_for_type(x509.DNSName)
        if dns:
            # Trust is judged apart from host-name coverage: any name the
            # certificate holds will do, a wildcard made concrete.
            first = dns[0]
            try:
                return DNSName("xmailnb-check" + first[1:] if first.startswith("*.") else first)
            except ValueError:
                pass
        ips = san.get_values_for_type(x509.IPAddress)
        if ips:
            return IPAddress(ips[0])
    # No usable name: the verifier will fail on the missing subjectAltName.
    return DNSName("xmailnb-check.invalid")


def _ee_policy() -> Any:
    # RFC 5280 wants authorityKeyIdentifier in every server certificate, but
    # no client requires it and private CAs built from OpenSSL how-tos leave
    # it out: a warning (Rule.NO_AKI), not a refusal.  When present it must
    # match the issuer (checked in _strict_problem).
    return ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)


def _run_verifier(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], store: Any,
                  subject: Any, at: dt.datetime) -> list[x509.Certificate]:
    verifier = (PolicyBuilder().store(store).time(at)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_ee_policy())
                .build_server_verifier(subject))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(verifier.verify(leaf, list(intermediates)))


# -- reading certificates safely -------------------------------------------------

def _extensions(cert: x509.Certificate) -> x509.Extensions | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cert.extensions
    except PARSE_ERRORS:
        return None


def _ext(cert: x509.Certificate, cls: type[Any]) -> x509.Extension[Any] | None:
    exts = _extensions(cert)
    if exts is None:
        return None
    try:
        return exts.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def _version(cert: x509.Certificate) -> x509.Version | None:
    try:
        return cert.version
    except x509.InvalidVersion:
        return None


def _public_key(cert: x509.Certificate) -> Any:
    try:
        return cert.public_key()
    except PARSE_ERRORS:
        return None


def _serial_octets(cert: x509.Certificate) -> tuple[int, int]:
    """(serial number, length of its DER content in octets)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = cert.serial_number
    if n >= 0:
        return n, n.bit_length() // 8 + 1
    return n, ((-n - 1).bit_length()) // 8 + 1


def _ext_name(oid: x509.ObjectIdentifier) -> str:
    name = getattr(oid, "_name", "")
    return f"{name} ({oid.dotted_string})" if name and name != "Unknown OID" else oid.dotted_string


# -- the rules a client applies, checked one by one ------------------------------

_SERVER_KU = ("digital_signature", "key_encipherment", "key_agreement")
_STANDARD_CRITICAL = {
    x509.oid.ExtensionOID.BASIC_CONSTRAINTS, x509.oid.ExtensionOID.KEY_USAGE,
    x509.oid.ExtensionOID.EXTENDED_KEY_USAGE, x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    x509.oid.ExtensionOID.NAME_CONSTRAINTS, x509.oid.ExtensionOID.POLICY_CONSTRAINTS,
    x509.oid.ExtensionOID.INHIBIT_ANY_POLICY, x509.oid.ExtensionOID.POLICY_MAPPINGS,
    x509.oid.ExtensionOID.CERTIFICATE_POLICIES,
}
_ACCEPTED_CURVES = {"secp256r1", "secp384r1", "secp521r1"}


def _role(i: int, path: Sequence[x509.Certificate]) -> Role:
    if i == 0:
        return Role.LEAF
    return Role.ROOT if is_self_signed(path[i]) else Role.INTERMEDIATE


def _explicit_curve(cert: x509.Certificate) -> bool:
    """Whether the EC key of *cert* spells out its curve parameters instead
    of naming the curve (RFC 5480 allows only named curves).  cryptography
    maps such a key to the named curve it equals, so the DER is looked at:
    the algorithm parameters of subjectPublicKeyInfo are a SEQUENCE."""
    try:
        fields = der_children(cert.tbs_certificate_bytes)
        spki = fields[6 if fields[0][0] == 0xA0 else 5]
        algorithm = der_children(spki)[0]
        parts = der_children(algorithm)
    except (ValueError, IndexError):
        return False
    return len(parts) > 1 and parts[0] == _EC_PUBLIC_KEY and parts[1][:1] == b"\x30"


_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")


def _key_problem(cert: x509.Certificate, role: Role) -> ChainProblem | None:
    if _explicit_curve(cert):
        return ChainProblem(Reason.WEAK_KEY, cert, role, {"key": Msg.of("chain.key.explicit")})
    pub = _public_key(cert)
    if pub is None:
        # cryptography reads every key a public CA may use; what it cannot
        # read is an explicit-curve EC key or an exotic algorithm.
        return ChainProblem(Reason.WEAK_KEY, cert, role, {"key": Msg.of("chain.key.unreadable")})
    if isinstance(pub, rsa.RSAPublicKey):
        if pub.key_size < 2048 or pub.key_size % 8:
            return ChainProblem(Reason.WEAK_KEY, cert, role, {"key": f"RSA {pub.key_size}"})
        return None
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if pub.curve.name not in _ACCEPTED_CURVES:
            return ChainProblem(Reason.WEAK_KEY, cert, role, {"key": f"EC {pub.curve.name}"})
        return None
    if isinstance(pub, dsa.DSAPublicKey):
        return ChainProblem(Reason.WEAK_KEY, cert, role, {"key": f"DSA {pub.key_size}"})
    return ChainProblem(Reason.WEAK_KEY, cert, role, {"key": type(pub).__name__.removesuffix("PublicKey").lstrip("_")})


def _signature_problem(cert: x509.Certificate, role: Role) -> ChainProblem | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return ChainProblem(Reason.WEAK_SIGNATURE, cert, role, {"algorithm": cert.signature_algorithm_oid.dotted_string})
    if algorithm is not None and algorithm.name in WEAK_HASHES:
        return ChainProblem(Reason.WEAK_SIGNATURE, cert, role, {"algorithm": hash_label(algorithm.name)})
    return None


def _dns_in_subtree(name: str, base: str) -> bool:
    name, base = name.lower().rstrip("."), base.lower().rstrip(".")
    if base.startswith("."):
        return name.endswith(base)
    return name == base or name.endswith("." + base)


def _wildcard_may_match(pattern: str, base: str) -> bool:
    """A ``*.x`` name may stand for a name in *base*'s subtree."""
    suffix = pattern[2:].lower()
    base = base.lower().lstrip(".")
    return _dns_in_subtree(suffix, base) or base.endswith("." + suffix)


def _leaf_names(leaf: x509.Certificate) -> list[x509.GeneralName]:
    san = _san(leaf)
    return list(san) if san is not None else []


def _nc_problem(ca: x509.Certificate, role: Role, leaf: x509.Certificate) -> ChainProblem | None:
    ext = _ext(ca, x509.NameConstraints)
    if ext is None:
        return None
    nc: x509.NameConstraints = ext.value
    if not nc.permitted_subtrees and not nc.excluded_subtrees:
        return ChainProblem(Reason.NAME_CONSTRAINTS_INVALID, ca, role)
    names = _leaf_names(leaf)
    constraints = len(nc.permitted_subtrees or ()) + len(nc.excluded_subtrees or ())
    if len(names) * constraints > NAME_CONSTRAINT_CHECKS:
        # As OpenSSL does: refuse rather than spend minutes comparing.
        return ChainProblem(Reason.NAME_CONSTRAINTS_BUDGET, ca, role,
                       {"names": len(names), "constraints": constraints, "limit": NAME_CONSTRAINT_CHECKS})
    for general in names:
        value = general.value
        if isinstance(general, x509.DNSName):
            same = [g.value for g in (nc.excluded_subtrees or []) if isinstance(g, x509.DNSName)]
            for base in same:
                if _dns_in_subtree(value, base) or (value.startswith("*.") and _wildcard_may_match(value, base)):
                    return ChainProblem(Reason.NAME_EXCLUDED, ca, role, {"name": value, "constraint": base})
            permitted = [g.value for g in (nc.permitted_subtrees or []) if isinstance(g, x509.DNSName)]
            if permitted and not any(_dns_in_subtree(value, base) for base in permitted):
                return ChainProblem(Reason.NAME_NOT_PERMITTED, ca, role,
                               {"name": value, "constraint": ", ".join(permitted)})
        elif isinstance(general, x509.IPAddress):
            for g in nc.excluded_subtrees or []:
                if isinstance(g, x509.IPAddress) and isinstance(g.value, (ipaddress.IPv4Network,
                                                                          ipaddress.IPv6Network)):
                    if value in g.value:
                        return ChainProblem(Reason.NAME_EXCLUDED, ca, role, {"name": str(value), "constraint": str(g.value)})
            permitted_ip = [g.value for g in (nc.permitted_subtrees or []) if isinstance(g, x509.IPAddress)
                            and isinstance(g.value, (ipaddress.IPv4Network, ipaddress.IPv6Network))]
            if permitted_ip and not any(value in net for net in permitted_ip):
                return ChainProblem(Reason.NAME_NOT_PERMITTED, ca, role,
                               {"name": str(value), "constraint": ", ".join(map(str, permitted_ip))})
    return None


def _aki_problem(child: x509.Certificate, issuer: x509.Certificate | None, role: Role) -> ChainProblem | None:
    aki_ext = _ext(child, x509.AuthorityKeyIdentifier)
    if aki_ext is None:
        return None
    aki: x509.AuthorityKeyIdentifier = aki_ext.value
    if aki.key_identifier is None:
        return ChainProblem(Reason.KEY_IDENTIFIERS, child, role)
    if issuer is None:
        return None
    ski_ext = _ext(issuer, x509.SubjectKeyIdentifier)
    if ski_ext is not None and ski_ext.value.digest != aki.key_identifier:
        return ChainProblem(Reason.KEY_IDENTIFIERS, child, role)
    if aki.authority_cert_serial_number is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                serial = issuer.serial_number
        except ValueError:
            serial = None
        if serial != aki.authority_cert_serial_number:
            return ChainProblem(Reason.KEY_IDENTIFIERS, child, role)
    if child is issuer and (aki.authority_cert_issuer or aki.authority_cert_serial_number is not None):
        # A root naming an issuer of its own cannot be found by clients that
        # use these fields (OpenSSL) to find the issuer.
        return ChainProblem(Reason.KEY_IDENTIFIERS, child, role)
    return None


def _wildcard_problem(leaf: x509.Certificate) -> ChainProblem | None:
    for general in _leaf_names(leaf):
        if not isinstance(general, x509.DNSName) or "*" not in general.value:
            continue
        value = general.value.lower()
        if not value.startswith("*.") or "*" in value[2:]:
            return ChainProblem(Reason.WILDCARD, leaf, Role.LEAF, {"pattern": general.value})
        if _is_public_suffix(value[2:]):
            return ChainProblem(Reason.WILDCARD, leaf, Role.LEAF, {"pattern": general.value})
    return None


@lru_cache(maxsize=2)
def _psl(icann: bool) -> Any:
    # Names under an unknown top-level domain (a private "corp" or "lan") are
    # not public suffixes: a private CA may issue *.corp.
    return PublicSuffixList(accept_unknown=False, only_icann=icann)


def _is_public_suffix(name: str, icann: bool = True) -> bool:
    """Whether *name* is a public suffix: of the ICANN section (``co.jp``:
    BR 3.2.2.6 forbids a wildcard there) or, with ``icann=False``, also of
    the private section (``s3.amazonaws.com``, where the operator itself
    holds wildcard certificates)."""
    name = name.rstrip(".")
    if "." not in name:
        return True
    try:
        return bool(_psl(icann).is_public(name))
    except Exception:  # a name the list cannot parse is not a suffix it knows
        return False


def _private_suffix_wildcard(leaf: x509.Certificate) -> str | None:
    for general in _leaf_names(leaf):
        if isinstance(general, x509.DNSName) and general.value.startswith("*."):
            if _is_public_suffix(general.value[2:], icann=False):
                return general.value
    return None


def _cn_warning(leaf: x509.Certificate) -> Warning_ | None:
    """BR 7.1.4.3: a common name must be one of the subjectAltNames.  Clients
    ignore the common name when subjectAltNames are present, and private CAs
    routinely put a label or an old name there: a warning, never a refusal."""
    san = _san(leaf)
    if san is None:
        return None
    try:
        cns = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    except PARSE_ERRORS:
        return None
    values = set(san_values(san))
    for cn in cns:
        if cn not in values:
            return Warning_(Rule.CN_NOT_IN_SAN, leaf, {"cn": cn})
    return None


def _findings(path: Sequence[x509.Certificate], hostname: str | None, at: dt.datetime) -> list[ChainProblem]:
    """Every rule *path* (leaf first, anchor last) breaks, in the order a
    client checks them; empty when none of these checks finds anything."""
    found: list[ChainProblem] = []
    leaf = path[0]
    for i, cert in enumerate(path):
        role = _role(i, path)
        if cert.not_valid_after_utc < at:
            found.append(ChainProblem(Reason.EXPIRED, cert, role, {"date": local_date(cert.not_valid_after_utc)}))
        elif cert.not_valid_before_utc > at:
            found.append(ChainProblem(Reason.NOT_YET_VALID, cert, role, {"date": cert.not_valid_before_utc}))
    for i, cert in enumerate(path):
        role = _role(i, path)
        try:
            # RFC 5280 4.1.2.4/4.1.2.6: the issuer, and a CA's subject, are never empty.
            if len(cert.issuer) == 0 or (i > 0 and len(cert.subject) == 0):
                found.append(ChainProblem(Reason.EMPTY_NAME, cert, role))
        except PARSE_ERRORS:
            found.append(ChainProblem(Reason.MALFORMED, cert, role))
        if _version(cert) != x509.Version.v3:
            found.append(ChainProblem(Reason.VERSION, cert, role))
        serial, octets = _serial_octets(cert)
        if serial < 0 or octets > 20:
            found.append(ChainProblem(Reason.SERIAL, cert, role, {"octets": octets}))
        if (p := _key_problem(cert, role)) is not None:
            found.append(p)
        if role is not Role.ROOT and (p := _signature_problem(cert, role)) is not None:
            found.append(p)
        exts = _extensions(cert)
        if exts is None:
            found.append(ChainProblem(Reason.MALFORMED, cert, role))
            continue
        for ext in exts:
            if ext.critical and ext.oid not in _STANDARD_CRITICAL:
                found.append(ChainProblem(Reason.CRITICAL_EXTENSION, cert, role, {"extension": _ext_name(ext.oid)}))
    # The server certificate.
    bc = _ext(leaf, x509.BasicConstraints)
    if bc is not None and bc.value.ca and len(path) > 1:
        found.append(ChainProblem(Reason.LEAF_IS_CA, leaf, Role.LEAF))
    ku = _ext(leaf, x509.KeyUsage)
    if ku is not None and (ku.value.key_cert_sign or not any(getattr(ku.value, f) for f in _SERVER_KU)):
        found.append(ChainProblem(Reason.LEAF_KEY_USAGE, leaf, Role.LEAF))
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    if eku is not None and ExtendedKeyUsageOID.SERVER_AUTH not in eku.value:
        found.append(ChainProblem(Reason.NOT_SERVER, leaf, Role.LEAF))
    if eku is not None and eku.critical:
        found.append(ChainProblem(Reason.EXTENSION_CRITICALITY, leaf, Role.LEAF,
                             {"extension": _ext_name(eku.oid)}))
    san = _ext(leaf, x509.SubjectAlternativeName)
    if san is None:
        found.append(ChainProblem(Reason.NO_SAN, leaf, Role.LEAF))
    else:
        empty_subject = len(leaf.subject) == 0
        if san.critical != empty_subject:
            found.append(ChainProblem(Reason.EXTENSION_CRITICALITY, leaf, Role.LEAF,
                                 {"extension": _ext_name(san.oid)}))
        if (p := _wildcard_problem(leaf)) is not None:
            found.append(p)
        if hostname is not None and not covers_hostname(leaf, hostname):
            found.append(ChainProblem(Reason.HOSTNAME, leaf, Role.LEAF, {"hostname": hostname}))
    aia = _ext(leaf, x509.AuthorityInformationAccess)
    if aia is not None and aia.critical:
        found.append(ChainProblem(Reason.EXTENSION_CRITICALITY, leaf, Role.LEAF, {"extension": _ext_name(aia.oid)}))
    # The CA certificates, from the leaf's issuer up.
    for i in range(1, len(path)):
        ca, role = path[i], _role(i, path)
        if ca is leaf:
            continue
        bc = _ext(ca, x509.BasicConstraints)
        if bc is None or not bc.value.ca:
            found.append(ChainProblem(Reason.NOT_CA, ca, role))
        else:
            if not bc.critical:
                found.append(ChainProblem(Reason.CA_BASIC_CONSTRAINTS, ca, role))
            below = sum(1 for c in path[1:i] if not (c.subject == c.issuer))
            if bc.value.path_length is not None and below > bc.value.path_length:
                found.append(ChainProblem(Reason.PATH_LENGTH, ca, role,
                                     {"count": bc.value.path_length, "actual": below}))
        ku = _ext(ca, x509.KeyUsage)
        if ku is not None and not ku.value.key_cert_sign:
            found.append(ChainProblem(Reason.CA_KEY_USAGE, ca, role))
        eku = _ext(ca, x509.ExtendedKeyUsage)
        # OpenSSL reads a CA's extended key usage as a limit on what it may
        # certify, and anyExtendedKeyUsage does not name serverAuth.
        if eku is not None and ExtendedKeyUsageOID.SERVER_AUTH not in eku.value:
            found.append(ChainProblem(Reason.CA_NOT_SERVER, ca, role))
        if (p := _nc_problem(ca, role, leaf)) is not None:
            found.append(p)
    # Key identifiers: what OpenSSL uses to find each issuer.
    for i, cert in enumerate(path):
        issuer = path[i + 1] if i + 1 < len(path) else (cert if is_self_signed(cert) else None)
        if (p := _aki_problem(cert, issuer, _role(i, path))) is not None:
            found.append(p)
    return found


# Strict rules checked after the verifier accepted the chain: OpenSSL or the
# CA/Browser Forum refuse what cryptography lets through.
_STRICT = (Reason.NAME_CONSTRAINTS_BUDGET, Reason.EMPTY_NAME, Reason.KEY_IDENTIFIERS, Reason.WILDCARD, Reason.SERIAL, Reason.WEAK_KEY, Reason.WEAK_SIGNATURE,
           Reason.LEAF_KEY_USAGE, Reason.VERSION, Reason.MALFORMED,
           Reason.CRITICAL_EXTENSION, Reason.CA_NOT_SERVER)


def _rule_warnings(path: Sequence[x509.Certificate]) -> list[Warning_]:
    out: list[Warning_] = []
    leaf = path[0]
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    if eku is None:
        out.append(Warning_(Rule.NO_EKU, leaf))
    elif ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku.value:
        out.append(Warning_(Rule.ANY_EKU, leaf))
    for i, cert in enumerate(path):
        self_signed = is_self_signed(cert)
        if not self_signed and _ext(cert, x509.AuthorityKeyIdentifier) is None:
            out.append(Warning_(Rule.NO_AKI, cert))
        if i > 0 and _ext(cert, x509.SubjectKeyIdentifier) is None:
            out.append(Warning_(Rule.NO_SKI, cert))
        if i > 0 and self_signed and _ext(cert, x509.ExtendedKeyUsage) is not None:
            out.append(Warning_(Rule.ROOT_EKU, cert))
        if _serial_octets(cert)[0] == 0:
            out.append(Warning_(Rule.SERIAL_ZERO, cert))
        # RFC 5280 4.2.1.10/4.2.1.11: MUST be critical; the Web PKI lets
        # name constraints be non-critical, and clients accept both.
        for cls in (x509.NameConstraints, x509.PolicyConstraints):
            ext = _ext(cert, cls)
            if ext is not None and not ext.critical:
                out.append(Warning_(Rule.NOT_CRITICAL, cert, {"extension": _ext_name(ext.oid)}))
    if (cn_warning := _cn_warning(leaf)) is not None:
        out.append(cn_warning)
    if (suffix := _private_suffix_wildcard(leaf)) is not None:
        out.append(Warning_(Rule.PRIVATE_SUFFIX_WILDCARD, leaf, {"pattern": suffix}))
    return out


def _explain(path: Sequence[x509.Certificate], hostname: str | None, at: dt.datetime,
             refused: bool) -> ChainProblem | None:
    """The problem to name for *path*: the first our checks find, in the
    order a client checks them; else, when the verifier *refused* the path,
    a refusal that names no certificate; else ``None``.

    cryptography's error text is not an API (its wording changes between
    releases): only the fact that the verifier refused is used, never why.
    """
    found = _findings(path, hostname, at)
    if found:
        return found[0]
    # The verifier refused for a rule our checks could not confirm on any
    # certificate: say what is certainly true rather than guess which one.
    return ChainProblem(Reason.REJECTED) if refused else None


# -- path building ---------------------------------------------------------------

def _valid_at(cert: x509.Certificate, at: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _paths(leaf: x509.Certificate, pool: Sequence[x509.Certificate],
           anchors: Mapping[str, Sequence[x509.Certificate]], at: dt.datetime,
           limit: int = 64) -> list[tuple[list[x509.Certificate], str | None]]:
    """Candidate chains from *leaf* through *pool* by signature: each as
    (path, name of the anchor set it reaches, or ``None``)."""
    by_subject: dict[bytes, list[tuple[str, x509.Certificate]]] = {}
    anchor_fps: dict[bytes, str] = {}
    for name, roots in anchors.items():
        if roots is _public_roots():
            continue
        for root in roots:
            by_subject.setdefault(root.subject.public_bytes(), []).append((name, root))
            anchor_fps.setdefault(_fp(root), name)
    public_name = next((n for n, r in anchors.items() if r is _public_roots()), None)

    def anchor_issuers(cert: x509.Certificate) -> list[tuple[str, x509.Certificate]]:
        key = cert.issuer.public_bytes()
        found = [(n, r) for n, r in by_subject.get(key, []) if issued_by(cert, r)]
        if public_name is not None:
            found += [(public_name, r) for r in _public_by_subject().get(key, ()) if issued_by(cert, r)]
        return found

    results: list[tuple[list[x509.Certificate], str | None]] = []
    index = _Index(pool)

    def walk(path: list[x509.Certificate]) -> None:
        if len(results) >= limit:
            return
        # Each step of the search counts, not only each signature: cached
        # links between same-named CAs could otherwise multiply paths.
        _spend()
        cur = path[-1]
        if len(path) > 1 and _fp(cur) in anchor_fps:
            results.append((path, anchor_fps[_fp(cur)]))
            return
        if is_self_signed(cur) and len(path) > 1:
            results.append((path, None))
            return
        extended = False
        for name, root in anchor_issuers(cur):
            if _fp(root) != _fp(cur):
                results.append(([*path, root], name))
                extended = True
        if len(path) < 10:
            fps = {_fp(c) for c in path}
            for cand in index.issuers(cur):
                if _fp(cand) not in fps:
                    extended = True
                    walk([*path, cand])
        if not extended:
            results.append((path, anchor_fps.get(_fp(cur)) if len(path) > 1 else None))

    walk([leaf])
    return results


def _best_path(candidates: list[tuple[list[x509.Certificate], str | None]],
               at: dt.datetime) -> tuple[list[x509.Certificate], str | None]:
    def rank(item: tuple[list[x509.Certificate], str | None]) -> tuple[int, int, int]:
        path, anchor = item
        invalid = sum(1 for c in path if not _valid_at(c, at))
        return (0 if anchor is not None else 1, invalid, len(path) if anchor is not None else -len(path))

    return min(candidates, key=rank)


def judge(
    leaf: x509.Certificate,
    given: Sequence[x509.Certificate] = (),
    *,
    anchors: Mapping[str, Sequence[x509.Certificate]],
    hostname: str | None = None,
    at: dt.datetime | None = None,
    required: Sequence[str] = (),
) -> Verdict:
    """Judge a server certificate as a verifying mail client would.

    cryptography's RFC 5280 / CA-Browser-Forum verifier (the server verifier
    for *hostname*) builds the path from *given* to one of the *anchors* and
    decides; a few rules it leaves to others (key identifiers, public-suffix
    wildcards, serial numbers, server key usage, weak server keys) are
    checked on the path it returns.  When no anchor is reached, the path the
    given certificates form is checked with its top as a stand-in anchor, so
    a defect no trust could cure is still named.

    Args:
        leaf: the server certificate.
        given: every other certificate handed over, in any order, with
            duplicates, extra and expired ones.
        anchors: named sets of trusted CAs, tried in order (empty sets skipped).
        hostname: the name clients connect to (``None``: trust alone).
        at: the verification time (default now); validity is inclusive at
            both ends (RFC 5280 4.1.2.5).
        required: names of anchor sets the chain is meant to reach (the CA
            the administrator gave): not reaching them is a refusal, not a
            warning.

    Returns:
        The :class:`Verdict`; ``problem`` is ``None`` when nothing is wrong
        beyond, perhaps, an anchor nobody gave.

    Raises:
        WorkLimitExceeded: building the path needs more than
            :data:`SIGNATURE_BUDGET` signature checks (hostile input).
    """
    with work_budget():
        return _judge(leaf, given, anchors=anchors, hostname=hostname, at=at, required=required)


def _judge(leaf: x509.Certificate, given: Sequence[x509.Certificate], *,
           anchors: Mapping[str, Sequence[x509.Certificate]], hostname: str | None,
           at: dt.datetime | None, required: Sequence[str]) -> Verdict:
    at = at or clock.now()
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    pool = [c for c in unique(given) if _fp(c) != _fp(leaf)]
    self_signed = is_self_signed(leaf)
    try:
        subject = _verify_name(leaf, hostname)
    except ValueError:
        return Verdict(False, [leaf], problem=ChainProblem(Reason.HOSTNAME, leaf, Role.LEAF,
                                                      {"hostname": hostname or ""}),
                       anchor_known=True, self_signed=self_signed)
    refused_by: set[str] = set()  # the anchor sets whose verification refused the chain
    for name, roots in anchors.items():
        if not roots:
            continue
        store = _public_store() if roots is _public_roots() else Store(list(roots))
        try:
            path = _run_verifier(leaf, pool, store, subject, at)
        except (VerificationError, ValueError):  # ValueError: a certificate the verifier cannot read
            refused_by.add(name)
            continue
        verdict = Verdict(True, path, anchor=name, anchor_known=True, self_signed=self_signed)
        strict = [p for p in _findings(path, hostname, at) if p.reason in _STRICT]
        if strict:
            verdict.trusted, verdict.problem = False, strict[0]
        # Mozilla vets its roots; their own quirks are not the administrator's.
        verdict.warnings = _rule_warnings(path[:-1] if name == Anchor.PUBLIC and len(path) > 1 else path)
        verdict.left_out = _left_out(path, pool)
        return verdict

    candidates = _paths(leaf, pool, anchors, at)
    path, reached = _best_path(candidates, at) if candidates else ([leaf], None)
    verdict = Verdict(False, path, anchor=None, self_signed=self_signed)
    verdict.left_out = _left_out(path, pool)
    refused = reached in refused_by if reached else bool(refused_by)
    if reached is not None:
        verdict.anchor_known = True
        verdict.problem = _explain(path, hostname, at, refused) or _issuer_problem(path, anchors)
        verdict.warnings = _rule_warnings(path)
        return verdict
    # No known anchor signs the top of the chain: check what no anchor could
    # cure, with the top standing in for the anchor nobody gave.
    stand_in = path[-1]
    try:
        _run_verifier(leaf, [c for c in path[1:-1]], Store([stand_in]), subject, at)
        hypo_refused = False
    except (VerificationError, ValueError):
        hypo_refused = True
    defect = _explain(path, hostname, at, hypo_refused) if (hypo_refused or len(path) == 1) else None
    if defect is None:
        defect = next((p for p in _findings(path, hostname, at) if p.reason in _STRICT), None)
    if defect is not None and not (len(path) == 1 and defect.reason in (Reason.LEAF_IS_CA,)):
        verdict.problem, verdict.anchor_known = defect, True
    elif any(anchors.get(n) for n in required):
        verdict.problem, verdict.anchor_known = _issuer_problem(path, anchors, required), True
    else:
        verdict.problem = _issuer_problem(path, anchors)
    verdict.warnings = _rule_warnings(path)
    return verdict


def _left_out(path: Sequence[x509.Certificate], pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    on_path = {_fp(c) for c in path}
    return [c for c in pool if _fp(c) not in on_path]


def _issuer_problem(path: Sequence[x509.Certificate], anchors: Mapping[str, Sequence[x509.Certificate]],
                    required: Sequence[str] = ()) -> ChainProblem:
    last = path[-1]
    if len(path) == 1 and is_self_signed(last):
        return ChainProblem(Reason.SELF_SIGNED, last, Role.LEAF)
    if required:
        given = [c for n in required for c in anchors.get(n, ())]
        return ChainProblem(Reason.NOT_GIVEN_ANCHOR, last, _role(len(path) - 1, path),
                       {"anchor": [Msg.of("chain.name.plain", name=display_name(c.subject)) for c in given]})
    if is_self_signed(last):
        return ChainProblem(Reason.UNTRUSTED_ROOT, last, Role.ROOT)
    return ChainProblem(Reason.UNKNOWN_ISSUER, last, _role(len(path) - 1, path),
                   {"issuer": display_name(last.issuer)})


def verify_trust(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    *,
    anchors: Mapping[str, Sequence[x509.Certificate]],
    hostname: str | None = None,
    at: dt.datetime | None = None,
) -> TrustResult:
    """Verify the chain as a TLS client would, against each anchor set in turn.

    A thin view of :func:`judge` for callers that need only "trusted, and
    if not, why".

    Returns:
        The first anchor set that verifies, or a plain-words reason.
    """
    verdict = judge(leaf, intermediates, anchors=anchors, hostname=hostname, at=at)
    if verdict.trusted:
        return TrustResult(True, verdict.anchor, verdict.self_signed, None, None)
    problem = verdict.problem or _issuer_problem(verdict.path, anchors)
    if verdict.self_signed and problem.reason not in (Reason.EXPIRED, Reason.NOT_YET_VALID) \
            and not verdict.anchor_known:
        # Whatever else a stand-in check tripped on, no anchor vouches for a
        # self-signed certificate: that is what the administrator needs to hear.
        problem = ChainProblem(Reason.SELF_SIGNED, leaf, Role.LEAF)
    return TrustResult(False, None, verdict.self_signed, problem.msg, problem)


# -- description for previews --------------------------------------------------

def name_text(name: x509.Name | None, lang: str) -> str:
    """:func:`display_name` rendered in *lang*: the one way names are shown."""
    shown = display_name(name)
    return shown.render(lang) if isinstance(shown, Msg) else shown


def describe(cert: x509.Certificate, lang: str = "en") -> dict[str, Any]:
    """Facts about *cert* for previews and JSON output (no key material).

    Returns:
        ``subject``, ``issuer`` (RFC 4514; "(empty name)" in *lang* when
        empty), ``not_before``, ``not_after`` (ISO 8601, UTC), ``sans``,
        ``sha256`` (colon-separated fingerprint), ``is_ca``, ``self_signed``
        and ``key`` (e.g. ``"RSA 2048"``, ``"EC P-256"``).
    """
    try:
        key = key_summary(cert)
    except (ValueError, UnsupportedAlgorithm):
        key = "?"
    return {
        "subject": name_text(cert.subject, lang),
        "issuer": name_text(cert.issuer, lang),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sans": _sans(cert),
        "sha256": cert_fingerprint(cert),
        "is_ca": is_ca(cert),
        "self_signed": is_self_signed(cert),
        "key": key,
    }
