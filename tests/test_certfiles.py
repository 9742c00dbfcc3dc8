"""Loading what administrators hand over: every format, every refusal."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import pki
from xmailnb.pki import certfiles
from xmailnb.pki.certfiles import (
    MAX_INPUT_BYTES,
    cert_fingerprint,
    certificates_from,
    certs_to_pem,
    csr_from,
    is_encrypted_key_pem,
    load_file,
    load_material,
    private_key_from,
    sha256_hex,
)
from xmailnb.errors import InputError
from xmailnb.i18n import catalog

PASS = b"correct horse"


@pytest.fixture(scope="module")
def h() -> pki.Hierarchy:
    return pki.hierarchy()


@pytest.fixture(scope="module")
def csr_pem(h) -> bytes:
    req = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "mail.example.jp")]))
           .sign(h.leaf.key, hashes.SHA256()))
    return req.public_bytes(serialization.Encoding.PEM)


def fps(certs) -> list[str]:
    return [cert_fingerprint(c) for c in certs]


def refused(key: str, data: bytes, field: str | None = "cert", **kw) -> InputError:
    with pytest.raises(InputError) as info:
        load_material(data, name="upload.pem", field=field, **kw)
    assert info.value.msg.key == key
    assert info.value.field == field
    assert info.value.msg.params["name"] == "upload.pem"
    return info.value


# -- PEM in its many shapes ----------------------------------------------------

@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_pem_any_line_ending(h, newline):
    data = (h.leaf.pem + h.intermediate.pem).replace(b"\n", newline)
    m = load_material(data, name="bundle.pem")
    assert fps(m.certificates) == fps([h.leaf.cert, h.intermediate.cert])
    assert m.name == "bundle.pem"


def test_pem_with_bom_text_around_and_trailing_junk(h):
    data = (b"\xef\xbb\xbfDear customer,\r\nyour certificate:\r\n\r\n" + h.leaf.pem
            + "Intermediate CA certificate (中間証明書):\n".encode() + h.intermediate.pem
            + b"\nRegards,\nthe CA\n\x00\x01\x02 trailing junk")
    m = load_material(data, name="mail.txt")
    assert fps(m.certificates) == fps([h.leaf.cert, h.intermediate.cert])


def test_pem_indented_as_pasted_from_a_mail(h):
    data = b"\n".join(b"    " + line + b"  " for line in h.leaf.pem.splitlines())
    assert fps(load_material(data, name="x").certificates) == fps([h.leaf.cert])


def test_cert_and_key_in_one_file(h):
    m = load_material(h.leaf.pem + h.leaf.key_pem() + h.intermediate.pem, name="all.pem")
    assert len(m.certificates) == 2
    assert len(m.keys) == 1
    assert m.keys[0].public_key() == h.leaf.cert.public_key()


def test_duplicates_kept_as_written(h):
    m = load_material(h.leaf.pem + h.leaf.pem, name="x")
    assert len(m.certificates) == 2


def test_ec_key_after_ec_parameters():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    params = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    m = load_material(params + pem, name="ec.key")
    assert len(m.keys) == 1


def test_csr_recognised(h, csr_pem):
    m = load_material(csr_pem, name="server.csr")
    assert len(m.csrs) == 1 and not m.certificates


# -- DER, PKCS#7, PKCS#12 ------------------------------------------------------

def test_der_certificate(h):
    assert fps(load_material(h.leaf.der, name="server.cer").certificates) == fps([h.leaf.cert])


def test_der_key(h):
    der = h.leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    m = load_material(der, name="server.der")
    assert len(m.keys) == 1


def test_der_encrypted_key(h):
    der = h.leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.BestAvailableEncryption(PASS))
    m = load_material(der, name="k.der")
    assert (m.keys, m.encrypted_keys) == ([], 1)
    assert len(load_material(der, name="k.der", passphrase=PASS).keys) == 1
    refused("certfiles.key.wrong_passphrase", der, field="key", passphrase=b"nope")


@pytest.mark.parametrize("der", [False, True])
def test_pkcs7_bundle(h, der):
    m = load_material(h.p7b(der=der), name="chain.p7b")
    assert set(fps(m.certificates)) == set(fps([h.leaf.cert, h.intermediate.cert, h.root.cert]))


# An empty SignedData, as `openssl crl2pkcs7 -nocrl` makes with no certificates.
_EMPTY_P7 = bytes.fromhex("302306092a864886f70d010702a01630140201013100300b06092a864886f70d0107013100")


def test_pkcs7_without_certificates():
    refused("certfiles.p7.empty", _EMPTY_P7)
    import base64

    armoured = b"-----BEGIN PKCS7-----\n" + base64.encodebytes(_EMPTY_P7) + b"-----END PKCS7-----\n"
    refused("certfiles.p7.empty", armoured)


def test_pkcs12_with_password(h):
    m = load_material(h.p12(password=PASS), name="server.pfx", passphrase=PASS)
    assert fps(m.certificates) == fps([h.leaf.cert, h.intermediate.cert, h.root.cert])
    assert len(m.keys) == 1 and m.keys[0].public_key() == h.leaf.cert.public_key()


def test_pkcs12_missing_and_wrong_password(h):
    refused("certfiles.p12.password_needed", h.p12(password=PASS))
    refused("certfiles.p12.wrong_password", h.p12(password=PASS), passphrase=b"wrong")


def test_pkcs12_without_password(h):
    m = load_material(h.p12(password=None), name="server.p12")
    assert len(m.keys) == 1 and len(m.certificates) == 3
    # A passphrase meant for another file does not get in the way.
    assert len(load_material(h.p12(password=None), name="server.p12", passphrase=PASS).keys) == 1


def test_pkcs12_without_key(h):
    m = load_material(h.p12(password=PASS, with_key=False), name="chain.p12", passphrase=PASS)
    assert m.keys == [] and len(m.certificates) == 2


# -- encrypted keys ------------------------------------------------------------

@pytest.mark.parametrize("traditional", [True, False], ids=["proc-type", "pkcs8"])
def test_encrypted_key(h, traditional):
    pem = h.leaf.key_pem(traditional=traditional, password=PASS)
    assert is_encrypted_key_pem(pem)
    assert is_encrypted_key_pem(pem.replace(b"\n", b"\r\n"))
    m = load_material(pem, name="server.key")
    assert (m.keys, m.encrypted_keys) == ([], 1)
    m = load_material(pem, name="server.key", passphrase=PASS)
    assert m.keys[0].public_key() == h.leaf.cert.public_key() and m.encrypted_keys == 0
    refused("certfiles.key.wrong_passphrase", pem, field="key", passphrase=b"wrong")


def test_plain_key_is_not_encrypted(h):
    assert not is_encrypted_key_pem(h.leaf.key_pem())
    assert not is_encrypted_key_pem(h.leaf.key_pem(traditional=False))
    assert not is_encrypted_key_pem(h.leaf.pem)
    # A passphrase given with an unencrypted key is simply not needed.
    assert len(load_material(h.leaf.key_pem(), name="k", passphrase=PASS).keys) == 1


# -- refusals ------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"  \r\n\t\n", b"\xef\xbb\xbf"])
def test_empty(data):
    refused("certfiles.empty", data)


def test_too_large():
    err = refused("certfiles.too_large", b"A" * (MAX_INPUT_BYTES + 1))
    assert err.msg.params["limit"] == MAX_INPUT_BYTES
    assert err.fix is not None


@pytest.mark.parametrize("data", [
    os.urandom(2048).replace(b"-", b"_"),
    b"\x30\x82\x01\x00" + bytes(256),
    b"This is the certificate you ordered. Thank you for your business.\n",
    b"MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa",
])
def test_nothing_recognisable(data):
    refused("certfiles.unrecognised", data)


def test_truncated_pem(h):
    pem = h.leaf.pem
    err = refused("certfiles.pem.truncated", pem[: len(pem) // 2])
    assert err.msg.params["block"] == "CERTIFICATE"
    # END missing in the first of two blocks: not silently skipped.
    cut = h.leaf.pem.replace(b"-----END CERTIFICATE-----\n", b"")
    refused("certfiles.pem.truncated", cut + h.intermediate.pem)
    # BEGIN cut off.
    refused("certfiles.pem.truncated", pem[40:])


def test_truncated_key_names_the_block(h):
    key = h.leaf.key_pem()
    err = refused("certfiles.pem.truncated", key[:300], field="key")
    assert err.msg.params["block"] == "RSA PRIVATE KEY"


def test_corrupt_pem(h):
    lines = h.leaf.pem.split(b"\n")
    lines[5] = lines[5][:10] + b"!!!!" + lines[5][14:]
    err = refused("certfiles.pem.corrupt", b"\n".join(lines))
    assert err.msg.params["block"] == "CERTIFICATE"
    lines = h.leaf.pem.split(b"\n")
    del lines[3:6]  # base64 still valid, DER no longer is
    refused("certfiles.pem.corrupt", b"\n".join(lines))


def test_only_a_public_key(h):
    pub = h.leaf.key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    err = refused("certfiles.pem.unsupported", pub, field="key")
    assert err.msg.params["blocks"] == "PUBLIC KEY"


# -- files ---------------------------------------------------------------------

def test_load_file(tmp_path: Path, h):
    p = tmp_path / "server.crt"
    p.write_bytes(h.chain_pem)
    m = load_file(p)
    assert len(m.certificates) == 2 and m.name == str(p)


def test_load_file_unreadable(tmp_path: Path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(InputError) as info:
        load_file(missing, field="chain")
    assert info.value.msg.key == "certfiles.unreadable"
    assert info.value.msg.params["name"] == str(missing)
    assert info.value.field == "chain"
    with pytest.raises(InputError) as info:
        load_file(tmp_path)  # a directory
    assert info.value.msg.key == "certfiles.unreadable"


def test_load_file_too_large(tmp_path: Path):
    p = tmp_path / "disk.img"
    with open(p, "wb") as fh:
        fh.truncate(MAX_INPUT_BYTES * 4)
    with pytest.raises(InputError) as info:
        load_file(p)
    assert info.value.msg.key == "certfiles.too_large"
    assert info.value.msg.params["size"] == MAX_INPUT_BYTES * 4


# -- precise helpers -----------------------------------------------------------

def helper_error(func, data, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        func(data, name="given.pem", **kw)
    assert info.value.msg.params["name"] == "given.pem"
    return info.value


def test_certificates_from(h, csr_pem):
    assert fps(certificates_from(h.chain_pem, name="x")) == fps([h.leaf.cert, h.intermediate.cert])
    err = helper_error(certificates_from, csr_pem, field="cert")
    assert err.msg.key == "certfiles.cert.is_csr" and err.field == "cert"
    assert "CA" in err.fix.render("en") and "CSR" in err.msg.render("ja")
    assert helper_error(certificates_from, h.leaf.key_pem()).msg.key == "certfiles.cert.is_key"
    assert helper_error(certificates_from, h.leaf.key_pem(password=PASS)).msg.key == "certfiles.cert.is_key"


def test_private_key_from(h, csr_pem):
    key = private_key_from(h.leaf.pem + h.leaf.key_pem(), name="x")
    assert key.public_key() == h.leaf.cert.public_key()
    enc = h.leaf.key_pem(password=PASS)
    assert private_key_from(enc, name="x", passphrase=PASS).public_key() == h.leaf.cert.public_key()
    err = helper_error(private_key_from, enc, field="key")
    assert err.msg.key == "certfiles.key.passphrase_needed" and err.field == "key"
    assert helper_error(private_key_from, enc, passphrase=b"x").msg.key == "certfiles.key.wrong_passphrase"
    err = helper_error(private_key_from, h.leaf.key_pem() + h.intermediate.key_pem())
    assert err.msg.key == "certfiles.key.several" and err.msg.params["count"] == 2
    assert "2" in err.msg.render("en")
    assert helper_error(private_key_from, h.leaf.pem).msg.key == "certfiles.key.is_cert"
    assert helper_error(private_key_from, csr_pem).msg.key == "certfiles.key.is_csr"


def test_csr_from(h, csr_pem):
    assert csr_from(csr_pem, name="server.csr").public_key() == h.leaf.cert.public_key()
    assert helper_error(csr_from, h.leaf.pem).msg.key == "certfiles.csr.is_cert"
    assert helper_error(csr_from, h.leaf.key_pem()).msg.key == "certfiles.csr.none"
    assert helper_error(csr_from, csr_pem + csr_pem).msg.key == "certfiles.csr.several"


# -- utilities -----------------------------------------------------------------

def test_fingerprints(h):
    fp = cert_fingerprint(h.leaf.cert)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    assert fp.replace(":", "").lower() == h.leaf.cert.fingerprint(hashes.SHA256()).hex()
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_certs_to_pem_round_trip(h):
    pem = certs_to_pem([h.leaf.cert, h.intermediate.cert])
    assert b"\r" not in pem and pem.count(b"BEGIN CERTIFICATE") == 2
    assert fps(load_material(pem, name="x").certificates) == fps([h.leaf.cert, h.intermediate.cert])


def test_every_message_key_is_in_both_catalogs():
    source = Path(certfiles.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'"(certfiles\.[a-z0-9_.]+)"', source))
    assert len(keys) > 15
    for lang in ("en", "ja"):
        cat = catalog(lang)
        for key in keys:
            assert key in cat, (lang, key)
            if not key.startswith(("certfiles.defect.", "certfiles.note.")):  # parts of other messages
                assert key + ".fix" in cat, (lang, key + ".fix")


# -- malformed certificates: a refusal naming the file and the defect (issue #11) --

import subprocess  # noqa: E402
import shutil as _shutil  # noqa: E402

import x509lab as lab  # noqa: E402
from cryptography.x509.oid import ExtensionOID  # noqa: E402
from xmailnb import clock  # noqa: E402


@pytest.fixture(scope="module")
def ca() -> lab.Cert:
    return lab.make("Defect CA", ca=True, at=clock.now(), eku=None, sans=None)


def _bad(issuer: lab.Cert, oid, raw: bytes, *, critical: bool = False, **kw) -> lab.Cert:
    return lab.make("mail.example.jp", issuer=issuer, at=clock.now(),
                    extra=[(x509.UnrecognizedExtension(oid, raw), critical)], **kw)


MALFORMED_EXTENSIONS = {
    "subjectAltName": (ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x01", {"sans": None}),
    "issuerAltName": (ExtensionOID.ISSUER_ALTERNATIVE_NAME, b"\x30\x04\x82\x05ab", {}),
    "authorityInfoAccess": (ExtensionOID.AUTHORITY_INFORMATION_ACCESS, b"\x30\x03\x30\x01", {}),
    "certificatePolicies": (ExtensionOID.CERTIFICATE_POLICIES, b"\x30\x02\x30\x05", {}),
    "nameConstraints": (ExtensionOID.NAME_CONSTRAINTS, b"\x30\x05\xa0\x03\x30\x01", {}),
    "signedCertificateTimestampList": (ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, b"\x04\x03\x00\x05\x01",
                                       {}),
    "authorityKeyIdentifier": (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, b"\x30\x03\x80\x05", {"aki": None}),
    "basicConstraints": (ExtensionOID.BASIC_CONSTRAINTS, b"\x30\x03\x01\x01", {"ca": None}),
}


@pytest.mark.parametrize("label", sorted(MALFORMED_EXTENSIONS))
@pytest.mark.parametrize("encoding", ["pem", "der", "p7b"])
def test_malformed_extension_is_named(ca, label, encoding):
    oid, raw, kw = MALFORMED_EXTENSIONS[label]
    bad = _bad(ca, oid, raw, **kw)
    with pytest.raises(ValueError):  # the defect is really there: cryptography cannot read it
        _ = bad.cert.extensions
    data = {"pem": bad.pem, "der": bad.der,
            "p7b": __import__("cryptography.hazmat.primitives.serialization.pkcs7", fromlist=["x"])
            .serialize_certificates([ca.cert, bad.cert], serialization.Encoding.DER)}[encoding]
    err = refused("certfiles.cert.malformed", data)
    defect = err.msg.params["defect"]
    assert defect.key == "certfiles.defect.extension", defect
    assert label in defect.params["extension"]
    assert err.msg.params["position"] == (2 if encoding == "p7b" else 1)
    for lang in ("en", "ja"):
        text = err.render(lang)
        assert "upload.pem" in text and label in text and "ParseError" not in text


def test_empty_extended_key_usage(ca):
    bad = _bad(ca, ExtensionOID.EXTENDED_KEY_USAGE, b"\x30\x00", eku=None)
    err = refused("certfiles.cert.malformed", bad.pem)
    assert err.msg.params["defect"].key == "certfiles.defect.empty"


def test_duplicate_extension(ca):
    placeholder = x509.ObjectIdentifier("2.5.29.99")
    base = _bad(ca, placeholder, x509.SubjectAlternativeName([x509.DNSName("mail.example.jp")]).public_bytes())
    dup = lab.resign(base, ca, lab.replace_bytes(lab.oid_der("2.5.29.99"), lab.oid_der("2.5.29.17")))
    with pytest.raises(x509.DuplicateExtension):
        _ = dup.cert.extensions
    err = refused("certfiles.cert.malformed", dup.pem)
    assert err.msg.params["defect"].key == "certfiles.defect.duplicate"
    assert "subjectAltName" in err.msg.render("en")


def test_invalid_utf8_in_subject(ca):
    leaf = lab.make("mail.example.jp", issuer=ca, at=clock.now())
    cn = b"\x0c\x0fmail.example.jp"
    bad = lab.resign(leaf, ca, lab.replace_bytes(cn, b"\x0c\x0fmail.exam\xffle.jp"))
    with pytest.raises(ValueError):
        _ = bad.cert.subject
    err = refused("certfiles.cert.malformed", bad.der)
    assert err.msg.params["defect"].key == "certfiles.defect.subject"


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_invalid_version(ca, encoding):
    leaf = lab.make("mail.example.jp", issuer=ca, at=clock.now())
    der = lab.resign_der(leaf, ca, lab.set_version(3))
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_certificate(der)
    data = der if encoding == "der" else (b"-----BEGIN CERTIFICATE-----\n"
                                          + __import__("base64").encodebytes(der)
                                          + b"-----END CERTIFICATE-----\n")
    err = refused("certfiles.cert.malformed", data)
    assert err.msg.params["defect"].key == "certfiles.defect.version"
    assert "4" in err.msg.render("en")


def test_negative_serial_is_a_note_not_a_python_warning(ca, recwarn):
    leaf = lab.make("mail.example.jp", issuer=ca, at=clock.now())
    neg = lab.resign(leaf, ca, lab.set_serial(b"\xf0\x01"))
    material = load_material(neg.pem, name="neg.pem")
    assert [n.key for n in material.notes] == ["certfiles.note.serial"]
    assert len(recwarn) == 0


def test_chain_predicates_survive_malformed_certificates(ca):
    from xmailnb.pki import chain

    for label, (oid, raw, kw) in MALFORMED_EXTENSIONS.items():
        bad = _bad(ca, oid, raw, **kw).cert
        assert chain.is_ca(bad) is False, label
        assert chain.is_self_signed(bad) is False
        assert chain.covers_hostname(bad, "mail.example.jp") in (True, False)
        chain.hostnames(bad)


def test_enveloped_pkcs7_is_named(tmp_path, h):
    if _shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    (tmp_path / "c.pem").write_bytes(h.leaf.pem)
    for fmt in ("PEM", "DER"):
        out = tmp_path / f"env.{fmt}"
        subprocess.run(["openssl", "cms", "-encrypt", "-in", str(tmp_path / "c.pem"), "-outform", fmt,
                        "-out", str(out), str(tmp_path / "c.pem")], check=True, capture_output=True)
        refused("certfiles.p7.enveloped", out.read_bytes())


def test_pkcs12_without_certificate_is_not_a_password_problem(h):
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = pkcs12.serialize_key_and_certificates(b"k", h.leaf.key, None, None,
                                                 serialization.BestAvailableEncryption(PASS))
    material = load_material(data, name="upload.pem", field="cert", passphrase=PASS)
    with pytest.raises(InputError) as info:
        certfiles.require_certificates(material, "cert")
    assert info.value.msg.key == "certfiles.p12.no_cert"
    with pytest.raises(InputError) as info:
        certificates_from(data, name="upload.pem", field="cert", passphrase=PASS)
    assert info.value.msg.key == "certfiles.p12.no_cert"


def test_pkcs12_with_unreadable_key_is_not_a_wrong_password(h, monkeypatch):
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = h.p12(PASS)

    def unreadable(data, password, *a, **kw):  # what cryptography raises for a key type it cannot load
        raise UnsupportedAlgorithm("Unsupported key type")

    monkeypatch.setattr(pkcs12, "load_key_and_certificates", unreadable)
    refused("certfiles.p12.unsupported_key", data, passphrase=PASS)


def test_pkcs12_with_dsa_key_opens(h, tmp_path):
    """A DSA key in a PKCS#12 file is read (and refused later as a key type
    XMail cannot use), never reported as a wrong password."""
    if _shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(["openssl", "dsaparam", "-genkey", "-out", str(tmp_path / "dsa.pem"), "1024"], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkcs12", "-export", "-nocerts", "-inkey", str(tmp_path / "dsa.pem"),
                    "-passout", "pass:" + PASS.decode(), "-out", str(tmp_path / "dsa.p12")], check=True,
                   capture_output=True)
    material = load_material((tmp_path / "dsa.p12").read_bytes(), name="dsa.p12", passphrase=PASS)
    assert len(material.keys) == 1


def _children(data: bytes) -> list[bytes]:
    return certfiles.der_children(data)


def test_pkcs7_out_of_der_order_is_read_with_a_note_not_a_python_warning(h, recwarn):
    from cryptography.hazmat.primitives.serialization import pkcs7

    der = pkcs7.serialize_certificates([h.leaf.cert, h.intermediate.cert], serialization.Encoding.DER)
    oid, explicit = _children(der)
    signed = _children(explicit)[0]
    parts = _children(signed)
    i = next(n for n, p in enumerate(parts) if p[0] == 0xA0)
    certs = sorted(_children(parts[i]), reverse=True)  # a SET OF must be sorted ascending in DER
    parts[i] = lab.tlv(0xA0, b"".join(certs))
    unsorted = lab.tlv(0x30, oid + lab.tlv(0xA0, lab.tlv(0x30, b"".join(parts))))
    material = load_material(unsorted, name="bundle.p7b")
    assert sorted(fps(material.certificates)) == sorted(fps([h.leaf.cert, h.intermediate.cert]))
    assert [n.key for n in material.notes] == ["certfiles.note.pkcs7"]
    assert len(recwarn) == 0
