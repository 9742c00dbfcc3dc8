"""Test-time PKI: a root -> intermediate -> leaf hierarchy made on the fly.

Nothing here is committed key material: every key is generated when a test
runs.  Modelled on trustme, with the knobs our tests need (expired and
not-yet-valid leaves, EC and RSA, no SANs, CA flags, SHA-1).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_KEY_CACHE: dict[tuple[str, int], list] = {}


def new_key(kind: str = "rsa", size: int = 2048):
    """A fresh private key (``kind`` ``rsa`` or ``ec``; EC uses P-256 / P-384 by size)."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP384R1() if size == 384 else ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def now() -> dt.datetime:
    """The tests' clock: the product's (frozen by conftest in-process tests)."""
    from xmailnb import clock

    return clock.now()


def _name(cn: str, org: str = "xmailnb tests") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@dataclass
class Issued:
    cert: x509.Certificate
    key: object
    issuer: "Issued | None" = None

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_pem(self, traditional: bool = True, password: bytes | None = None) -> bytes:
        fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
        enc = (serialization.BestAvailableEncryption(password) if password
               else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM, fmt, enc)

    def sign(
        self,
        cn: str,
        *,
        sans: Sequence[str] | None = None,
        ca: bool = False,
        key=None,
        key_kind: str = "rsa",
        key_size: int = 2048,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        days: int = 90,
        hash_alg=None,
        public_key=None,
    ) -> "Issued":
        """Issue a certificate signed by this one."""
        key = key or (None if public_key is not None else new_key(key_kind, key_size))
        return _build(cn, sans=sans, ca=ca, key=key, public_key=public_key, issuer=self,
                      not_before=not_before, not_after=not_after, days=days,
                      hash_alg=hash_alg)


def _build(cn, *, sans, ca, key, issuer, not_before, not_after, days, hash_alg, public_key=None) -> Issued:
    nb = not_before or (now() - dt.timedelta(days=1))
    na = not_after or (nb + dt.timedelta(days=days))
    pub = public_key if public_key is not None else key.public_key()
    subject = _name(cn)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    )
    if issuer is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if sans is None and not ca:
        sans = [cn]
    if sans:
        general = []
        for s in sans:
            try:
                general.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                general.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = b.sign(signer_key, hash_alg or hashes.SHA256())
    return Issued(cert=cert, key=key, issuer=issuer)


def root(cn: str = "xmailnb Test Root", *, key_kind: str = "rsa", key_size: int = 2048, **kw) -> Issued:
    key = new_key(key_kind, key_size)
    return _build(cn, sans=None, ca=True, key=key, issuer=None, not_before=kw.get("not_before"),
                  not_after=kw.get("not_after"), days=kw.get("days", 3650), hash_alg=kw.get("hash_alg"))


def self_signed_leaf(cn: str = "mail.example.jp", sans: Sequence[str] | None = None, **kw) -> Issued:
    key = new_key(kw.get("key_kind", "rsa"), kw.get("key_size", 2048))
    return _build(cn, sans=sans, ca=False, key=key, issuer=None, not_before=kw.get("not_before"),
                  not_after=kw.get("not_after"), days=kw.get("days", 365), hash_alg=kw.get("hash_alg"))


@dataclass
class Hierarchy:
    """root -> intermediate -> leaf for ``mail.example.jp``."""

    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def chain_pem(self) -> bytes:
        """What a correct server.cert holds: leaf then intermediate."""
        return self.leaf.pem + self.intermediate.pem

    def p7b(self, der: bool = False, certs: Sequence[Issued] | None = None) -> bytes:
        items = [c.cert for c in (certs or [self.leaf, self.intermediate, self.root])]
        enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
        return pkcs7.serialize_certificates(items, enc)

    def p12(self, password: bytes | None = b"secret", with_key: bool = True) -> bytes:
        enc = (serialization.BestAvailableEncryption(password) if password
               else serialization.NoEncryption())
        return pkcs12.serialize_key_and_certificates(
            b"mail", self.leaf.key if with_key else None, self.leaf.cert if with_key else None,
            [self.intermediate.cert, self.root.cert] if with_key else [self.leaf.cert, self.intermediate.cert],
            enc)


def hierarchy(cn: str = "mail.example.jp", sans: Sequence[str] | None = None,
              key_kind: str = "rsa", **leaf_kw) -> Hierarchy:
    r = root()
    i = r.sign("xmailnb Test Intermediate CA", ca=True, days=1825)
    leaf = i.sign(cn, sans=sans, key_kind=key_kind, **leaf_kw)
    return Hierarchy(root=r, intermediate=i, leaf=leaf)
