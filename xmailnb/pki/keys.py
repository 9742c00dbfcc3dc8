"""Private keys for XMail's TLS server: choice, generation, PEM, inspection.

XMail hands ``server.key`` to OpenSSL unchanged.  XMail 1.27 reads PKCS#8 keys
as well as the traditional ``BEGIN RSA PRIVATE KEY`` form, but old Windows
builds shipped OpenSSL 0.9.8, so keys are written in the traditional OpenSSL
format for the widest compatibility, and always unencrypted (XMail has no
passphrase callback).  Only RSA and EC keys are offered: those are what public
CAs issue certificates for.  An EC certificate needs OpenSSL 1.1.0 or later on
the server, because XMail does not turn on ECDHE itself.

Nothing here ever returns key material as text for display: summaries
(``"RSA 2048"``) and SHA-256 fingerprints of the public key identify a key.

>>> spec = KeySpec.from_strings("EC", "", "p256")
>>> key = generate_private_key(spec)
>>> key_summary(key)
'EC P-256'
>>> private_key_pem(key).startswith(b"-----BEGIN EC PRIVATE KEY-----")
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
    x448,
    x25519,
)

from ..errors import InputError
from ..files import sha256_fingerprint
from ..i18n import Msg

__all__ = [
    "KEY_TYPES",
    "RSA_SIZES",
    "EC_CURVES",
    "DEFAULT_KEY_TYPE",
    "DEFAULT_RSA_SIZE",
    "DEFAULT_CURVE",
    "MIN_RSA_BITS",
    "MIN_EC_BITS",
    "KeySpec",
    "generate_private_key",
    "private_key_pem",
    "public_key_of",
    "key_summary",
    "key_strength_problem",
    "public_key_matches",
    "public_key_fingerprint",
    "parse_key_field",
    "sha256_fingerprint",
]

KEY_TYPES: tuple[str, ...] = ("rsa", "ec")
RSA_SIZES: tuple[int, ...] = (2048, 3072, 4096)
EC_CURVES: tuple[str, ...] = ("P-256", "P-384")
DEFAULT_KEY_TYPE = "rsa"
DEFAULT_RSA_SIZE = 2048
DEFAULT_CURVE = "P-256"
# CA/Browser Forum Baseline Requirements 6.1.5: RSA >= 2048, ECDSA P-256 or larger.
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256

# Spellings users type (OpenSSL, NIST, SEC 2) -> our canonical curve name.
# Keys are compared after lower-casing and dropping "-", "_" and spaces.
_CURVE_ALIASES: dict[str, str] = {
    "p256": "P-256", "secp256r1": "P-256", "prime256v1": "P-256", "nistp256": "P-256",
    "p384": "P-384", "secp384r1": "P-384", "nistp384": "P-384",
}
_CURVE_CLASSES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
# cryptography names curves after SEC 2; administrators and CAs say P-256.
_NIST_NAMES: dict[str, str] = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# The curves public CAs accept (Baseline Requirements 6.1.5) and clients support.
_ACCEPTED_CURVES = frozenset(_NIST_NAMES.values())
# Private keys cryptography can load but a TLS server certificate cannot use here.
_OTHER_PRIVATE_KEYS = (dsa.DSAPrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey,
                       x25519.X25519PrivateKey, x448.X448PrivateKey)


def _sizes_text() -> str:
    return " / ".join(str(s) for s in RSA_SIZES)


def _curves_text() -> str:
    return " / ".join(EC_CURVES)


@dataclass(frozen=True)
class KeySpec:
    """Which private key to create.

    ``size`` matters only for RSA and ``curve`` only for EC; the other one keeps
    its default so that a form can switch the type back and forth.

    >>> KeySpec().describe().key
    'keys.describe.rsa2048'
    """

    kind: str = DEFAULT_KEY_TYPE
    size: int = DEFAULT_RSA_SIZE
    curve: str = DEFAULT_CURVE

    def validate(self) -> "KeySpec":
        """Check the spec; return it unchanged so calls can be chained.

        Raises:
            InputError: unknown type (field ``keytype``), RSA size not in
                :data:`RSA_SIZES` (field ``keysize``), or EC curve not in
                :data:`EC_CURVES` (field ``curve``).
        """
        if self.kind not in KEY_TYPES:
            raise InputError.of("keys.type.invalid", "keys.type.fix", field="keytype", value=self.kind)
        if self.kind == "rsa":
            _check_size(self.size)
        elif self.curve not in EC_CURVES:
            raise InputError.of("keys.curve.invalid", "keys.curve.fix", field="curve",
                                value=self.curve, curves=_curves_text())
        return self

    @classmethod
    def from_strings(cls, kind: str | None = "", size: str | int | None = "",
                     curve: str | None = "") -> "KeySpec":
        """Build a spec from command-line or form strings.

        Accepts any case and the usual spellings (``"RSA"``, ``"ec"``,
        ``"p256"``, ``"P-256"``, ``"secp256r1"``, ``"prime256v1"``).  An empty
        value means the default.  Every value given is checked, even the one
        the key type does not use, so that a form shows the same errors as
        :func:`parse_key_field` does field by field.

        Raises:
            InputError: with field ``keytype``, ``keysize`` or ``curve``.
        """
        spec = cls(kind=parse_key_field("keytype", kind),
                   size=parse_key_field("keysize", size),
                   curve=parse_key_field("curve", curve))
        return spec.validate()

    def describe(self) -> Msg:
        """One line for the form: what this choice means for compatibility."""
        if self.kind == "ec":
            return Msg.of("keys.describe.ec", curve=self.curve)
        if self.size == DEFAULT_RSA_SIZE:
            return Msg.of("keys.describe.rsa2048")
        return Msg.of("keys.describe.rsa_strong", size=self.size)

    @property
    def summary(self) -> str:
        """Language-neutral name, as :func:`key_summary` gives for a key: ``"RSA 2048"``."""
        return f"RSA {self.size}" if self.kind == "rsa" else f"EC {self.curve}"


def _shown(text: str, limit: int = 24) -> str:
    """*text* cut to a length a message can show."""
    return text if len(text) <= limit else text[:limit] + "…"


def _check_size(size: int) -> None:
    if size < MIN_RSA_BITS:
        raise InputError.of("keys.size.weak", "keys.size.fix", field="keysize",
                            value=size, minimum=MIN_RSA_BITS, sizes=_sizes_text())
    if size not in RSA_SIZES:
        raise InputError.of("keys.size.unsupported", "keys.size.fix", field="keysize",
                            value=size, sizes=_sizes_text())


def parse_key_field(name: str, value: Any) -> Any:
    """Parse one key-related form field: ``keytype`` -> ``"rsa"|"ec"``,
    ``keysize`` -> ``int``, ``curve`` -> ``"P-256"|"P-384"``.

    Raises:
        InputError: the value is not allowed (its ``field`` is *name*).
        ValueError: *name* is not one of those three fields.
    """
    text = "" if value is None else str(value).strip()
    if name == "keytype":
        if not text:
            return DEFAULT_KEY_TYPE
        kind = text.lower()
        if kind not in KEY_TYPES:
            raise InputError.of("keys.type.invalid", "keys.type.fix", field="keytype", value=text)
        return kind
    if name == "keysize":
        if not text:
            return DEFAULT_RSA_SIZE
        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        else:
            # Allow "2048 bits"-style input only in its bare numeric form; the
            # form offers a list, and the CLI documents plain numbers.
            if not text.isascii() or not text.isdigit():
                raise InputError.of("keys.size.invalid", "keys.size.fix", field="keysize",
                                    value=_shown(text), sizes=_sizes_text())
            if len(text.lstrip("0")) > 6:
                # Far beyond any key length, and int() refuses numbers of
                # thousands of digits (ValueError): say so plainly instead.
                raise InputError.of("keys.size.unsupported", "keys.size.fix", field="keysize",
                                    value=_shown(text), sizes=_sizes_text())
            size = int(text)
        _check_size(size)
        return size
    if name == "curve":
        if not text:
            return DEFAULT_CURVE
        canonical = _CURVE_ALIASES.get(text.lower().replace("-", "").replace("_", "").replace(" ", ""))
        if canonical is None:
            raise InputError.of("keys.curve.invalid", "keys.curve.fix", field="curve",
                                value=text, curves=_curves_text())
        return canonical
    raise ValueError(f"not a key field: {name!r}")


def generate_private_key(spec: KeySpec | None = None) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Create a new private key as *spec* says (default RSA 2048).

    Raises:
        InputError: *spec* is invalid (see :meth:`KeySpec.validate`).
    """
    spec = (spec or KeySpec()).validate()
    if spec.kind == "rsa":
        # 65537: the only public exponent CAs and every TLS stack accept.
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.size)
    return ec.generate_private_key(_CURVE_CLASSES[spec.curve]())


def private_key_pem(key: Any) -> bytes:
    """Serialise *key* for ``server.key``: unencrypted PEM, traditional form
    (``BEGIN RSA PRIVATE KEY`` / ``BEGIN EC PRIVATE KEY``).

    Raises:
        InputError: *key* is a private key of a type XMail cannot serve
            (Ed25519, DSA, ...); field ``key``.
        TypeError: *key* is not a private key at all.
    """
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    if isinstance(key, _OTHER_PRIVATE_KEYS):
        raise InputError.of("keys.unsupported", "keys.unsupported.fix", field="key", type=key_summary(key))
    raise TypeError(f"expected a private key, got {type(key).__name__}")


def public_key_of(obj: Any) -> Any:
    """The public key of a private key, certificate or CSR (or *obj* itself
    when it already is a public key).

    Raises:
        TypeError: *obj* has no public key.
    """
    if isinstance(obj, (x509.Certificate, x509.CertificateSigningRequest)):
        return obj.public_key()
    public_key = getattr(obj, "public_key", None)
    if callable(public_key):
        return public_key()
    if hasattr(obj, "public_bytes"):
        return obj
    raise TypeError(f"no public key in {type(obj).__name__}")


def key_summary(key: Any) -> str:
    """Language-neutral name of a key's type and size: ``"RSA 2048"``,
    ``"EC P-256"``, ``"Ed25519"``.  Accepts private or public keys,
    certificates and CSRs."""
    pub = public_key_of(key)
    if isinstance(pub, rsa.RSAPublicKey):
        return f"RSA {pub.key_size}"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return f"EC {_curve_name(pub.curve)}"
    if isinstance(pub, dsa.DSAPublicKey):
        return f"DSA {pub.key_size}"
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(pub, ed448.Ed448PublicKey):
        return "Ed448"
    return type(pub).__name__.removesuffix("PublicKey").lstrip("_") or "?"


def _curve_name(curve: ec.EllipticCurve) -> str:
    return _NIST_NAMES.get(curve.name, curve.name)


def key_strength_problem(key: Any) -> Msg | None:
    """Why *key* (private or public key, certificate, CSR) must not be used
    for XMail's TLS server, or ``None`` when it is fine.

    Refused: RSA below 2048 bits, EC below 256 bits, EC curves public CAs do
    not accept (only P-256, P-384, P-521 are), and any other key type.
    """
    pub = public_key_of(key)
    if isinstance(pub, rsa.RSAPublicKey):
        if pub.key_size < MIN_RSA_BITS:
            return Msg.of("keys.weak.rsa", bits=pub.key_size, minimum=MIN_RSA_BITS)
        return None
    if isinstance(pub, ec.EllipticCurvePublicKey):
        name = _curve_name(pub.curve)
        if pub.curve.key_size < MIN_EC_BITS:
            return Msg.of("keys.weak.ec", curve=name, bits=pub.curve.key_size, minimum=MIN_EC_BITS)
        if name not in _ACCEPTED_CURVES:
            return Msg.of("keys.weak.curve", curve=name)
        return None
    return Msg.of("keys.unsupported", type=key_summary(pub))


def _spki_der(obj: Any) -> bytes:
    der: bytes = public_key_of(obj).public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def public_key_matches(key: Any, other: Any) -> bool:
    """Whether *key* and *other* carry the same public key.

    Both may be a private key, public key, certificate or CSR; the
    SubjectPublicKeyInfo DER encodings are compared, so an RSA key never
    matches an EC one and parameters count too.
    """
    return _spki_der(key) == _spki_der(other)


def public_key_fingerprint(key: Any) -> str:
    """SHA-256 of the SubjectPublicKeyInfo DER, upper-case hex with colons
    (the style of ``openssl x509 -fingerprint``).

    It is the same for a key, its certificate and its CSR, so it tells which
    key a certificate belongs to without showing any key material.
    """
    return sha256_fingerprint(_spki_der(key))

