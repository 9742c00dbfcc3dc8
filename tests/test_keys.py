"""Key choice, generation, PEM form and inspection (xmailnb.pki.keys)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

import pki
from xmailnb.pki import keys
from xmailnb.errors import InputError
from xmailnb.i18n import Msg, catalog
from xmailnb.pki.keys import KeySpec


def rendered(msg: Msg) -> dict[str, str]:
    """Render in both languages, checking the key exists and every placeholder is filled."""
    out = {}
    for lang in ("en", "ja"):
        assert msg.key in catalog(lang), f"{msg.key} missing from {lang}"
        text = msg.render(lang)
        assert "{" not in text, text
        out[lang] = text
    return out


@pytest.fixture(scope="module")
def rsa_key():
    return keys.generate_private_key(KeySpec())


@pytest.fixture(scope="module")
def ec_key():
    return keys.generate_private_key(KeySpec(kind="ec"))


@pytest.fixture(scope="module")
def leaf():
    return pki.self_signed_leaf("mail.example.jp")


# -- KeySpec -----------------------------------------------------------------------

def test_defaults_are_rsa_2048():
    spec = KeySpec()
    assert (spec.kind, spec.size, spec.curve) == ("rsa", 2048, "P-256")
    assert spec.validate() is spec
    assert keys.KEY_TYPES == ("rsa", "ec")
    assert keys.RSA_SIZES == (2048, 3072, 4096)
    assert keys.EC_CURVES == ("P-256", "P-384")


@pytest.mark.parametrize("kind, size, curve, expected", [
    ("RSA", "2048", "", KeySpec("rsa", 2048, "P-256")),
    ("rsa", "4096", "P-256", KeySpec("rsa", 4096, "P-256")),
    (" Rsa ", " 3072 ", None, KeySpec("rsa", 3072, "P-256")),
    ("", "", "", KeySpec()),
    ("ec", "", "p256", KeySpec("ec", 2048, "P-256")),
    ("EC", "2048", "P-384", KeySpec("ec", 2048, "P-384")),
    ("ec", "", "secp384r1", KeySpec("ec", 2048, "P-384")),
    ("ec", "", "prime256v1", KeySpec("ec", 2048, "P-256")),
    ("ec", "", "secp256r1", KeySpec("ec", 2048, "P-256")),
    ("ec", 2048, "p-384", KeySpec("ec", 2048, "P-384")),
])
def test_from_strings_accepts_cli_and_form_spellings(kind, size, curve, expected):
    assert KeySpec.from_strings(kind, size, curve) == expected


@pytest.mark.parametrize("kind, size, curve, field, key", [
    ("dsa", "2048", "", "keytype", "keys.type.invalid"),
    ("ed25519", "", "", "keytype", "keys.type.invalid"),
    ("rsa", "1024", "", "keysize", "keys.size.weak"),
    ("rsa", "512", "", "keysize", "keys.size.weak"),
    ("rsa", "8192", "", "keysize", "keys.size.unsupported"),
    ("rsa", "2500", "", "keysize", "keys.size.unsupported"),
    ("rsa", "abc", "", "keysize", "keys.size.invalid"),
    ("rsa", "2048bit", "", "keysize", "keys.size.invalid"),
    ("rsa", "-2048", "", "keysize", "keys.size.invalid"),
    ("rsa", "２０４８", "", "keysize", "keys.size.invalid"),
    ("ec", "", "P-521", "curve", "keys.curve.invalid"),
    ("ec", "", "secp256k1", "curve", "keys.curve.invalid"),
])
def test_from_strings_refuses_with_field(kind, size, curve, field, key):
    with pytest.raises(InputError) as info:
        KeySpec.from_strings(kind, size, curve)
    assert info.value.field == field
    assert info.value.msg.key == key
    assert info.value.fix is not None
    rendered(info.value.fix)
    text = rendered(info.value.msg)
    if field == "keysize":
        # The user is told which sizes are allowed.
        for lang in ("en", "ja"):
            assert all(str(s) in text[lang] for s in keys.RSA_SIZES)


def test_validate_checks_only_what_the_type_uses():
    with pytest.raises(InputError) as info:
        KeySpec(kind="rsa", size=1024).validate()
    assert info.value.field == "keysize"
    KeySpec(kind="ec", size=1024).validate()  # size is irrelevant for EC
    KeySpec(kind="rsa", curve="nonsense").validate()  # curve is irrelevant for RSA
    with pytest.raises(InputError) as info:
        KeySpec(kind="ec", curve="P-521").validate()
    assert info.value.field == "curve"
    with pytest.raises(InputError) as info:
        KeySpec(kind="RSA").validate()  # from_strings normalises case; the dataclass does not
    assert info.value.field == "keytype"


def test_describe_gives_compatibility_advice():
    assert KeySpec().describe().key == "keys.describe.rsa2048"
    strong = KeySpec(size=4096).describe()
    assert strong.key == "keys.describe.rsa_strong"
    assert "4096" in rendered(strong)["en"]
    ec_note = rendered(KeySpec(kind="ec", curve="P-384").describe())
    for lang in ("en", "ja"):
        assert "P-384" in ec_note[lang] and "1.1.0" in ec_note[lang] and "ECDHE" in ec_note[lang] and "RSA" in ec_note[lang]
    assert "0.9.8" in rendered(KeySpec().describe())["en"]


def test_spec_summary_matches_key_summary(rsa_key, ec_key):
    assert KeySpec().summary == keys.key_summary(rsa_key) == "RSA 2048"
    assert KeySpec(kind="ec").summary == keys.key_summary(ec_key) == "EC P-256"


# -- generation and PEM ------------------------------------------------------------------

def test_rsa_key_is_written_in_traditional_form(rsa_key):
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 2048
    assert rsa_key.public_key().public_numbers().e == 65537
    pem = keys.private_key_pem(rsa_key)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert pem.rstrip().endswith(b"-----END RSA PRIVATE KEY-----")
    assert b"ENCRYPTED" not in pem
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert keys.public_key_matches(loaded, rsa_key)


@pytest.mark.parametrize("curve, cls", [("P-256", ec.SECP256R1), ("P-384", ec.SECP384R1)])
def test_ec_key_generation_and_pem(curve, cls):
    key = keys.generate_private_key(KeySpec(kind="ec", curve=curve))
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, cls)
    assert keys.key_summary(key) == f"EC {curve}"
    pem = keys.private_key_pem(key)
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    assert keys.public_key_matches(serialization.load_pem_private_key(pem, None), key)


def test_generate_refuses_invalid_spec_before_working():
    with pytest.raises(InputError) as info:
        keys.generate_private_key(KeySpec(size=1024))
    assert info.value.field == "keysize"


def test_pem_refuses_keys_xmail_cannot_serve():
    with pytest.raises(InputError) as info:
        keys.private_key_pem(ed25519.Ed25519PrivateKey.generate())
    assert info.value.field == "key"
    assert info.value.msg.key == "keys.unsupported"
    assert "Ed25519" in rendered(info.value.msg)["ja"]
    rendered(info.value.fix)
    with pytest.raises(TypeError):
        keys.private_key_pem(b"not a key")


# -- inspection ---------------------------------------------------------------------------

def test_key_summary_accepts_keys_certificates_and_csrs(rsa_key, ec_key, leaf):
    assert keys.key_summary(rsa_key.public_key()) == "RSA 2048"
    assert keys.key_summary(ec_key.public_key()) == "EC P-256"
    assert keys.key_summary(leaf.cert) == "RSA 2048"
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.jp")]))
           .sign(ec_key, hashes.SHA256()))
    assert keys.key_summary(csr) == "EC P-256"
    assert keys.key_summary(ed25519.Ed25519PrivateKey.generate()) == "Ed25519"
    assert keys.key_summary(ec.generate_private_key(ec.SECP521R1())) == "EC P-521"


def test_key_strength(rsa_key, ec_key, leaf):
    assert keys.key_strength_problem(rsa_key) is None
    assert keys.key_strength_problem(ec_key.public_key()) is None
    assert keys.key_strength_problem(leaf.cert) is None
    assert keys.key_strength_problem(ec.generate_private_key(ec.SECP521R1())) is None

    weak_rsa = keys.key_strength_problem(rsa.generate_private_key(65537, 1024))
    assert weak_rsa is not None and weak_rsa.key == "keys.weak.rsa"
    assert "1024" in rendered(weak_rsa)["en"] and "2048" in rendered(weak_rsa)["ja"]

    weak_ec = keys.key_strength_problem(ec.generate_private_key(ec.SECP224R1()))
    assert weak_ec is not None and weak_ec.key == "keys.weak.ec"
    rendered(weak_ec)

    odd_curve = keys.key_strength_problem(ec.generate_private_key(ec.SECP256K1()))
    assert odd_curve is not None and odd_curve.key == "keys.weak.curve"
    assert "secp256k1" in rendered(odd_curve)["en"]

    other = keys.key_strength_problem(ed25519.Ed25519PrivateKey.generate().public_key())
    assert other is not None and other.key == "keys.unsupported"
    rendered(other)


def test_public_key_matches(rsa_key, ec_key, leaf):
    assert keys.public_key_matches(leaf.key, leaf.cert)
    assert keys.public_key_matches(leaf.cert, leaf.key.public_key())
    assert not keys.public_key_matches(rsa_key, leaf.cert)
    assert not keys.public_key_matches(ec_key, rsa_key)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.jp")]))
           .sign(rsa_key, hashes.SHA256()))
    assert keys.public_key_matches(rsa_key, csr)
    assert keys.public_key_matches(csr.public_key(), rsa_key)


def test_fingerprint_identifies_the_key_not_its_container(rsa_key, leaf):
    fp = keys.public_key_fingerprint(leaf.key)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    assert keys.public_key_fingerprint(leaf.cert) == fp
    assert keys.public_key_fingerprint(leaf.key.public_key()) == fp
    assert keys.public_key_fingerprint(rsa_key) != fp
    # Nothing of the key itself is in it: it is a digest of the public part only.
    spki = leaf.key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    assert fp.replace(":", "").lower() == hashlib.sha256(spki).hexdigest()


# -- catalogs -----------------------------------------------------------------------------

_SOURCE = Path(keys.__file__).read_text(encoding="utf-8")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_key_exists_in_both_catalogs():
    used = set(re.findall(r'"(keys\.[a-z0-9_.]+)"', _SOURCE))
    assert used, "no keys found"
    for lang in ("en", "ja"):
        missing = used - catalog(lang).keys()
        assert not missing, (lang, missing)
