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

import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field as dc_field
from typing import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from .errors import InputError

__all__ = [
    "MAX_INPUT_BYTES",
    "Material",
    "load_material",
    "load_file",
    "certificates_from",
    "private_key_from",
    "csr_from",
    "is_encrypted_key_pem",
    "cert_fingerprint",
    "sha256_hex",
    "certs_to_pem",
]

#: Refuse inputs larger than this.  Certificates are a few KB; even a full
#: public CA bundle (certifi's is ~300 KB) fits, a disk image does not.
MAX_INPUT_BYTES = 1024 * 1024


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
    """

    certificates: list[x509.Certificate] = dc_field(default_factory=list)
    keys: list[PrivateKeyTypes] = dc_field(default_factory=list)
    csrs: list[x509.CertificateSigningRequest] = dc_field(default_factory=list)
    name: str = ""
    encrypted_keys: int = 0

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


# -- the loader ----------------------------------------------------------------

def _err(key: str, field: str | None, **params: object) -> InputError:
    return InputError.of(key, key + ".fix", field=field, **params)  # type: ignore[return-value]


class _Loader:
    """Collects what one input holds into a :class:`Material`."""

    def __init__(self, name: str, passphrase: bytes | None, field: str | None) -> None:
        self.name = name
        self.passphrase = passphrase
        self.field = field
        self.material = Material(name=name)

    def error(self, key: str, **params: object) -> InputError:
        return _err(key, self.field, name=self.name, **params)

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
        unsupported: list[str] = []
        for m in blocks:
            label = m.group("label").decode("ascii")
            body = m.group("body")
            if label in _CERT_LABELS:
                self.material.certificates.append(
                    self._decode(label, lambda: x509.load_pem_x509_certificate(
                        _clean_block(label, body, "CERTIFICATE"))))
            elif label in _CSR_LABELS:
                self.material.csrs.append(
                    self._decode(label, lambda: x509.load_pem_x509_csr(
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
        try:
            self.material.keys.append(serialization.load_pem_private_key(block, self.passphrase))
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block=label) from None
        except (ValueError, TypeError):
            # cryptography reports a wrong passphrase and a damaged encrypted
            # body the same way; a wrong passphrase is by far the likelier.
            raise self.error("certfiles.key.wrong_passphrase") from None

    def _pem_pkcs7(self, label: str, body: bytes) -> None:
        from cryptography.hazmat.primitives.serialization import pkcs7

        try:
            certs = pkcs7.load_pem_pkcs7_certificates(_clean_block(label, body, "PKCS7"))
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block=label) from None
        except ValueError as exc:
            if "no certificate" in str(exc).lower():
                raise self.error("certfiles.p7.empty") from None
            raise self.error("certfiles.pem.corrupt", block=label) from None
        if not certs:
            raise self.error("certfiles.p7.empty")
        self.material.certificates.extend(certs)

    # DER ----------------------------------------------------------------

    def der(self, data: bytes) -> None:
        # Cheap structural loaders first; PKCS#12 (which may run a slow key
        # derivation) and keys last.
        try:
            self.material.certificates.append(x509.load_der_x509_certificate(data))
            return
        except (ValueError, UnsupportedAlgorithm):
            pass
        try:
            self.material.csrs.append(x509.load_der_x509_csr(data))
            return
        except (ValueError, UnsupportedAlgorithm):
            pass
        if self._der_pkcs7(data) or self._der_pkcs12(data) or self._der_key(data):
            return
        raise self.error("certfiles.unrecognised")

    def _der_pkcs7(self, data: bytes) -> bool:
        from cryptography.hazmat.primitives.serialization import pkcs7

        try:
            certs = pkcs7.load_der_pkcs7_certificates(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            if "no certificate" in str(exc).lower():
                raise self.error("certfiles.p7.empty") from None
            return False
        if not certs:
            raise self.error("certfiles.p7.empty")
        self.material.certificates.extend(certs)
        return True

    def _der_pkcs12(self, data: bytes) -> bool:
        from cryptography.hazmat.primitives.serialization import pkcs12

        # A passphrase given for some other input must not stop an
        # unprotected PKCS#12 from loading; Windows also exports with "".
        attempts: list[bytes | None] = [self.passphrase] if self.passphrase is not None else []
        attempts += [None, b""]
        password_problem = False
        for password in attempts:
            try:
                key, cert, extra = pkcs12.load_key_and_certificates(data, password)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                # "Could not deserialize" means not PKCS#12 at all; anything
                # else means the structure parsed but did not decrypt.
                if "deserialize" in str(exc).lower():
                    return False
                password_problem = True
                continue
            if key is not None:
                self.material.keys.append(key)
            if cert is not None:
                self.material.certificates.append(cert)
            self.material.certificates.extend(extra)
            return True
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
        try:
            self.material.keys.append(serialization.load_der_private_key(data, self.passphrase))
        except UnsupportedAlgorithm:
            raise self.error("certfiles.unsupported", block="ENCRYPTED PRIVATE KEY") from None
        except (ValueError, TypeError):
            raise self.error("certfiles.key.wrong_passphrase") from None
        return True


def load_material(data: bytes, *, name: str, passphrase: bytes | None = None,
                  field: str | None = None) -> Material:
    """Recognise the format of *data* and return everything it holds.

    Args:
        data: the bytes the user handed over.
        name: what to call them in messages (usually the file name).
        passphrase: decrypts encrypted keys and PKCS#12 files.
        field: the form input the data came from, copied into errors.

    Returns:
        The certificates, keys and CSRs found.  An encrypted key is not an
        error here when no passphrase was given: it is counted in
        :attr:`Material.encrypted_keys`.

    Raises:
        InputError: empty or oversized input, nothing recognisable, a
            corrupted or truncated PEM block, a PKCS#12 file whose password
            is missing or wrong, a PKCS#7 bundle without certificates, or an
            encrypted key whose passphrase is wrong.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_INPUT_BYTES:
        raise _err("certfiles.too_large", field, name=name, size=len(data), limit=MAX_INPUT_BYTES)
    text = _normalise(data)
    if not text.strip():
        raise _err("certfiles.empty", field, name=name)
    loader = _Loader(name, passphrase, field)
    # Some certificates in the wild (even in certifi's bundle) carry a
    # negative serial number; cryptography warns, and a warning on the
    # console would only confuse an administrator who cannot change it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*serial number.*")
        if _BEGIN_RE.search(text) or _END_RE.search(text):
            loader.pem(text)
        elif data[:1] == b"\x30":  # an ASN.1 SEQUENCE: every DER format here starts so
            loader.der(data)
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
            raise _err("certfiles.too_large", field, name=name, size=size, limit=MAX_INPUT_BYTES)
        with open(path, "rb") as fh:
            # The file may grow between stat and read: never read more than the cap.
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise _err("certfiles.unreadable", field, name=name,
                   reason=exc.strerror or exc.__class__.__name__) from None
    return load_material(data, name=name, passphrase=passphrase, field=field)


# -- precise helpers -----------------------------------------------------------

def certificates_from(data: bytes, *, name: str, field: str | None = None) -> list[x509.Certificate]:
    """The certificates in *data*, in file order.

    Raises:
        InputError: no certificate; the message says what the file is instead
            (a CSR that still has to go to the CA, a private key) when it can.
    """
    material = load_material(data, name=name, field=field)
    if material.certificates:
        return list(material.certificates)
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


# -- small utilities -----------------------------------------------------------

def cert_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as browsers and ``openssl x509 -fingerprint`` show
    it: upper-case hex pairs joined by colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of *data*, for manifests and audit logs."""
    return hashlib.sha256(data).hexdigest()


def certs_to_pem(certs: Sequence[x509.Certificate]) -> bytes:
    """Concatenated PEM of *certs*, in the given order, LF line endings."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
