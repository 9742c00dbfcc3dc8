"""Edge-case certificates for the verdict tests, made at test time.

:func:`make` builds one certificate with every knob the corpus needs
(extensions present, absent, critical or not, wrong on purpose);
:func:`resign` edits the DER of a certificate's to-be-signed part and signs
it again, for defects that no builder will produce (a duplicate extension,
an invalid version, a negative or over-long serial, invalid UTF-8 in a
name).  The DER editing is a few lines of TLV walking: enough for the
fixed layout of a certificate, checked by the tests that use it.

Nothing here is committed key material: keys are generated per process.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT = object()  # "what a well-behaved CA would put here"


# -- keys ----------------------------------------------------------------------

@lru_cache(maxsize=None)
def key_for(tag: str, kind: str = "ec", size: int = 256) -> Any:
    """A key per *tag*, generated once per process (RSA generation is slow)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    curve = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1(), 192: ec.SECP192R1()}[size]
    return ec.generate_private_key(curve)


def name(cn: str | None, org: str | None = "xmailnb corpus") -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


# -- certificates --------------------------------------------------------------

@dataclass
class Cert:
    """A certificate and the key that signs with it."""

    cert: x509.Certificate
    key: Any

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _general(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return x509.IPAddress(ipaddress.ip_network(value))
    except ValueError:
        return x509.DNSName(value)


def make(
    cn: str | None,
    *,
    issuer: Cert | None = None,
    key: Any = None,
    at: dt.datetime,
    not_before: dt.timedelta | dt.datetime = dt.timedelta(days=-30),
    not_after: dt.timedelta | dt.datetime = dt.timedelta(days=365),
    ca: bool | None = False,
    path_length: int | None = None,
    bc_critical: bool = True,
    ku: Any = DEFAULT,
    ku_critical: bool = True,
    eku: Any = DEFAULT,
    eku_critical: bool = False,
    sans: Any = DEFAULT,
    san_critical: bool = False,
    nc: tuple[Sequence[str] | None, Sequence[str] | None] | None = None,
    ski: Any = DEFAULT,
    aki: Any = DEFAULT,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
    hash_alg: Any = DEFAULT,
    serial: int | None = None,
    subject: x509.Name | None = None,
    org: str | None = "xmailnb corpus",
) -> Cert:
    """One certificate; ``issuer=None`` makes it self-signed.

    Times are offsets from *at* (or absolute).  ``ca=None`` leaves
    basicConstraints out.  ``ku``/``eku``/``sans``/``ski``/``aki``: DEFAULT
    for the usual value, ``None`` to leave the extension out, or a value.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key()
    subject_name = subject if subject is not None else name(cn, org)
    signer = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject_name
    nb = at + not_before if isinstance(not_before, dt.timedelta) else not_before
    na = at + not_after if isinstance(not_after, dt.timedelta) else not_after
    b = (x509.CertificateBuilder().subject_name(subject_name).issuer_name(issuer_name).public_key(pub)
         .serial_number(serial if serial is not None else x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(na))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), bc_critical)
    if ku is DEFAULT:
        ku = {"key_cert_sign", "crl_sign", "digital_signature"} if ca else {"digital_signature",
                                                                             "key_encipherment"}
    if ku is not None:
        flags = {f: f in ku for f in ("digital_signature", "content_commitment", "key_encipherment",
                                      "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                                      "encipher_only", "decipher_only")}
        b = b.add_extension(x509.KeyUsage(**flags), ku_critical)
    if eku is DEFAULT:
        eku = None if ca else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), eku_critical)
    if sans is DEFAULT:
        sans = None if ca else [cn]
    if sans is not None:
        b = b.add_extension(x509.SubjectAlternativeName([_general(s) if isinstance(s, str) else s
                                                         for s in sans]), san_critical)
    if nc is not None:
        permitted, excluded = nc
        b = b.add_extension(x509.NameConstraints(
            permitted_subtrees=[_general(s) for s in permitted] if permitted is not None else None,
            excluded_subtrees=[_general(s) for s in excluded] if excluded is not None else None), True)
    if ski is DEFAULT:
        ski = x509.SubjectKeyIdentifier.from_public_key(pub)
    if ski is not None:
        b = b.add_extension(ski if isinstance(ski, x509.SubjectKeyIdentifier)
                            else x509.SubjectKeyIdentifier(ski), False)
    if aki is DEFAULT:
        aki = (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
               if issuer else None)
    if aki is not None:
        b = b.add_extension(aki if isinstance(aki, x509.AuthorityKeyIdentifier)
                            else x509.AuthorityKeyIdentifier(aki, None, None), False)
    for ext, critical in extra:
        b = b.add_extension(ext, critical)
    if hash_alg is DEFAULT:
        hash_alg = hashes.SHA256()
    cert = b.sign(signer, hash_alg)
    return Cert(cert, key)


# -- DER editing ---------------------------------------------------------------

def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(tag, header length, content length, end) of the TLV at *pos*."""
    tag = data[pos]
    length = data[pos + 1]
    head = 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
        head += n
    return tag, head, length, pos + head + length


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def split_certificate(der: bytes) -> tuple[bytes, bytes, bytes]:
    """(tbsCertificate, signatureAlgorithm, signatureValue) TLVs of *der*."""
    _tag, head, _n, _end = _read_tlv(der, 0)
    pos = head
    parts = []
    for _ in range(3):
        _t, _h, _l, end = _read_tlv(der, pos)
        parts.append(der[pos:end])
        pos = end
    return parts[0], parts[1], parts[2]


def tbs_fields(tbs: bytes) -> list[bytes]:
    """The TLVs inside tbsCertificate, in order (version [0] first when present)."""
    _tag, head, _n, end = _read_tlv(tbs, 0)
    pos, out = head, []
    while pos < end:
        _t, _h, _l, nxt = _read_tlv(tbs, pos)
        out.append(tbs[pos:nxt])
        pos = nxt
    return out


SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
SHA1_RSA = bytes.fromhex("06092a864886f70d010105")


def resign(cert: Cert, signer: Cert | Any, edit: Callable[[list[bytes]], list[bytes]] = lambda f: f, *,
           sha1: bool = False) -> Cert:
    """:func:`resign_der`, loaded again (for defects cryptography still loads)."""
    der = resign_der(cert, signer, edit, sha1=sha1)
    with _quiet():
        parsed = x509.load_der_x509_certificate(der)
    return Cert(parsed, cert.key)


def resign_der(cert: Cert, signer: Cert | Any, edit: Callable[[list[bytes]], list[bytes]] = lambda f: f, *,
               sha1: bool = False) -> bytes:
    """*cert* with its tbsCertificate fields edited by *edit*, signed again by
    *signer* (a :class:`Cert` or a private key) with the same algorithm
    (``sha1``: SHA-1 instead of SHA-256, RSA signers only: no builder
    signs with SHA-1 any more)."""
    tbs, alg, _sig = split_certificate(cert.der)
    fields = edit(tbs_fields(tbs))
    hash_alg = cert.cert.signature_hash_algorithm or hashes.SHA256()
    if sha1:
        fields = [f.replace(SHA256_RSA, SHA1_RSA) if i < 3 else f for i, f in enumerate(fields)]
        alg = alg.replace(SHA256_RSA, SHA1_RSA)
        hash_alg = hashes.SHA1()
    new_tbs = tlv(0x30, b"".join(fields))
    signing_key = signer.key if isinstance(signer, Cert) else signer
    if isinstance(signing_key, rsa.RSAPrivateKey):
        sig = signing_key.sign(new_tbs, padding.PKCS1v15(), hash_alg)
    else:
        sig = signing_key.sign(new_tbs, ec.ECDSA(hash_alg))
    return tlv(0x30, new_tbs + alg + tlv(0x03, b"\x00" + sig))


def _quiet():
    import warnings

    ctx = warnings.catch_warnings()

    class _Ctx:
        def __enter__(self):
            ctx.__enter__()
            warnings.simplefilter("ignore")

        def __exit__(self, *a):
            return ctx.__exit__(*a)

    return _Ctx()


def replace_bytes(old: bytes, new: bytes, count: int = 1) -> Callable[[list[bytes]], list[bytes]]:
    """An *edit* that replaces *old* by *new* (same length) in the tbsCertificate."""
    assert len(old) == len(new)

    def edit(fields: list[bytes]) -> list[bytes]:
        joined = b"\x00".join(fields)
        assert joined.count(old) >= count, (old, "not found")
        out = joined.replace(old, new, count)
        # Field boundaries are unchanged: same lengths everywhere.
        sizes = [len(f) for f in fields]
        result, pos = [], 0
        for n in sizes:
            result.append(out[pos:pos + n])
            pos += n + 1
        return result

    return edit


def set_version(value: int) -> Callable[[list[bytes]], list[bytes]]:
    def edit(fields: list[bytes]) -> list[bytes]:
        assert fields[0][0] == 0xA0
        return [tlv(0xA0, tlv(0x02, bytes([value]))), *fields[1:]]

    return edit


def set_serial(raw: bytes) -> Callable[[list[bytes]], list[bytes]]:
    """Serial INTEGER content bytes as given (two's complement; may be negative or long)."""

    def edit(fields: list[bytes]) -> list[bytes]:
        i = 1 if fields[0][0] == 0xA0 else 0
        return [*fields[:i], tlv(0x02, raw), *fields[i + 1:]]

    return edit


def oid_der(dotted: str) -> bytes:
    """The DER OBJECT IDENTIFIER TLV of *dotted*."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def utc_at(at: dt.datetime, delta: dt.timedelta = dt.timedelta()) -> dt.datetime:
    return (at + delta).astimezone(dt.timezone.utc)
