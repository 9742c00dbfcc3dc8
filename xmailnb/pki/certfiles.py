"""Load anything an administrator may hand us: certificates, keys and requests.

CAs and tools deliver the same things in many shapes: PEM with Windows or old
Mac line endings, a UTF-8 byte-order mark, a mail's text around the blocks;
DER certificates and keys; PKCS#7 bundles (``.p7b``, PEM or DER); PKCS#12
files (``.pfx``/``.p12``); encrypted keys in the traditional OpenSSL form and in
PKCS#8.  :func:`load_material` recognises all of them and returns what it found
as a :class:`Material`; the ``*_from`` helpers add the precise error a user
needs when the file is not what was asked for (a CSR where a certificate was
expected, an encrypted key without its passphrase, ...).

Every refusal is an :class:`~xmailnb.errors.InputError` whose message names the
file, so a form can show it beside the input (``field``).

>>> material = load_material(pem_bytes, name="server.crt")  # doctest: +SKIP
>>> [c.subject.rfc4514_string() for c in material.certificates]  # doctest: +SKIP
['CN=mail.example.jp']
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import logging
import os
import re
import warnings
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache
from typing import Any, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..errors import InputError
from ..files import sha256_fingerprint, sha256_hex
from ..i18n import Msg

log = logging.getLogger(__name__)

__all__ = [
    "MAX_INPUT_BYTES",
    "too_large",
    "MAX_CERTIFICATES",
    "MAX_BUNDLE_CERTIFICATES",
    "MAX_KDF_ROUNDS",
    "MAX_KDF_ROUNDS_TOTAL",
    "kdf_rounds",
    "Material",
    "load_material",
    "load_file",
    "certificates_from",
    "private_key_from",
    "csr_from",
    "is_encrypted_key_pem",
    "certificate_defect",
    "der_children",
    "require_certificates",
    "cert_fingerprint",
    "subject_alt_name",
    "WEAK_HASHES",
    "hash_label",
    "san_values",
    "sha256_hex",
    "certs_to_pem",
]

#: Refuse inputs larger than this.  Certificates are a few KB; even a full
#: public CA bundle (certifi's is ~300 KB) fits, a disk image does not.
MAX_INPUT_BYTES = 1024 * 1024

#: Refuse a file holding more certificates than this.  A server certificate
#: comes with two or three CA certificates; the longest real chains (a
#: cross-signed one with its root) stay under ten.  Every certificate more
#: costs signature checks when the chain is built, so a file of thousands of
#: them is refused before any is compared.
MAX_CERTIFICATES = 100

#: The same for a CA bundle the MailRoot itself holds (certs.pem): a whole
#: public bundle (certifi's ~150 roots) fits.  Anchors are looked up by name.
MAX_BUNDLE_CERTIFICATES = 1000

#: Refuse a PKCS#12 file or an encrypted PKCS#8 key asking for more rounds
#: of password hashing than this, before any passphrase is tried.  OpenSSL
#: writes 2,048 (PKCS12_DEFAULT_ITER), Windows 2,000, Java's keytool 10,000,
#: cryptography 20,000; the strongest current advice for PBKDF2-HMAC-SHA256
#: (OWASP, 2023) is 600,000.  One million rounds cost about a second per
#: passphrase tried; 2^31-1 would cost minutes.
MAX_KDF_ROUNDS = 1_000_000

#: The most rounds all the parts of one file may ask for together (its MAC
#: and each encrypted key), so that many parts cannot add up to minutes:
#: a few seconds at most on a busy machine.
MAX_KDF_ROUNDS_TOTAL = 2_000_000


@dataclass
class Material:
    """What one input held, in the order it appeared.

    Attributes:
        certificates: every certificate, duplicates included (a server.cert
            is diagnosed exactly as written).
        keys: private keys that could be read (decrypted when a passphrase
            was given).
        csrs: certificate signing requests.
        name: what to call the input in messages (a file name).
        encrypted_keys: keys seen but left encrypted because no passphrase
            was given.
        containers: the container formats met (``"pkcs12"``, ``"pkcs7"``),
            so that "no certificate" can be said precisely.
        notes: what the libraries warned about while reading, in words for
            the user (never shown as raw Python warnings).
    """

    certificates: list[x509.Certificate] = dc_field(default_factory=list)
    keys: list[PrivateKeyTypes] = dc_field(default_factory=list)
    csrs: list[x509.CertificateSigningRequest] = dc_field(default_factory=list)
    name: str = ""
    encrypted_keys: int = 0
    containers: set[str] = dc_field(default_factory=set)
    notes: list[Msg] = dc_field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing usable was found (encrypted keys count as found)."""
        return not (self.certificates or self.keys or self.csrs or self.encrypted_keys)


# -- PEM -----------------------------------------------------------------------

# Block boundaries only: decoding (base64, Proc-Type/DEK-Info headers) is left
# to cryptography's loaders.  The `pem` package would find the same blocks but
# silently skips PKCS#7 blocks and truncated ones, which we must report.  The
# payload may not contain another BEGIN line, so a block missing its END
# cannot swallow the next one.
_BEGIN_RE = re.compile(rb"-----BEGIN ([A-Z0-9 #]+?)-----")
_END_RE = re.compile(rb"-----END ([A-Z0-9 #]+?)-----")
_BLOCK_RE = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 #]+?)-----"
    rb"(?P<body>(?:(?!-----BEGIN ).)*?)"
    rb"-----END (?P=label)-----",
    re.DOTALL,
)

_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE"}
_CSR_LABELS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}
_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY",
               "ENCRYPTED PRIVATE KEY"}
_PKCS7_LABELS = {"PKCS7", "PKCS #7 SIGNED DATA", "CMS"}
# `openssl ecparam -genkey` writes the curve before the key: not an error.
_IGNORED_LABELS = {"EC PARAMETERS", "DH PARAMETERS"}


def _normalise(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _clean_block(label: str, body: bytes, canonical: str) -> bytes:
    # Mail clients and web pages indent or pad pasted blocks; cryptography's
    # PEM reader wants bare lines.  Blank lines are kept: they separate the
    # headers of a traditional encrypted key from its base64.
    lines = [line.strip() for line in body.split(b"\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    tag = canonical.encode()
    return b"-----BEGIN " + tag + b"-----\n" + b"\n".join(lines) + b"\n-----END " + tag + b"-----\n"


_PROC_TYPE_ENCRYPTED = re.compile(rb"Proc-Type:\s*4\s*,\s*ENCRYPTED")


def _is_encrypted_block(label: str, body: bytes) -> bool:
    if label == "ENCRYPTED PRIVATE KEY":
        return True
    return label in _KEY_LABELS and _PROC_TYPE_ENCRYPTED.search(body) is not None


def is_encrypted_key_pem(data: bytes) -> bool:
    """Whether *data* holds a PEM private key protected by a passphrase.

    Both the traditional OpenSSL form (``Proc-Type: 4,ENCRYPTED``) and PKCS#8
    ``ENCRYPTED PRIVATE KEY`` count.  XMail cannot use such a key: it has no
    way to ask for the passphrase.
    """
    text = _normalise(data)
    return any(_is_encrypted_block(m.group("label").decode("ascii"), m.group("body"))
               for m in _BLOCK_RE.finditer(text))


# -- defects of a single certificate ------------------------------------------

_PKCS7_ENVELOPED = bytes.fromhex("06092a864886f70d010703")
_PKCS7_ENCRYPTED = bytes.fromhex("06092a864886f70d010706")
_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")

# cryptography parses extensions, names and keys only when asked; a defect
# there surfaces as one of these, long after loading.
_PARSE_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                                              x509.DuplicateExtension, x509.UnsupportedGeneralNameType)

# The extensions cryptography decodes itself, by OID: the ones whose
# malformation it reports.
_DECODED_EXTENSIONS = {
    oid.dotted_string: oid for oid in vars(x509.oid.ExtensionOID).values()
    if isinstance(oid, x509.ObjectIdentifier)
}


def _ext_label(oid: x509.ObjectIdentifier) -> str:
    name = getattr(oid, "_name", "")
    return f"{name} ({oid.dotted_string})" if name and name != "Unknown OID" else oid.dotted_string


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(content start, content end, tag) of the DER element at *pos*."""
    if pos + 2 > len(data):
        raise ValueError("short")
    tag, length = data[pos], data[pos + 1]
    start = pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or start + n > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[start:start + n], "big")
        start += n
    end = start + length
    if end > len(data):
        raise ValueError("short")
    return start, end, tag


def der_children(data: bytes) -> list[bytes]:
    """The DER elements (whole TLVs) inside the constructed element that
    starts *data*.

    Raises:
        ValueError: *data* is not DER of that shape.
    """
    start, end, _tag = _tlv(data, 0)
    out, pos = [], start
    while pos < end:
        cstart, cend, _t = _tlv(data, pos)
        out.append(data[pos:cend])
        pos = cend
    return out


def _raw_extension_values(tbs: bytes, oid: x509.ObjectIdentifier) -> list[bytes]:
    """The raw extnValue of each *oid* extension found in *tbs*: the OID's
    DER, an optional critical flag, then the OCTET STRING."""
    body = oid.dotted_string.split(".")
    encoded = bytearray([int(body[0]) * 40 + int(body[1])])
    for part in body[2:]:
        n = int(part)
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        encoded.extend(reversed(chunk))
    needle = bytes([0x06, len(encoded)]) + bytes(encoded)
    out, pos = [], tbs.find(needle)
    while pos >= 0:
        try:
            nxt = pos + len(needle)
            if tbs[nxt:nxt + 2] == b"\x01\x01":
                nxt += 3
            start, end, tag = _tlv(tbs, nxt)
            if tag == 0x04:
                out.append(tbs[start:end])
        except ValueError:
            pass
        pos = tbs.find(needle, pos + 1)
    return out


@lru_cache(maxsize=1)
def _probe_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


def _extension_reads(oid: x509.ObjectIdentifier, value: bytes) -> bool:
    """Whether cryptography reads *value* as the *oid* extension (tried on a
    throw-away certificate that holds nothing else)."""
    key = _probe_key()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "probe")])
    start = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
    try:
        probe = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                 .serial_number(1).not_valid_before(start).not_valid_after(start + _dt.timedelta(days=1))
                 .add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
                 .sign(key, hashes.SHA256()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ = x509.load_der_x509_certificate(probe.public_bytes(serialization.Encoding.DER)).extensions
    except _PARSE_ERRORS:
        return False
    return True


def _extension_defect(cert: x509.Certificate, exc: Exception) -> Msg:
    if isinstance(exc, x509.DuplicateExtension):
        return Msg.of("certfiles.defect.duplicate", extension=_ext_label(exc.oid))
    if isinstance(exc, x509.UnsupportedGeneralNameType):
        return Msg.of("certfiles.defect.general_name")
    try:
        tbs = cert.tbs_certificate_bytes
    except _PARSE_ERRORS:
        return Msg.of("certfiles.defect.extensions")
    for oid in _DECODED_EXTENSIONS.values():
        for value in _raw_extension_values(tbs, oid):
            if value == b"\x30\x00" and oid == x509.oid.ExtensionOID.EXTENDED_KEY_USAGE:
                return Msg.of("certfiles.defect.empty", extension=_ext_label(oid))
            if not _extension_reads(oid, value):
                return Msg.of("certfiles.defect.extension", extension=_ext_label(oid))
    return Msg.of("certfiles.defect.extensions")


def certificate_defect(cert: x509.Certificate) -> Msg | None:
    """Why *cert* cannot be read completely, or ``None``.

    Reads every part a verifier or a preview touches (version, names,
    extensions, validity) and names the first one that is malformed:
    a duplicate extension, an extension that does not decode (subjectAltName,
    authorityInfoAccess, certificate policies, name constraints, SCT list,
    an empty extended key usage, ...), a name that is not valid UTF-8.
    Weak keys and signatures are not defects here: the chain verdict names
    them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _ = cert.version
        except x509.InvalidVersion as exc:
            return Msg.of("certfiles.defect.version", version=exc.parsed_version + 1)
        for which in ("subject", "issuer"):
            try:
                getattr(cert, which).rfc4514_string()
            except _PARSE_ERRORS:
                return Msg.of(f"certfiles.defect.{which}")
        try:
            _ = cert.not_valid_before_utc, cert.not_valid_after_utc
        except _PARSE_ERRORS:
            return Msg.of("certfiles.defect.validity")
        try:
            exts = cert.extensions
        except _PARSE_ERRORS as exc:
            return _extension_defect(cert, exc)
        try:
            for ext in exts:
                ext.value  # noqa: B018 - some values decode on first access
        except _PARSE_ERRORS as exc:
            return _extension_defect(cert, exc)
    return None


# -- the loader ----------------------------------------------------------------

def _err(key: str, field: str | None, **params: object) -> InputError:
    return InputError.of(key, key + ".fix", field=field, **params)  # type: ignore[return-value]


def too_large(name: str, size: int | str, *, field: str | None = None, limit: int = MAX_INPUT_BYTES) -> InputError:
    """The refusal of an input of *size* bytes over *limit*: the one rule for
    every file or upload a user hands over (:data:`MAX_INPUT_BYTES`)."""
    return _err("certfiles.too_large", field, name=name, size=size, limit=limit)


class _Loader:
    """Collects what one input holds into a :class:`Material`."""

    def __init__(self, name: str, passphrase: bytes | None, field: str | None,
                 max_certificates: int | None = MAX_CERTIFICATES) -> None:
        self.name = name
        self.passphrase = passphrase
        self.field = field
        self.max_certificates = max_certificates
        self.material = Material(name=name)
        self.rounds = 0  # password-hashing rounds the file asked for so far

    def error(self, key: str, **params: object) -> InputError:
        return _err(key, self.field, name=self.name, **params)

    def check_count(self, more: int) -> None:
        """Refuse before reading when *more* certificates would pass the cap."""
        limit = self.max_certificates
        if limit is not None and len(self.material.certificates) + more > limit:
            raise self.error("certfiles.too_many", found=len(self.material.certificates) + more, limit=limit)

    def check_rounds(self, rounds: Sequence[int]) -> None:
        """Refuse a file whose password hashing asks for too many rounds."""
        if not rounds:
            return
        if max(rounds) > MAX_KDF_ROUNDS:
            raise self.error("certfiles.kdf.too_many", rounds=max(rounds), limit=MAX_KDF_ROUNDS)
        # Summed over the whole file: a thousand encrypted keys of 20,000
        # rounds each cost as much as one of 20 million.
        self.rounds += sum(rounds)
        if self.rounds > MAX_KDF_ROUNDS_TOTAL:
            raise self.error("certfiles.kdf.too_many", rounds=self.rounds, limit=MAX_KDF_ROUNDS_TOTAL)

    def add_certificates(self, certs: Sequence[x509.Certificate]) -> None:
        self.check_count(len(certs))
        for cert in certs:
            position = len(self.material.certificates) + 1
            defect = certificate_defect(cert)
            if defect is not None:
                raise self.error("certfiles.cert.malformed", position=position, defect=defect)
            self.material.certificates.append(cert)

    # PEM ----------------------------------------------------------------

    def pem(self, text: bytes) -> None:
        blocks = list(_BLOCK_RE.finditer(text))
        starts = {m.start() for m in blocks}
        ends = {m.end() for m in blocks}
        for m in _BEGIN_RE.finditer(text):
            if m.start() not in starts:
                raise self.error("certfiles.pem.truncated", block=m.group(1).decode("ascii"))
        for m in _END_RE.finditer(text):
            if m.end() not in ends:
                raise self.error("certfiles.pem.truncated", block=m.group(1).decode("ascii"))
        self.check_count(sum(1 for m in blocks if m.group("label").decode("ascii") in _CERT_LABELS))
        unsupported: list[str] = []
        for m in blocks:
            label = m.group("label").decode("ascii")
            body = m.group("body")
            if label in _CERT_LABELS:
                self.add_certificates([
                    self._decode(label, lambda label=label, body=body: x509.load_pem_x509_certificate(
                        _clean_block(label, body, "CERTIFICATE")))])
            elif label in _CSR_LABELS:
                self.material.csrs.append(
                    self._decode(label, lambda label=label, body=body: x509.load_pem_x509_csr(
                        _clean_block(label, body, "CERTIFICATE REQUEST"))))
            elif label in _KEY_LABELS:
                self._pem_key(label, body)
            elif label in _PKCS7_LABELS:
                self._pem_pkcs7(label, body)
            elif label not in _IGNORED_LABELS:
                unsupported.append(label)
        if self.material.empty and unsupported:
            raise self.error("certfiles.pem.unsupported", blocks=", ".join(dict.fromkeys(unsupported)))

    def _decode(self, label: str, load):  # type: ignore[no-untyped-def]
        try:
            return load()
        except x509.InvalidVersion as exc:
            raise self.error("certfiles.cert.malformed", position=len(self.material.certificates) + 1,
                             defect=Msg.of("certfiles.defect.version", version=exc.parsed_version + 1)) from None
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block=label) from None
        except (ValueError, TypeError):
            raise self.error("certfiles.pem.corrupt", block=label) from None

    def _pem_key(self, label: str, body: bytes) -> None:
        block = _clean_block(label, body, label)
        if not _is_encrypted_block(label, body):
            self.material.keys.append(self._decode(label, lambda: serialization.load_pem_private_key(block, None)))
            return
        if self.passphrase is None:
            self.material.encrypted_keys += 1
            return
        if label == "ENCRYPTED PRIVATE KEY":
            try:
                self.check_rounds(_pkcs8_rounds(serialization_der(block)))
            except ValueError:
                pass  # not base64: cryptography says the block is corrupt
        try:
            self.material.keys.append(serialization.load_pem_private_key(block, self.passphrase))
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block=label) from None
        except (ValueError, TypeError):
            # cryptography reports a wrong passphrase and a damaged encrypted
            # body the same way; a wrong passphrase is by far the likelier.
            raise self.error("certfiles.key.wrong_passphrase") from None

    def _pem_pkcs7(self, label: str, body: bytes) -> None:
        block = _clean_block(label, body, "PKCS7")
        self.material.containers.add("pkcs7")
        try:
            der = serialization_der(block)
        except ValueError:
            der = b""
        self._pkcs7_kind(der)
        # PKCS#7 input only: the module brings the email package, ~5 ms of
        # every start-up (docs/performance.md, figure 2).
        from cryptography.hazmat.primitives.serialization import pkcs7

        try:
            certs = pkcs7.load_pem_pkcs7_certificates(block)
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block=label) from None
        except x509.InvalidVersion as exc:
            raise self.error("certfiles.cert.malformed", position=len(self.material.certificates) + 1,
                             defect=Msg.of("certfiles.defect.version", version=exc.parsed_version + 1)) from None
        except ValueError as exc:
            if "no certificate" in str(exc).lower():
                raise self.error("certfiles.p7.empty") from None
            raise self.error("certfiles.pem.corrupt", block=label) from None
        if not certs:
            raise self.error("certfiles.p7.empty")
        self.add_certificates(certs)

    def _pkcs7_kind(self, der: bytes) -> None:
        """Refuse a PKCS#7/CMS structure that is not a certificate bundle:
        its content type is the first OID of the outer SEQUENCE."""
        try:
            start, _end, _tag = _tlv(der, 0)
            ostart, oend, tag = _tlv(der, start)
        except ValueError:
            return
        if tag != 0x06:
            return
        oid = der[start:oend]
        if oid == _PKCS7_ENVELOPED:
            raise self.error("certfiles.p7.enveloped")
        if oid == _PKCS7_ENCRYPTED:
            raise self.error("certfiles.p7.encrypted")

    # DER ----------------------------------------------------------------

    def der(self, data: bytes) -> None:
        # Cheap structural loaders first; PKCS#12 (which may run a slow key
        # derivation) and keys last.
        try:
            cert = x509.load_der_x509_certificate(data)
        except x509.InvalidVersion as exc:
            raise self.error("certfiles.cert.malformed", position=1,
                             defect=Msg.of("certfiles.defect.version", version=exc.parsed_version + 1)) from None
        except (ValueError, UnsupportedAlgorithm):
            pass
        else:
            self.add_certificates([cert])
            return
        try:
            self.material.csrs.append(x509.load_der_x509_csr(data))
            return
        except (ValueError, UnsupportedAlgorithm):
            pass
        if self._der_pkcs7(data) or self._der_pkcs12(data) or self._der_key(data):
            return
        raise self.error("certfiles.unrecognised")

    def _der_pkcs7(self, data: bytes) -> bool:
        self._pkcs7_kind(data)
        # PKCS#7 input only (see _pem_pkcs7): it brings the email package, ~5 ms of
        # every start-up (docs/performance.md, figure 2).
        from cryptography.hazmat.primitives.serialization import pkcs7

        try:
            certs = pkcs7.load_der_pkcs7_certificates(data)
        except x509.InvalidVersion as exc:
            raise self.error("certfiles.cert.malformed", position=len(self.material.certificates) + 1,
                             defect=Msg.of("certfiles.defect.version", version=exc.parsed_version + 1)) from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            if "no certificate" in str(exc).lower():
                raise self.error("certfiles.p7.empty") from None
            return False
        self.material.containers.add("pkcs7")
        if not certs:
            raise self.error("certfiles.p7.empty")
        self.add_certificates(certs)
        return True

    def _der_pkcs12(self, data: bytes) -> bool:
        # A passphrase given for some other input must not stop an
        # unprotected PKCS#12 from loading; Windows also exports with "".
        # PKCS#12 input only, like pkcs7 above.
        from cryptography.hazmat.primitives.serialization import pkcs12

        rounds = _pkcs12_rounds(data)
        if rounds is None:
            # Only a structure whose cost could be read first is handed to
            # OpenSSL, which would run whatever key derivation it asks for.
            return False
        self.check_rounds(rounds)
        attempts: list[bytes | None] = [self.passphrase] if self.passphrase is not None else []
        attempts.append(None)  # OpenSSL tries both no password and "" for None
        password_problem = False
        unsupported = False
        for password in attempts:
            # What each passphrase opens is counted before OpenSSL opens it
            # (only the keys inside encrypted parts are new here).
            inner = _pkcs12_rounds(data, password or b"") or []
            self.check_rounds(inner[len(rounds):])
            try:
                key, cert, extra = pkcs12.load_key_and_certificates(data, password)
            except x509.InvalidVersion as exc:
                raise self.error("certfiles.cert.malformed", position=1, defect=Msg.of(
                    "certfiles.defect.version", version=exc.parsed_version + 1)) from None
            except UnsupportedAlgorithm:
                # The password opened the file (or none was needed), but a
                # key inside is of a type cryptography cannot read (an old
                # DSA variant, a GOST key, ...): not a password problem.
                unsupported = True
                continue
            except (ValueError, TypeError) as exc:
                # "Could not deserialize" means not PKCS#12 at all; "Invalid
                # password" means the MAC or decryption failed; anything else
                # is a key or certificate inside that cannot be read.
                text = str(exc).lower()
                if "deserialize" in text:
                    return False
                if "password" in text or "mac" in text:
                    password_problem = True
                else:
                    unsupported = True
                continue
            self.material.containers.add("pkcs12")
            if key is not None:
                self.material.keys.append(key)
            self.add_certificates([*([cert] if cert is not None else []), *extra])
            return True
        if unsupported:
            raise self.error("certfiles.p12.unsupported_key")
        if password_problem:
            if self.passphrase is None:
                raise self.error("certfiles.p12.password_needed")
            raise self.error("certfiles.p12.wrong_password")
        return False

    def _der_key(self, data: bytes) -> bool:
        try:
            self.material.keys.append(serialization.load_der_private_key(data, None))
            return True
        except TypeError:
            pass  # encrypted PKCS#8
        except (ValueError, UnsupportedAlgorithm):
            return False
        if self.passphrase is None:
            self.material.encrypted_keys += 1
            return True
        self.check_rounds(_pkcs8_rounds(data))
        try:
            self.material.keys.append(serialization.load_der_private_key(data, self.passphrase))
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block="ENCRYPTED PRIVATE KEY") from None
        except (ValueError, TypeError):
            raise self.error("certfiles.key.wrong_passphrase") from None
        return True


def load_material(data: bytes, *, name: str, passphrase: bytes | None = None,
                  field: str | None = None, max_certificates: int | None = MAX_CERTIFICATES) -> Material:
    """Recognise the format of *data* and return everything it holds.

    Args:
        data: the bytes the user handed over.
        name: what to call them in messages (usually the file name).
        passphrase: decrypts encrypted keys and PKCS#12 files.
        field: the form input the data came from, copied into errors.
        max_certificates: refuse more certificates than this
            (:data:`MAX_CERTIFICATES`; :data:`MAX_BUNDLE_CERTIFICATES` for a
            CA bundle; ``None``: only the size limits the count).

    Returns:
        The certificates, keys and CSRs found.  An encrypted key is not an
        error here when no passphrase was given: it is counted in
        :attr:`Material.encrypted_keys`.

    Raises:
        InputError: empty or oversized input, nothing recognisable, a
            corrupted or truncated PEM block, a PKCS#12 file whose password
            is missing or wrong, a PKCS#7 bundle without certificates, an
            encrypted key whose passphrase is wrong, more certificates than
            *max_certificates* (``certfiles.too_many``), or a PKCS#12 file or
            encrypted key asking for more password-hashing rounds than
            :data:`MAX_KDF_ROUNDS` (``certfiles.kdf.too_many``).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_INPUT_BYTES:
        raise too_large(name, len(data), field=field)
    text = _normalise(data)
    if not text.strip():
        raise _err("certfiles.empty", field, name=name)
    loader = _Loader(name, passphrase, field, max_certificates)
    # Library warnings never reach the terminal: cryptography warns about a
    # negative serial number (some real certificates, even in certifi's
    # bundle, carry one) or a PKCS#7 bundle in an unusual order.  What
    # matters to the user becomes a note; the rest goes to the debug log.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if _BEGIN_RE.search(text) or _END_RE.search(text):
            loader.pem(text)
        elif data[:1] == b"\x30":  # an ASN.1 SEQUENCE: every DER format here starts so
            loader.der(data)
    for warning in caught:
        said = str(warning.message)
        if "serial number" in said.lower():
            note = Msg.of("certfiles.note.serial", name=name)
        elif "pkcs7" in said.lower() or "pkcs#7" in said.lower() or "order" in said.lower():
            note = Msg.of("certfiles.note.pkcs7", name=name)
        else:
            log.debug("warning while reading %s: %s", name, said)
            continue
        if note not in loader.material.notes:
            loader.material.notes.append(note)
    if loader.material.empty:
        raise _err("certfiles.unrecognised", field, name=name)
    return loader.material


def load_file(path: str | os.PathLike[str], *, passphrase: bytes | None = None,
              field: str | None = None) -> Material:
    """Read the file at *path* (refusing oversized ones before reading them)
    and :func:`load_material` it.

    Raises:
        InputError: the file cannot be read, or any reason of
            :func:`load_material`.
    """
    name = os.fspath(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_INPUT_BYTES:
            raise too_large(name, size, field=field)
        with open(path, "rb") as fh:
            # The file may grow between stat and read: never read more than the cap.
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise _err("certfiles.unreadable", field, name=name,
                   reason=exc.strerror or exc.__class__.__name__) from None
    return load_material(data, name=name, passphrase=passphrase, field=field)


# -- precise helpers -----------------------------------------------------------

def certificates_from(data: bytes, *, name: str, field: str | None = None,
                      passphrase: bytes | None = None) -> list[x509.Certificate]:
    """The certificates in *data*, in file order.

    Raises:
        InputError: no certificate; the message says what the file is instead
            (a CSR that still has to go to the CA, a private key) when it can.
    """
    return require_certificates(load_material(data, name=name, field=field, passphrase=passphrase), field)


def require_certificates(material: Material, field: str | None = None) -> list[x509.Certificate]:
    """The certificates of *material*, or the precise reason it has none:
    a PKCS#12 file that opened but holds only a key, a CSR that still has
    to go to the CA, a lone private key."""
    name = material.name
    if material.certificates:
        return list(material.certificates)
    if "pkcs12" in material.containers:
        raise _err("certfiles.p12.no_cert", field, name=name)
    if material.csrs:
        raise _err("certfiles.cert.is_csr", field, name=name)
    if material.keys or material.encrypted_keys:
        raise _err("certfiles.cert.is_key", field, name=name)
    raise _err("certfiles.cert.none", field, name=name)


def private_key_from(data: bytes, *, name: str, passphrase: bytes | None = None,
                     field: str | None = None) -> PrivateKeyTypes:
    """The one private key in *data*, decrypted with *passphrase* if needed.

    Raises:
        InputError: no key, several keys, an encrypted key without a
            passphrase, or a wrong passphrase.
    """
    material = load_material(data, name=name, passphrase=passphrase, field=field)
    count = len(material.keys) + material.encrypted_keys
    if count > 1:
        raise _err("certfiles.key.several", field, name=name, count=count)
    if material.encrypted_keys:
        raise _err("certfiles.key.passphrase_needed", field, name=name)
    if material.keys:
        return material.keys[0]
    if material.certificates:
        raise _err("certfiles.key.is_cert", field, name=name)
    if material.csrs:
        raise _err("certfiles.key.is_csr", field, name=name)
    raise _err("certfiles.key.none", field, name=name)


def csr_from(data: bytes, *, name: str, field: str | None = None) -> x509.CertificateSigningRequest:
    """The one certificate signing request in *data*.

    Raises:
        InputError: no CSR (the message says when it is a certificate
            already), or several.
    """
    material = load_material(data, name=name, field=field)
    if len(material.csrs) > 1:
        raise _err("certfiles.csr.several", field, name=name, count=len(material.csrs))
    if material.csrs:
        return material.csrs[0]
    if material.certificates:
        raise _err("certfiles.csr.is_cert", field, name=name)
    raise _err("certfiles.csr.none", field, name=name)


# -- password-hashing cost -------------------------------------------------------

_PBMAC1 = "1.2.840.113549.1.5.14"


def _algorithm_rounds(algorithm: Any) -> list[int]:
    """The rounds an asn1crypto EncryptionAlgorithm asks for (PBES1, PBES2
    with PBKDF2, PKCS#12 PBE); ``[]`` for a scheme without a count (scrypt
    has its own memory limit in OpenSSL)."""
    try:
        return [int(algorithm.kdf_iterations)]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def _pkcs8_rounds(der: bytes) -> list[int]:
    """The rounds an encrypted PKCS#8 key asks for (``[]`` when unreadable)."""
    from asn1crypto import keys as asn1keys

    try:
        info = asn1keys.EncryptedPrivateKeyInfo.load(der)
        return _algorithm_rounds(info["encryption_algorithm"])
    except (ValueError, TypeError, KeyError):
        return []


def _bag_rounds(bags: Any, depth: int = 0) -> list[int]:
    out: list[int] = []
    if depth > 4:
        raise ValueError("safe contents nested too deep")
    for bag in bags:
        kind = bag["bag_id"].native
        if kind == "pkcs8_shrouded_key_bag":
            out += _algorithm_rounds(bag["bag_value"]["encryption_algorithm"])
        elif kind == "safe_contents":
            out += _bag_rounds(bag["bag_value"], depth + 1)
    return out


def _pbes2_decrypt(algorithm: Any, data: bytes, password: bytes) -> bytes | None:
    """*data* decrypted as PBES2 (PBKDF2, then AES-CBC) with *password*;
    ``None`` for any other scheme or when the password does not fit."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    try:
        if algorithm.kdf != "pbkdf2" or algorithm.encryption_cipher != "aes" or algorithm.encryption_mode != "cbc":
            return None
        digest = {"sha1": hashes.SHA1(), "sha224": hashes.SHA224(), "sha256": hashes.SHA256(),
                  "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[algorithm.kdf_hmac]
        key = PBKDF2HMAC(digest, algorithm.key_length, algorithm.kdf_salt,
                         algorithm.kdf_iterations).derive(password)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(algorithm.encryption_iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm):
        return None


def _pkcs12_rounds(data: bytes, password: bytes | None = None) -> list[int] | None:
    """Every count of password-hashing rounds a PKCS#12 file asks for (its
    MAC, each encrypted part and each shrouded key), read from the structure
    with asn1crypto before OpenSSL is handed the file; ``None`` when *data*
    is not a PKCS#12 structure asn1crypto can read.

    Keys inside an encrypted part can only be seen after decrypting it:
    with *password*, a PBES2 part (what OpenSSL 3 and cryptography write)
    is decrypted here (its own count checked first) and its keys counted
    too.  A part in a legacy scheme (RC2, 3DES) stays closed; no common
    tool puts keys there.
    """
    from asn1crypto import algos
    from asn1crypto import pkcs12 as asn1pkcs12

    try:
        pfx = asn1pkcs12.Pfx.load(data)
        if pfx["version"].native != "v3":
            return None
        rounds: list[int] = []
        mac = pfx["mac_data"]
        if mac.native is not None:
            rounds.append(int(mac["iterations"].native))
            digest = mac["mac"]["digest_algorithm"]
            if digest["algorithm"].dotted == _PBMAC1:
                # RFC 9579: the count that matters is PBKDF2's, in the parameters.
                params = digest["parameters"].dump()
                kdf = algos.KdfAlgorithm.load(der_children(params)[0])
                rounds.append(int(kdf["parameters"]["iteration_count"].native))
        for info in pfx.authenticated_safe:
            kind = info["content_type"].native
            if kind == "data":
                rounds += _bag_rounds(asn1pkcs12.SafeContents.load(info["content"].native))
            elif kind == "encrypted_data":
                content = info["content"]["encrypted_content_info"]
                algorithm = content["content_encryption_algorithm"]
                part = _algorithm_rounds(algorithm)
                rounds += part
                if password is not None and max(part, default=0) <= MAX_KDF_ROUNDS:
                    plain = _pbes2_decrypt(algorithm, content["encrypted_content"].native or b"", password)
                    if plain is not None:
                        rounds += _bag_rounds(asn1pkcs12.SafeContents.load(plain))
        return rounds
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        return None


def kdf_rounds(data: bytes) -> list[int] | None:
    """The password-hashing rounds *data* (a DER PKCS#12 file or encrypted
    PKCS#8 key) asks for, or ``None`` when it is neither: what
    :func:`load_material` checks against :data:`MAX_KDF_ROUNDS` before
    trying a passphrase."""
    rounds = _pkcs12_rounds(data)
    return rounds if rounds is not None else (_pkcs8_rounds(data) or None)


# -- small utilities -----------------------------------------------------------

def serialization_der(pem_block: bytes) -> bytes:
    """The DER inside one cleaned PEM block (base64 between the markers)."""
    lines = pem_block.strip().split(b"\n")[1:-1]
    try:
        return base64.b64decode(b"".join(lines), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


def cert_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as browsers and ``openssl x509 -fingerprint`` show
    it: upper-case hex pairs joined by colons."""
    return sha256_fingerprint(cert.public_bytes(serialization.Encoding.DER))


#: Signature hashes that no public CA issues with any more and that current
#: clients refuse (the CA/Browser Forum requires SHA-256 or better).
WEAK_HASHES = frozenset({"md2", "md4", "md5", "sha1", "sha224"})


def hash_label(name: str) -> str:
    """How a hash algorithm is written for people.

    >>> hash_label("sha1"), hash_label("md5"), hash_label("sha224")
    ('SHA-1', 'MD5', 'SHA-224')
    """
    return name.upper().replace("SHA", "SHA-").replace("SHA--", "SHA-")


def subject_alt_name(
        item: x509.Certificate | x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    """The subjectAltName extension of a certificate or CSR; ``None`` without one.

    Raises what cryptography raises for malformed extensions (ValueError and
    relatives): a caller that must survive those catches them.
    """
    try:
        return item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def san_values(san: x509.SubjectAlternativeName | None) -> list[str]:
    """The DNS names, then the IP addresses (as text), of *san*.

    >>> import ipaddress
    >>> san_values(x509.SubjectAlternativeName([x509.DNSName("mail.example.jp"),
    ...     x509.IPAddress(ipaddress.ip_address("192.0.2.1")), x509.RFC822Name("a@example.jp")]))
    ['mail.example.jp', '192.0.2.1']
    """
    if san is None:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def certs_to_pem(certs: Sequence[x509.Certificate]) -> bytes:
    """Concatenated PEM of *certs*, in the given order, LF line endings."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
