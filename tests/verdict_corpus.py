"""The differential corpus: edge-case chains judged by xmailnb and by OpenSSL.

Every case is made at test time, relative to one verification instant
``at`` (the product's frozen clock; ``openssl verify -attime`` gets the same
instant), so no calendar date appears anywhere.  A case is a trust anchor
file (``--ca`` / ``-CAfile``), the server certificate, what is handed over
as the chain (``--chain`` / ``-untrusted``) and the host name.

``differs`` documents a deliberate difference from ``openssl verify
-purpose sslserver``; docs/verdicts.md lists the same rules and why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

import x509lab as lab
from x509lab import Cert, key_for, make

HOST = "mail.example.jp"
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
YEAR = dt.timedelta(days=365)
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")

#: Deliberate differences, by the rule that makes them (the keys are cited
#: by docs/verdicts.md).  "stricter": xmailnb refuses what OpenSSL accepts.
STRICTER = {
    "weak-rsa": "RSA keys below 2048 bits: CA/Browser Forum BR 6.1.5; every browser and current mail "
                "clients refuse them; OpenSSL's verify accepts them at its default level.",
    "weak-signature": "SHA-1 signatures: forbidden by the CA/Browser Forum since 2016 and refused by "
                      "clients; `openssl verify` only refuses them with -auth_level 2.",
    "public-suffix-wildcard": "A wildcard on a public suffix (*.co.jp): forbidden by BR 3.2.2.6; "
                              "OpenSSL has no public-suffix list.",
    "partial-wildcard": "A wildcard inside a label (mail*.example.jp): RFC 6125 6.4.3 lets clients "
                        "refuse it and browsers and cryptography do; OpenSSL accepts it.",
    "no-san": "No subjectAltName: clients have ignored the common name since RFC 6125 and BR 7.1.2.7.12 "
              "requires the extension; OpenSSL still falls back to the common name.",
    "v1": "Version 1 certificates carry no extensions (no subjectAltName, no CA flag); BR and RFC 5280 "
          "need v3; OpenSSL accepts a v1 leaf by its common name and a self-signed v1 root.",
    "leaf-ca": "A server certificate marked as a CA (cA=TRUE): BR 7.1.2.7.8 forbids it and "
               "cryptography refuses it; OpenSSL accepts it for a TLS server.",
    "wildcard-vs-excluded": "A wildcard name that could stand for an excluded name (*.example.jp under an "
                            "exclusion of x.example.jp): cryptography refuses it, OpenSSL compares the "
                            "pattern only as a string.",
    "ca-without-bc": "A CA certificate whose basicConstraints is not marked critical: RFC 5280 4.2.1.9 "
                     "MUST; cryptography refuses it, OpenSSL does not look.",
    "serial": "A serial number longer than 20 octets or negative: RFC 5280 4.1.2.2; OpenSSL does not check.",
    "malformed": "A malformed extension that OpenSSL never decodes while verifying: xmailnb refuses "
                 "any certificate it cannot read completely.",
}
INCLUSIVE = {
    "not-after-instant": "At the notAfter instant itself the certificate is still valid (RFC 5280 "
                         "4.1.2.5: 'through'); OpenSSL 3.0 treats that second as expired.",
}


@dataclass
class Case:
    name: str
    category: str
    trusted: list[Cert]
    leaf: Cert
    chain: list[Cert] = field(default_factory=list)
    hostname: str = HOST
    differs: str | None = None  # a key of STRICTER or INCLUSIVE
    check: Callable[[Cert], None] | None = None  # asserts the defect is really there
    fmt: str = "pem"  # how xmailnb gets the files: pem, der, p7b, p7b-pem, bundle, p12, crlf, separate
    warns: str | None = None  # a rule warning xmailnb must name (catalog key)


class Lab:
    """Certificate factory bound to the verification instant."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def root(self, tag: str = "r", **kw) -> Cert:
        kw.setdefault("not_before", -YEAR)
        kw.setdefault("not_after", 10 * YEAR)
        kw.setdefault("ca", True)
        kw.setdefault("eku", None)
        kw.setdefault("sans", None)
        kw.setdefault("key", key_for(f"root-{tag}", *kw.pop("keyspec", ("ec", 256))))
        return make(kw.pop("cn", f"Corpus Root {tag}"), at=self.at, **kw)

    def inter(self, issuer: Cert, tag: str = "i", **kw) -> Cert:
        kw.setdefault("not_before", -YEAR)
        kw.setdefault("not_after", 5 * YEAR)
        kw.setdefault("ca", True)
        kw.setdefault("eku", None)
        kw.setdefault("sans", None)
        kw.setdefault("key", key_for(f"inter-{tag}", *kw.pop("keyspec", ("ec", 256))))
        return make(kw.pop("cn", f"Corpus Intermediate {tag}"), issuer=issuer, at=self.at, **kw)

    def leaf(self, issuer: Cert, cn: str = HOST, **kw) -> Cert:
        kw.setdefault("key", key_for(f"leaf-{cn}-{kw.pop('tag', '')}", *kw.pop("keyspec", ("ec", 256))))
        return make(cn, issuer=issuer, at=self.at, **kw)


def _malformed_ext(oid: x509.ObjectIdentifier, raw: bytes, critical: bool = False) -> tuple:
    return (x509.UnrecognizedExtension(oid, raw), critical)


def _reads_fail(attr: str) -> Callable[[Cert], None]:
    def check(c: Cert) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                getattr(c.cert, attr)
            except Exception:
                return
        raise AssertionError(f"{attr} of the certificate is readable: the defect was not made")

    return check


P256_EXPLICIT = bytes.fromhex(
    # SpecifiedECDomain for P-256 (RFC 3279), replacing the namedCurve OID.
    "3081f7020101302c06072a8648ce3d0101022100ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
    "305b0420ffffffff00000001000000000000000000000000fffffffffffffffffffffffc04205ac635d8aa3a93e7b3ebbd5576"
    "9886bc651d06b0cc53b0f63bce3c3e27d2604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e12c"
    "4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ecec"
    "bb6406837bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551020101")
P256_OID = bytes.fromhex("06082a8648ce3d030107")


def explicit_curve(c: Cert, signer: Cert) -> Cert:
    """*c* with its P-256 key written with explicit curve parameters."""

    def edit(fields: list[bytes]) -> list[bytes]:
        out = []
        for f in fields:
            if P256_OID in f and f.startswith(b"\x30") and b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" in f:
                # SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { ecPublicKey, params }, BIT STRING }
                _t, head, _n, _e = lab._read_tlv(f, 0)
                _t2, h2, n2, end_alg = lab._read_tlv(f, head)
                alg = f[head:end_alg]
                new_alg = lab.tlv(0x30, alg[h2:].replace(P256_OID, P256_EXPLICIT))
                f = lab.tlv(0x30, new_alg + f[end_alg:])
            out.append(f)
        return out

    return lab.resign(c, signer, edit)


def corpus(at: dt.datetime) -> list[Case]:  # noqa: C901 - one long list is the point
    L = Lab(at)
    cases: list[Case] = []

    def add(name: str, category: str, trusted: list[Cert], leaf: Cert, chain: list[Cert] | None = None,
            **kw) -> None:
        cases.append(Case(name, category, trusted, leaf, list(chain or []), **kw))

    root = L.root()
    inter = L.inter(root)
    leaf = L.leaf(inter)

    # -- well-formed chains ------------------------------------------------------------
    add("good-root-inter-leaf", "good", [root], leaf, [inter])
    add("good-root-leaf", "good", [root], L.leaf(root, tag="direct"))
    i2 = L.inter(inter, "i2")
    add("good-two-intermediates", "good", [root], L.leaf(i2), [i2, inter])
    add("good-shuffled-bundle", "good", [root], L.leaf(i2), [root, inter, i2])
    add("good-root-in-bundle", "good", [root], leaf, [inter, root])
    add("good-duplicate-intermediate", "good", [root], leaf, [inter, inter])
    rr = L.root("rsa", keyspec=("rsa", 2048))
    ri = L.inter(rr, "rsa", keyspec=("rsa", 2048))
    add("good-rsa-2048", "good", [rr], L.leaf(ri, keyspec=("rsa", 2048), tag="rsa"), [ri])
    add("good-rsa-3072-leaf", "good", [rr], L.leaf(ri, keyspec=("rsa", 3072), tag="rsa3072"), [ri])
    add("good-p384-leaf", "good", [root], L.leaf(inter, keyspec=("ec", 384), tag="p384"), [inter])
    add("good-p521-root", "good", [L.root("p521", keyspec=("ec", 521))],
        L.leaf(L.inter(L.root("p521", keyspec=("ec", 521)), "p521"), tag="p521"),
        [L.inter(L.root("p521", keyspec=("ec", 521)), "p521")])
    p384r = L.root("p384", keyspec=("ec", 384))
    p384i = L.inter(p384r, "p384", keyspec=("ec", 384), hash_alg=hashes.SHA384())
    add("good-sha384-chain", "good", [p384r], L.leaf(p384i, hash_alg=hashes.SHA384(), tag="s384"), [p384i])
    add("good-several-anchors", "good", [L.root("other"), root], leaf, [inter])
    add("good-several-names", "good", [root],
        L.leaf(inter, sans=["smtp.example.jp", HOST, "pop.example.jp"], tag="multi"), [inter])
    add("good-eku-server-only", "eku", [root],
        L.leaf(inter, eku=[ExtendedKeyUsageOID.SERVER_AUTH], tag="srv"), [inter])
    add("good-ku-digital-signature-only", "ku", [root],
        L.leaf(inter, ku={"digital_signature"}, tag="ds"), [inter])
    add("good-ku-key-encipherment-only", "ku", [rr],
        L.leaf(ri, ku={"key_encipherment"}, keyspec=("rsa", 2048), tag="ke"), [ri])
    add("good-no-ku-leaf", "ku", [root], L.leaf(inter, ku=None, tag="noku"), [inter])
    add("good-unknown-noncritical-ext-leaf", "critical", [root],
        L.leaf(inter, extra=[_malformed_ext(UNKNOWN_OID, b"\x05\x00")], tag="unk"), [inter])
    add("good-unknown-noncritical-ext-inter", "critical", [root],
        L.leaf(L.inter(root, "unk", extra=[_malformed_ext(UNKNOWN_OID, b"\x05\x00")]), tag="unki"),
        [L.inter(root, "unk", extra=[_malformed_ext(UNKNOWN_OID, b"\x05\x00")])])
    add("good-idn-a-label", "hostname", [root], L.leaf(inter, cn="xn--eckwd4c7c.example.jp", tag="idn"),
        [inter], hostname="xn--eckwd4c7c.example.jp")
    add("good-uppercase-hostname", "hostname", [root], leaf, [inter], hostname="MAIL.Example.JP")

    # -- extended key usage ------------------------------------------------------------
    add("eku-client-only-leaf", "eku", [root],
        L.leaf(inter, eku=[ExtendedKeyUsageOID.CLIENT_AUTH], tag="cli"), [inter])
    add("eku-code-signing-leaf", "eku", [root],
        L.leaf(inter, eku=[ExtendedKeyUsageOID.CODE_SIGNING], tag="code"), [inter])
    add("eku-email-leaf", "eku", [root],
        L.leaf(inter, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION], tag="smime"), [inter])
    add("eku-client-only-inter", "eku", [root],
        L.leaf(L.inter(root, "cli", eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), tag="clii"),
        [L.inter(root, "cli", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])])
    add("eku-server-inter", "eku", [root],
        L.leaf(L.inter(root, "srv", eku=[ExtendedKeyUsageOID.SERVER_AUTH]), tag="srvi"),
        [L.inter(root, "srv", eku=[ExtendedKeyUsageOID.SERVER_AUTH])])

    # -- key usage and CA flags --------------------------------------------------------
    add("ku-leaf-cert-sign-only", "ku", [root],
        L.leaf(inter, ku={"key_cert_sign"}, tag="kcs"), [inter])
    add("ku-inter-without-cert-sign", "ku", [root],
        L.leaf(L.inter(root, "nokcs", ku={"digital_signature", "crl_sign"}), tag="nokcs"),
        [L.inter(root, "nokcs", ku={"digital_signature", "crl_sign"})])
    add("ku-root-without-cert-sign", "ku", [L.root("nokcs", ku={"digital_signature", "crl_sign"})],
        L.leaf(L.root("nokcs", ku={"digital_signature", "crl_sign"}), tag="rnokcs"))
    add("ca-false-inter", "ca", [root],
        L.leaf(L.inter(root, "caf", ca=False, ku={"key_cert_sign", "digital_signature"}), tag="caf"),
        [L.inter(root, "caf", ca=False, ku={"key_cert_sign", "digital_signature"})])
    add("ca-false-root", "ca", [L.root("caf", ca=False, ku={"key_cert_sign"})],
        L.leaf(L.root("caf", ca=False, ku={"key_cert_sign"}), tag="rcaf"))
    add("ca-missing-bc-inter", "ca", [root],
        L.leaf(L.inter(root, "nobc", ca=None), tag="nobc"), [L.inter(root, "nobc", ca=None)])
    add("ca-noncritical-bc-inter", "ca", [root],
        L.leaf(L.inter(root, "bcnc", bc_critical=False), tag="bcnc"), [L.inter(root, "bcnc", bc_critical=False)],
        differs="ca-without-bc")
    add("ca-leaf-is-ca", "ca", [root],
        L.leaf(inter, ca=True, ku={"digital_signature"}, sans=[HOST], tag="leafca"), [inter], differs="leaf-ca")
    add("ca-unrelated-leaf-as-anchor", "ca", [root], L.leaf(L.root("stranger"), tag="stranger"), [])

    # -- path length -------------------------------------------------------------------
    r0 = L.root("pl0", path_length=0)
    add("pathlen-root-0-direct-leaf", "pathlen", [r0], L.leaf(r0, tag="pl0d"))
    add("pathlen-root-0-with-inter", "pathlen", [r0], L.leaf(L.inter(r0, "pl0"), tag="pl0i"), [L.inter(r0, "pl0")])
    ip0 = L.inter(root, "ip0", path_length=0)
    add("pathlen-inter-0-leaf", "pathlen", [root], L.leaf(ip0, tag="ip0"), [ip0])
    ip0b = L.inter(ip0, "ip0b")
    add("pathlen-inter-0-below", "pathlen", [root], L.leaf(ip0b, tag="ip0b"), [ip0b, ip0])
    r1 = L.root("pl1", path_length=1)
    r1i = L.inter(r1, "pl1")
    r1ii = L.inter(r1i, "pl1b")
    add("pathlen-root-1-one-inter", "pathlen", [r1], L.leaf(r1i, tag="pl1a"), [r1i])
    add("pathlen-root-1-two-inters", "pathlen", [r1], L.leaf(r1ii, tag="pl1b"), [r1ii, r1i])
    ip1 = L.inter(root, "ip1", path_length=1)
    ip1b = L.inter(ip1, "ip1b")
    add("pathlen-inter-1-two-below", "pathlen", [root], L.leaf(L.inter(ip1b, "ip1c"), tag="ip1c"),
        [L.inter(ip1b, "ip1c"), ip1b, ip1])
    add("pathlen-inter-1-one-below", "pathlen", [root], L.leaf(ip1b, tag="ip1b"), [ip1b, ip1])

    # -- name constraints --------------------------------------------------------------
    def nc_case(name: str, permitted, excluded, sans, where: str = "inter", host: str = HOST,
                differs: str | None = None) -> None:
        tag = "nc-" + name
        if where == "inter":
            ci = L.inter(root, tag, nc=(permitted, excluded))
            add(f"nc-{name}", "name-constraints", [root], L.leaf(ci, cn=sans[0], sans=sans, tag=tag), [ci],
                hostname=host, differs=differs)
        else:
            cr = L.root(tag, nc=(permitted, excluded))
            add(f"nc-{name}", "name-constraints", [cr], L.leaf(L.inter(cr, tag), cn=sans[0], sans=sans, tag=tag),
                [L.inter(cr, tag)], hostname=host, differs=differs)

    nc_case("permitted-match", ["example.jp"], None, [HOST])
    nc_case("permitted-exact-host", [HOST], None, [HOST])
    nc_case("permitted-mismatch", ["example.com"], None, [HOST])
    nc_case("permitted-suffix-not-label", ["ample.jp"], None, [HOST])
    nc_case("permitted-second-san-outside", ["example.jp"], None, [HOST, "mail.example.com"])
    nc_case("excluded-match", None, [HOST], [HOST])
    nc_case("excluded-parent", None, ["example.jp"], [HOST])
    nc_case("excluded-other", None, ["other.example.jp"], [HOST])
    nc_case("excluded-second-san", None, ["bad.example.jp"], [HOST, "bad.example.jp"])
    nc_case("permitted-and-excluded", ["example.jp"], ["mail.example.jp"], [HOST])
    nc_case("root-permitted-match", ["example.jp"], None, [HOST], where="root")
    nc_case("root-permitted-mismatch", ["example.com"], None, [HOST], where="root")
    nc_case("root-excluded-match", None, ["example.jp"], [HOST], where="root")
    nc_case("permitted-wildcard-san", ["example.jp"], None, ["*.example.jp"])
    nc_case("excluded-wildcard-san", None, ["x.example.jp"], ["*.example.jp"], differs="wildcard-vs-excluded")
    nc_case("permitted-ip-only", ["192.0.2.0/24"], None, [HOST])

    # -- critical extensions -----------------------------------------------------------
    unknown_critical = [_malformed_ext(UNKNOWN_OID, b"\x05\x00", critical=True)]
    add("critical-unknown-leaf", "critical", [root], L.leaf(inter, extra=unknown_critical, tag="crit"), [inter])
    ci = L.inter(root, "crit", extra=unknown_critical)
    add("critical-unknown-inter", "critical", [root], L.leaf(ci, tag="criti"), [ci])
    cr = L.root("crit", extra=unknown_critical)
    add("critical-unknown-root", "critical", [cr], L.leaf(L.inter(cr, "critr"), tag="critr"),
        [L.inter(cr, "critr")])
    add("critical-unknown-unrelated-extra", "critical", [root], leaf,
        [inter, L.inter(L.root("other"), "critx", extra=unknown_critical)])

    # -- validity ----------------------------------------------------------------------
    add("validity-leaf-expired-day", "validity", [root], L.leaf(inter, not_after=-DAY, tag="exp"), [inter])
    add("validity-leaf-expired-second", "validity", [root],
        L.leaf(inter, not_after=-SECOND, tag="exp1"), [inter])
    add("validity-leaf-not-after-instant", "validity", [root],
        L.leaf(inter, not_after=dt.timedelta(0), tag="expexact"), [inter], differs="not-after-instant")
    add("validity-leaf-not-after-plus-second", "validity", [root],
        L.leaf(inter, not_after=SECOND, tag="exp+1"), [inter])
    add("validity-leaf-not-before-instant", "validity", [root],
        L.leaf(inter, not_before=dt.timedelta(0), tag="nbexact"), [inter])
    add("validity-leaf-not-yet-second", "validity", [root],
        L.leaf(inter, not_before=SECOND, tag="nb+1"), [inter])
    add("validity-leaf-not-yet-day", "validity", [root],
        L.leaf(inter, not_before=DAY, not_after=YEAR, tag="nbday"), [inter])
    ie = L.inter(root, "exp", not_after=-DAY)
    add("validity-inter-expired", "validity", [root], L.leaf(ie, tag="ie"), [ie])
    iny = L.inter(root, "nyv", not_before=DAY)
    add("validity-inter-not-yet", "validity", [root], L.leaf(iny, tag="iny"), [iny])
    re_ = L.root("exp", not_after=-DAY)
    add("validity-root-expired", "validity", [re_], L.leaf(L.inter(re_, "re"), tag="re"), [L.inter(re_, "re")])
    rny = L.root("nyv", not_before=DAY)
    add("validity-root-not-yet", "validity", [rny], L.leaf(L.inter(rny, "rny"), tag="rny"),
        [L.inter(rny, "rny")])
    rexs = L.root("exps", not_after=-SECOND)
    add("validity-root-expired-second", "validity", [rexs], L.leaf(L.inter(rexs, "rexs"), tag="rexs"),
        [L.inter(rexs, "rexs")])
    ilong = L.inter(root, "long", not_after=20 * YEAR)
    add("validity-inter-outlives-root", "validity", [root], L.leaf(ilong, tag="ilong"), [ilong])

    # -- cross-signs and extra certificates --------------------------------------------
    old = L.root("old")
    new_key = key_for("root-new")
    new_root = L.root("new", key=new_key)
    cross_expired = L.inter(old, "x", cn="Corpus Root new", key=new_key, not_after=-DAY, path_length=None)
    cross_valid = L.inter(old, "xv", cn="Corpus Root new", key=new_key)
    ni = L.inter(new_root, "n")
    nleaf = L.leaf(ni, tag="n")
    add("cross-expired-in-bundle", "cross-sign", [new_root], nleaf, [ni, cross_expired])
    add("cross-valid-in-bundle", "cross-sign", [new_root], nleaf, [ni, cross_valid])
    add("cross-valid-needed-for-old-root", "cross-sign", [old], nleaf, [ni, cross_valid])
    add("cross-expired-needed-for-old-root", "cross-sign", [old], nleaf, [ni, cross_expired])
    add("cross-both-old-root", "cross-sign", [old], nleaf, [ni, cross_expired, cross_valid])
    add("cross-expired-and-root", "cross-sign", [new_root], nleaf, [cross_expired, ni, new_root])
    add("extra-unrelated-ca", "extra", [root], leaf, [inter, L.inter(L.root("other"), "stray")])
    add("extra-unrelated-root", "extra", [root], leaf, [inter, L.root("other")])
    add("extra-sibling-intermediate", "extra", [root], leaf, [L.inter(root, "sibling"), inter])
    add("extra-expired-unrelated", "extra", [root], leaf,
        [inter, L.inter(L.root("other"), "strayold", not_after=-DAY)])
    add("missing-intermediate", "extra", [root], leaf, [])
    add("wrong-intermediate-only", "extra", [root], leaf, [L.inter(root, "sibling")])
    add("untrusted-root", "extra", [L.root("other")], leaf, [inter, root])
    same_name = L.inter(root, "imposter", cn="Corpus Intermediate i")
    add("same-name-other-key", "extra", [root], leaf, [same_name])
    add("same-name-other-key-and-real", "extra", [root], leaf, [same_name, inter])

    # -- host names and wildcards ------------------------------------------------------
    add("host-mismatch", "hostname", [root], L.leaf(inter, cn="other.example.jp", tag="o"), [inter])
    add("host-subdomain-mismatch", "hostname", [root], leaf, [inter], hostname="a.mail.example.jp")
    add("host-parent-mismatch", "hostname", [root], leaf, [inter], hostname="example.jp")
    add("host-cn-only-with-other-san", "hostname", [root],
        L.leaf(inter, sans=["other.example.jp"], tag="cnonly"), [inter])
    add("host-no-san", "hostname", [root], L.leaf(inter, sans=None, tag="nosan"), [inter], differs="no-san")
    wl = L.leaf(inter, cn="*.example.jp", tag="wild")
    add("wildcard-match", "wildcard", [root], wl, [inter])
    add("wildcard-two-labels", "wildcard", [root], wl, [inter], hostname="a.mail.example.jp")
    add("wildcard-apex", "wildcard", [root], wl, [inter], hostname="example.jp")
    add("wildcard-tld", "wildcard", [root], L.leaf(inter, cn="*.jp", tag="wtld"), [inter], hostname="example.jp")
    add("wildcard-public-suffix", "wildcard", [root], L.leaf(inter, cn="*.co.jp", tag="wpsl"), [inter],
        hostname="example.co.jp", differs="public-suffix-wildcard")
    add("wildcard-partial-label", "wildcard", [root], L.leaf(inter, cn="mail*.example.jp", tag="wpart"), [inter],
        differs="partial-wildcard")
    add("wildcard-not-leftmost", "wildcard", [root], L.leaf(inter, cn="mail.*.jp", tag="wmid"), [inter],
        hostname="mail.example.jp")
    add("wildcard-sub-of-other-domain", "wildcard", [root], L.leaf(inter, cn="*.example.com", tag="wcom"),
        [inter])

    # -- key identifiers ---------------------------------------------------------------
    add("kid-leaf-aki-mismatch", "key-identifiers", [root],
        L.leaf(inter, aki=b"\x01" * 20, tag="akim"), [inter])
    add("kid-root-aki-mismatch", "key-identifiers", [L.root("akim", aki=b"\x02" * 20)],
        L.leaf(L.root("akim", aki=b"\x02" * 20), tag="rakim"))
    add("kid-inter-aki-mismatch", "key-identifiers", [root],
        L.leaf(L.inter(root, "akim", aki=b"\x03" * 20), tag="iakim"), [L.inter(root, "akim", aki=b"\x03" * 20)])
    add("kid-root-aki-matches-ski", "key-identifiers",
        [L.root("akiok", aki=x509.AuthorityKeyIdentifier.from_issuer_public_key(key_for("root-akiok").public_key()))],
        L.leaf(L.root("akiok", aki=x509.AuthorityKeyIdentifier.from_issuer_public_key(
            key_for("root-akiok").public_key())), tag="rakiok"))
    add("kid-inter-ski-different-method", "key-identifiers", [root],
        L.leaf(L.inter(root, "ski2", ski=b"\x42" * 8), aki=b"\x42" * 8, tag="ski2"),
        [L.inter(root, "ski2", ski=b"\x42" * 8)])

    # -- weak keys and signatures ------------------------------------------------------
    wr = L.root("weakr", keyspec=("rsa", 2048))
    add("weak-rsa-1024-leaf", "weak", [wr], L.leaf(wr, keyspec=("rsa", 1024), tag="rsa1024"),
        differs="weak-rsa")
    wi = L.inter(wr, "weak1024", keyspec=("rsa", 1024))
    add("weak-rsa-1024-inter", "weak", [wr], L.leaf(wi, tag="wi"), [wi], differs="weak-rsa")
    sha1 = lab.resign(L.leaf(ri, tag="sha1"), ri, sha1=True)
    add("weak-sha1-leaf", "weak", [rr], sha1, [ri], differs="weak-signature",
        check=lambda c: None if c.cert.signature_hash_algorithm.name == "sha1" else 1 / 0)
    ei = explicit_curve(L.inter(root, "explicit"), root)
    add("weak-explicit-curve-inter", "weak", [root], L.leaf(L.inter(root, "explicit"), tag="explicit"), [ei])

    # -- versions, serials, malformed --------------------------------------------------
    v1 = lab.resign(L.leaf(root, ku=None, eku=None, sans=None, ski=None, aki=None, ca=None, tag="v1"), root,
                    lambda f: f[1:])
    add("v1-leaf", "version", [root], v1, [], differs="v1")
    v1root_base = L.root("v1", ku=None, ski=None, ca=None)
    v1root = lab.resign(v1root_base, v1root_base, lambda f: f[1:])
    add("v1-root", "version", [v1root], L.leaf(v1root, aki=None, tag="v1r"), [], differs="v1")
    v1inter = lab.resign(L.inter(root, "v1", ku=None, ski=None, aki=None, ca=None), root, lambda f: f[1:])
    add("v1-inter", "version", [root], L.leaf(v1inter, aki=None, tag="v1i"), [v1inter])
    long_serial = lab.resign(L.leaf(inter, tag="longserial"), inter, lab.set_serial(b"\x01" * 21))
    add("serial-21-octets", "serial", [root], long_serial, [inter], differs="serial")
    add("serial-20-octets", "serial", [root],
        lab.resign(L.leaf(inter, tag="serial20"), inter, lab.set_serial(b"\x7f" + b"\x01" * 19)), [inter])
    add("serial-negative", "serial", [root],
        lab.resign(L.leaf(inter, tag="negserial"), inter, lab.set_serial(b"\xf0\x01")), [inter], differs="serial")

    dup = lab.resign(
        L.leaf(inter, tag="dupsan", extra=[(x509.UnrecognizedExtension(
            x509.ObjectIdentifier("2.5.29.99"),
            x509.SubjectAlternativeName([x509.DNSName(HOST)]).public_bytes()), False)]),
        inter, lab.replace_bytes(lab.oid_der("2.5.29.99"), lab.oid_der("2.5.29.17")))
    add("malformed-duplicate-san", "malformed", [root], dup, [inter], check=_reads_fail("extensions"))
    add("malformed-san", "malformed", [root],
        L.leaf(inter, sans=None, extra=[_malformed_ext(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x01")],
               tag="badsan"), [inter], check=_reads_fail("extensions"))
    add("malformed-bc-inter", "malformed", [root],
        L.leaf(L.inter(root, "badbc", ca=None, extra=[_malformed_ext(ExtensionOID.BASIC_CONSTRAINTS,
                                                                     b"\x30\x03\x01\x01", True)]), tag="badbc"),
        [L.inter(root, "badbc", ca=None, extra=[_malformed_ext(ExtensionOID.BASIC_CONSTRAINTS,
                                                               b"\x30\x03\x01\x01", True)])])
    add("malformed-eku-empty", "malformed", [root],
        L.leaf(inter, eku=None, extra=[_malformed_ext(ExtensionOID.EXTENDED_KEY_USAGE, b"\x30\x00")],
               tag="emptyeku"), [inter], check=_reads_fail("extensions"))
    bad_nc = _malformed_ext(ExtensionOID.NAME_CONSTRAINTS, b"\x30\x05\xa0\x03\x30\x01", True)
    add("malformed-nc-inter", "malformed", [root],
        L.leaf(L.inter(root, "badnc", extra=[bad_nc]), tag="badnc"), [L.inter(root, "badnc", extra=[bad_nc])])
    add("malformed-aia-leaf", "malformed", [root],
        L.leaf(inter, extra=[_malformed_ext(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, b"\x30\x03\x30\x01")],
               tag="badaia"), [inter], differs="malformed", check=_reads_fail("extensions"))
    add("malformed-aki-leaf", "malformed", [root],
        L.leaf(inter, aki=None, extra=[_malformed_ext(ExtensionOID.AUTHORITY_KEY_IDENTIFIER, b"\x30\x03\x80\x05")],
               tag="badaki"), [inter], check=_reads_fail("extensions"))

    # -- rules clients do not enforce: installed, with a warning naming the rule -------
    add("rule-leaf-without-eku", "rules", [root], L.leaf(inter, eku=None, tag="noeku"), [inter],
        warns="chain.rule.no_eku")
    add("rule-leaf-any-eku", "rules", [root],
        L.leaf(inter, eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
               tag="anyeku"), [inter], warns="chain.rule.any_eku")
    add("rule-leaf-without-aki", "rules", [root], L.leaf(inter, aki=None, tag="noaki"), [inter],
        warns="chain.rule.no_aki")
    nski = L.inter(root, "noski", ski=None)
    add("rule-inter-without-ski", "rules", [root], L.leaf(nski, aki=None, tag="noski"), [nski],
        warns="chain.rule.no_ski")
    naki = L.inter(root, "noaki", aki=None)
    add("rule-inter-without-aki", "rules", [root], L.leaf(naki, tag="inoaki"), [naki], warns="chain.rule.no_aki")
    reku = L.root("eku", eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    add("rule-root-with-eku", "rules", [reku], L.leaf(L.inter(reku, "reku"), tag="reku"), [L.inter(reku, "reku")],
        warns="chain.rule.root_eku")
    add("rule-cn-label-not-in-san", "rules", [root],
        L.leaf(inter, cn="Mail Server", sans=[HOST], tag="cnlabel"), [inter], warns="chain.rule.cn_not_in_san")
    add("rule-cn-case-differs", "rules", [root],
        L.leaf(inter, cn="MAIL.example.jp", sans=[HOST], tag="cncase"), [inter], warns="chain.rule.cn_not_in_san")
    add("rule-serial-zero", "rules", [root], L.leaf(inter, serial=None, tag="s0"), [inter])
    add("rule-cn-other-host", "rules", [root],
        L.leaf(inter, cn="other.example.jp", sans=[HOST], tag="cnother"), [inter], warns="chain.rule.cn_not_in_san")
    add("root-eku-client-only", "eku", [L.root("ekucli", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])],
        L.leaf(L.inter(L.root("ekucli", eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), "ekucli"), tag="ekucli"),
        [L.inter(L.root("ekucli", eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), "ekucli")])
    add("ku-leaf-data-encipherment-only", "ku", [root],
        L.leaf(inter, ku={"data_encipherment"}, tag="kude"), [inter])
    add("ku-leaf-key-agreement-ec", "ku", [root], L.leaf(inter, ku={"key_agreement"}, tag="kuka"), [inter])
    add("eku-server-and-code-signing", "eku", [root],
        L.leaf(inter, eku=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.SERVER_AUTH], tag="srvcode"),
        [inter])
    add("eku-inter-client-and-server", "eku", [root],
        L.leaf(L.inter(root, "cs", eku=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
               tag="cs"),
        [L.inter(root, "cs", eku=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH])])
    add("eku-inter-any", "eku", [root],
        L.leaf(L.inter(root, "anyi", eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]), tag="anyi"),
        [L.inter(root, "anyi", eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])])

    # -- IP addresses ------------------------------------------------------------------
    ipl = L.leaf(inter, cn="192.0.2.25", sans=["192.0.2.25", HOST], tag="ip")
    add("ip-san-match", "ip", [root], ipl, [inter], hostname="192.0.2.25")
    add("ip-san-mismatch", "ip", [root], ipl, [inter], hostname="192.0.2.26")
    add("ip-in-dns-name-only", "ip", [root],
        L.leaf(inter, cn=HOST, sans=[HOST, x509.DNSName("192.0.2.25")], tag="ipdns"), [inter],
        hostname="192.0.2.25")
    add("ip-v6-san", "ip", [root], L.leaf(inter, cn=HOST, sans=[HOST, "2001:db8::25"], tag="ip6"), [inter],
        hostname="2001:db8::25")
    ipnc = L.inter(root, "ipnc", nc=(["192.0.2.0/24", "example.jp"], None))
    add("ip-nc-permitted", "ip", [root], L.leaf(ipnc, cn=HOST, sans=[HOST, "192.0.2.25"], tag="ipncok"), [ipnc],
        hostname="192.0.2.25")
    add("ip-nc-not-permitted", "ip", [root], L.leaf(ipnc, cn=HOST, sans=[HOST, "198.51.100.25"], tag="ipncno"),
        [ipnc], hostname="198.51.100.25")
    ipx = L.inter(root, "ipx", nc=(None, ["192.0.2.0/25"]))
    add("ip-nc-excluded", "ip", [root], L.leaf(ipx, cn=HOST, sans=[HOST, "192.0.2.25"], tag="ipx"), [ipx],
        hostname="192.0.2.25")

    # -- the same chains, packaged as CAs hand them out --------------------------------
    packaged = [("good-root-inter-leaf", [root], leaf, [inter]),
                ("good-two-intermediates", [root], L.leaf(i2), [i2, inter]),
                ("cross-expired-in-bundle", [new_root], nleaf, [ni, cross_expired]),
                ("validity-inter-expired", [root], L.leaf(ie, tag="ie"), [ie]),
                ("eku-client-only-leaf", [root], L.leaf(inter, eku=[ExtendedKeyUsageOID.CLIENT_AUTH], tag="cli"),
                 [inter]),
                ("nc-excluded-match", [root],
                 L.leaf(L.inter(root, "nc-excluded-match", nc=(None, [HOST])), sans=[HOST], tag="nc-excluded-match"),
                 [L.inter(root, "nc-excluded-match", nc=(None, [HOST]))]),
                ("extra-unrelated-ca", [root], leaf, [inter, L.inter(L.root("other"), "stray")]),
                ("missing-intermediate", [root], leaf, [])]
    for fmt in ("der", "p7b", "p7b-pem", "bundle", "p12", "crlf", "separate"):
        for base, trusted, pleaf, pchain in packaged:
            if fmt in ("p7b", "p7b-pem", "separate") and not pchain:
                continue
            add(f"{base}@{fmt}", "format", trusted, pleaf, pchain, fmt=fmt)
    return cases


def names(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


def subject_cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
