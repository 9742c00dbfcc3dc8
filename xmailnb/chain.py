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

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import clock
from .errors import InputError
from .i18n import Msg

__all__ = [
    "is_ca",
    "is_self_signed",
    "issued_by",
    "ChainPlan",
    "plan_chain",
    "unique",
    "ChainIssue",
    "check_order",
    "hostnames",
    "covers_hostname",
    "public_roots",
    "TrustResult",
    "verify_trust",
    "describe",
]


# -- single certificates -------------------------------------------------------

def is_ca(cert: x509.Certificate) -> bool:
    """Whether *cert* is a CA certificate (BasicConstraints ``cA`` set).

    A version 1 certificate has no extensions at all; old self-signed roots
    are v1, so a self-signed v1 certificate counts as a CA.
    """
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1 and is_self_signed(cert)


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether *issuer* signed *child*: names chain and the signature verifies."""
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether *cert* names itself as issuer and its signature verifies with
    its own key."""
    return cert.subject == cert.issuer and issued_by(cert, cert)


def _fp(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _spki(cert: x509.Certificate) -> bytes:
    try:
        return cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, UnsupportedAlgorithm):
        return _fp(cert)  # a key type we cannot read matches only itself


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
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if san.get_values_for_type(x509.DNSName) or san.get_values_for_type(x509.IPAddress):
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        return ExtendedKeyUsageOID.SERVER_AUTH in eku
    except x509.ExtensionNotFound:
        return False


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
        unrelated: given certificates left out because another copy of the
            same CA (same name and key, e.g. a cross-signed variant) already
            serves in the chain.
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


def _pick_leaf(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    def issues_others(c: x509.Certificate) -> bool:
        return any(o is not c and issued_by(o, c) for o in certs)

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
                            subjects="; ".join(_subject(c) for c in candidates), count=len(candidates))
    return candidates[0]


def _find_issuer(child: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    found = [c for c in pool if c is not child and issued_by(child, c)]
    if not found:
        return None
    if len(found) > 1:
        # Cross-signed variants of one CA all verify.  Prefer a CA, then one
        # that ends the chain (self-signed) or whose own issuer was given, so
        # the chain reaches as far as the given certificates allow.
        def rank(c: x509.Certificate) -> tuple[bool, bool]:
            reaches = is_self_signed(c) or any(o is not c and issued_by(c, o) for o in pool)
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
            several server certificates (``chain.leaf.several``), or a given
            certificate is not part of the leaf's chain
            (``chain.unrelated``, ``chain.wrong_issuer``).
        ValueError: *certs* is empty and no *leaf* was given.
    """
    anchors = anchors or {}
    pool = unique([*certs, leaf] if leaf is not None else certs)
    if not pool:
        raise ValueError("plan_chain needs at least one certificate")
    if leaf is None:
        leaf = _pick_leaf(pool)
    else:
        leaf = next(c for c in pool if _fp(c) == _fp(leaf))

    chain = [leaf]
    remaining = [c for c in pool if c is not leaf]
    while not is_self_signed(chain[-1]):
        issuer = _find_issuer(chain[-1], remaining)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)

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

    members = {(c.subject.public_bytes(), _spki(c)) for c in chain}
    for cert in remaining:
        if (cert.subject.public_bytes(), _spki(cert)) in members:
            plan.unrelated.append(cert)
            continue
        child = next((c for c in chain if c.issuer == cert.subject and not is_self_signed(c)), None)
        if child is not None:
            raise InputError.of("chain.wrong_issuer", "chain.wrong_issuer.fix", field="chain",
                                subject=_subject(cert), child=_subject(child))
        raise InputError.of("chain.unrelated", "chain.unrelated.fix", field="chain",
                            subject=_subject(cert), leaf=_subject(leaf))
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
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _sans(cert: x509.Certificate) -> list[str]:
    san = _san(cert)
    if san is None:
        return []
    return [*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def hostnames(cert: x509.Certificate) -> list[str]:
    """The names *cert* is for: DNS and IP subjectAltNames, or the common
    name when the certificate has no subjectAltName extension at all."""
    if _san(cert) is not None:
        return _sans(cert)
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def covers_hostname(cert: x509.Certificate, hostname: str) -> bool:
    """Whether a client connecting to *hostname* accepts *cert*'s names.

    Follows RFC 6125 as mail clients do: wildcards cover exactly one label,
    the common name is ignored, an IP address must be an IP subjectAltName.
    Internationalised names are compared in their ASCII (punycode) form.

    The matching is cryptography's own (its server verifier), run on a
    policy that judges the name alone: the certificate is its own trust
    anchor, the clock is set inside its validity and extensions are not
    judged.  Trust, validity and key strength have their own checks.
    """
    from cryptography.x509.verification import (Criticality, ExtensionPolicy, PolicyBuilder, Store,
                                                VerificationError)

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
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    names_only = ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    try:
        verifier = (PolicyBuilder().store(Store([cert])).time(cert.not_valid_before_utc)
                    .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=names_only)
                    .build_server_verifier(subject))
        verifier.verify(cert, [])
    except (VerificationError, ValueError):
        return False
    return True


def _ascii_hostname(name: str) -> str:
    if name.isascii():
        return name.lower()
    import idna

    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(str(exc)) from None


# -- trust ---------------------------------------------------------------------

@lru_cache(maxsize=1)
def _public_roots() -> tuple[x509.Certificate, ...]:
    import importlib.util
    import os
    import warnings

    # certifi.where() (and even importing certifi) goes through
    # importlib.resources, which costs more than parsing the whole bundle;
    # the file sits next to the module in every wheel.  Distributions that
    # patch where() drop that file, and get their own answer.
    spec = importlib.util.find_spec("certifi")
    path = os.path.join(os.path.dirname(spec.origin), "cacert.pem") if spec and spec.origin else ""
    if not os.path.isfile(path):
        import certifi

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


@dataclass
class TrustResult:
    """Whether clients trusting some anchor set would accept the chain.

    Attributes:
        trusted: the chain verified against one anchor set.
        anchor: the name of that set (``"public"``, ``"certs.pem"``, ...).
        self_signed: the server certificate is self-signed.
        reason: why it did not verify, in plain words (``None`` if trusted).
    """

    trusted: bool
    anchor: str | None = None
    self_signed: bool = False
    reason: Msg | None = None


def _verify_name(leaf: x509.Certificate, hostname: str | None) -> Any:
    from cryptography.x509.verification import DNSName, IPAddress

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
            return DNSName("xmailnb-check" + first[1:] if first.startswith("*.") else first)
        ips = san.get_values_for_type(x509.IPAddress)
        if ips:
            return IPAddress(ips[0])
    # No usable name: the verifier will fail on the missing subjectAltName.
    return DNSName("xmailnb-check.invalid")


# Lower rank wins when several anchor sets fail for different reasons: a
# concrete defect says more than "not signed by anyone we know".
_REASON_RANK = {
    "chain.trust.expired": 0, "chain.trust.not_yet_valid": 0, "chain.trust.no_san": 1,
    "chain.trust.hostname": 1, "chain.trust.not_server": 1, "chain.trust.weak": 1,
    "chain.trust.not_ca": 2, "chain.trust.rejected": 3, "chain.trust.bad_signature": 4,
    "chain.trust.untrusted_root": 5, "chain.trust.unknown_issuer": 5, "chain.trust.self_signed": 5,
}


def _validity_reason(certs: Sequence[x509.Certificate], at: dt.datetime) -> Msg | None:
    for cert in certs:
        if cert.not_valid_after_utc < at:
            return Msg.of("chain.trust.expired", subject=_subject(cert),
                          date=cert.not_valid_after_utc.date().isoformat())
        if cert.not_valid_before_utc > at:
            return Msg.of("chain.trust.not_yet_valid", subject=_subject(cert),
                          date=cert.not_valid_before_utc.isoformat(timespec="minutes"))
    return None


def _issuer_reason(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]) -> Msg:
    if is_self_signed(leaf):
        return Msg.of("chain.trust.self_signed")
    try:
        plan = plan_chain([leaf, *intermediates], leaf=leaf)
        last = plan.root or plan.last
    except InputError:
        last = intermediates[-1] if intermediates else leaf
    if is_self_signed(last):
        return Msg.of("chain.trust.untrusted_root", subject=_subject(last))
    return Msg.of("chain.trust.unknown_issuer", issuer=last.issuer.rfc4514_string())


def _reason(text: str, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
            roots: Sequence[x509.Certificate], at: dt.datetime, hostname: str | None) -> Msg:
    """Translate cryptography's VerificationError text into one of our messages.

    The library's wording is not an API, so every branch falls back to
    something true: an unmatched text becomes ``chain.trust.rejected``.
    """
    t = text.lower()
    if "not valid at validation time" in t or "expired" in t:
        return (_validity_reason([leaf, *intermediates], at) or _validity_reason(roots, at)
                or Msg.of("chain.trust.rejected"))
    if "no matching subjectaltname" in t:
        if hostname is not None:
            return Msg.of("chain.trust.hostname", hostname=hostname)
        return Msg.of("chain.trust.no_san")
    if "subjectaltname" in t:
        return Msg.of("chain.trust.no_san")
    if "eku" in t or "extendedkeyusage" in t or "extended key usage" in t:
        return Msg.of("chain.trust.not_server")
    if "basicconstraints" in t or "keycertsign" in t or "path length" in t or "pathlen" in t:
        return Msg.of("chain.trust.not_ca")
    if "forbidden" in t or "weak" in t or "unsupported" in t:
        return Msg.of("chain.trust.weak")
    if "no interior errors" in t or "signature does not match" in t:
        # No anchor signs the top of the chain ("does not match": a CA of the
        # right name but another key, i.e. not the CA that issued it).
        return _issuer_reason(leaf, intermediates)
    if "signature" in t:
        return Msg.of("chain.trust.bad_signature")
    return Msg.of("chain.trust.rejected")


def verify_trust(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    *,
    anchors: Mapping[str, Sequence[x509.Certificate]],
    hostname: str | None = None,
    at: dt.datetime | None = None,
) -> TrustResult:
    """Verify the chain as a TLS client would, against each anchor set in turn.

    Uses cryptography's RFC 5280 / CA-Browser-Forum verifier, which also
    requires what clients require (serverAuth usage, a subjectAltName, sane
    CA extensions).

    Args:
        leaf: the server certificate.
        intermediates: the certificates served after it (a root among them
            is harmless).
        anchors: named sets of trusted roots, tried in order; empty sets are
            skipped.
        hostname: the name to verify for; ``None`` judges trust alone, using
            a name the leaf holds.
        at: the time to verify at (default now).

    Returns:
        The first anchor set that verifies, or a plain-words reason.
    """
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    at = at or clock.now()
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    self_signed = is_self_signed(leaf)
    best: Msg | None = None
    try:
        subject = _verify_name(leaf, hostname)
    except ValueError:
        return TrustResult(False, None, self_signed, Msg.of("chain.trust.hostname", hostname=hostname or ""))
    for name, roots in anchors.items():
        if not roots:
            continue
        try:
            verifier = PolicyBuilder().store(Store(list(roots))).time(at).build_server_verifier(subject)
            verifier.verify(leaf, list(intermediates))
        except VerificationError as exc:
            reason = _reason(str(exc), leaf, intermediates, roots, at, hostname)
        except ValueError:
            # A certificate the verifier cannot even parse as a chain member.
            reason = Msg.of("chain.trust.rejected")
        else:
            return TrustResult(True, name, self_signed, None)
        if best is None or _REASON_RANK.get(reason.key, 3) < _REASON_RANK.get(best.key, 3):
            best = reason
    if best is None:
        # Nothing to verify against: say what a client would find first.
        best = _validity_reason([leaf, *intermediates], at) or _issuer_reason(leaf, intermediates)
    if self_signed and best.key not in ("chain.trust.expired", "chain.trust.not_yet_valid"):
        # Whatever else the verifier tripped on first (a self-signed leaf
        # lacks the CA extensions it wants), no anchor vouches for it: that
        # is what the administrator needs to hear.
        best = Msg.of("chain.trust.self_signed")
    return TrustResult(False, None, self_signed, best)


# -- description for previews --------------------------------------------------

def describe(cert: x509.Certificate) -> dict[str, Any]:
    """Facts about *cert* for previews and JSON output (no key material).

    Returns:
        ``subject``, ``issuer`` (RFC 4514), ``not_before``, ``not_after``
        (ISO 8601, UTC), ``sans``, ``sha256`` (colon-separated fingerprint),
        ``is_ca``, ``self_signed`` and ``key`` (e.g. ``"RSA 2048"``,
        ``"EC P-256"``).
    """
    from .certfiles import cert_fingerprint
    from .keys import key_summary

    try:
        key = key_summary(cert)
    except (ValueError, UnsupportedAlgorithm):
        key = "?"
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sans": _sans(cert),
        "sha256": cert_fingerprint(cert),
        "is_ca": is_ca(cert),
        "self_signed": is_self_signed(cert),
        "key": key,
    }
