"""CSR form validation, building and inspection (xmailnb.pki.csr)."""

from __future__ import annotations

import hashlib
import re
import string
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from xmailnb.pki import csr, keys
from xmailnb.pki.csr import FIELDS, CsrRequest
from xmailnb.errors import InputError
from xmailnb.i18n import Msg, catalog, shown
from xmailnb.pki.keys import KeySpec

GOOD = {
    "country": "jp", "state": "Tokyo", "locality": "Chiyoda-ku", "org": "Example K.K.",
    "unit": "", "cn": "mail.example.jp", "aliases": "example.jp smtp.example.jp",
    "email": "admin@example.jp", "keytype": "rsa", "keysize": "2048", "curve": "P-256", "memo": "",
}


def rendered(msg: Msg, *, strict: bool = True) -> dict[str, str]:
    """Render in both languages, checking the key exists and (when *strict*:
    the parameters hold no braces) every placeholder is filled."""
    out = {}
    for lang in ("en", "ja"):
        assert msg.key in catalog(lang), f"{msg.key} missing from {lang}"
        text = msg.render(lang)
        assert not strict or "{" not in text, text
        out[lang] = text
    return out


def ok(name: str, value):
    normalised, err = csr.validate_field(name, value)
    assert err is None, rendered(err)["en"]
    return normalised


def bad(name: str, value) -> Msg:
    normalised, err = csr.validate_field(name, value)
    assert err is not None, f"{name}={value!r} accepted as {normalised!r}"
    assert normalised == value  # the input comes back unchanged
    rendered(err)
    return err


@pytest.fixture(scope="module")
def rsa_key():
    return keys.generate_private_key(KeySpec())


@pytest.fixture(scope="module")
def request_():
    request, errors = csr.validate_form(dict(GOOD, unit="Mail Team", aliases="example.jp, MAIL.example.jp",
                                             org="株式会社エグザンプル"))
    assert errors == {}
    return request


@pytest.fixture(scope="module")
def built(request_, rsa_key):
    return csr.build_csr(request_, rsa_key)


# -- country ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("JP", "JP"), ("jp", "JP"), (" Jp ", "JP"), ("gb", "GB"),
                                             ("US", "US")])
def test_country_accepts_iso_codes_in_any_case(value, expected):
    assert ok("country", value) == expected


@pytest.mark.parametrize("value, key", [
    ("", "csr.text.required"),
    ("  ", "csr.text.required"),
    ("XX", "csr.country.unknown"),
    ("ZZ", "csr.country.unknown"),
    ("J", "csr.country.length"),
    ("J1", "csr.country.length"),
    ("JAPANESE", "csr.country.length"),
    ("UK", "csr.country.uk"),
    ("uk", "csr.country.uk"),
])
def test_country_refusals(value, key):
    assert bad("country", value).key == key


def test_uk_hint_names_gb():
    text = rendered(bad("country", "UK"))
    assert "GB" in text["en"] and "GB" in text["ja"]


@pytest.mark.parametrize("value", ["jpn", "JPN", "Japan", "日本"])
def test_country_suggests_the_two_letter_code(value):
    err = bad("country", value)
    assert err.key == "csr.country.suggest"
    assert err.params["code"] == "JP"
    assert "JP" in rendered(err)["ja"]


# -- free-text subject fields ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["state", "locality", "org"])
def test_required_text_fields(name):
    err = bad(name, "")
    assert err.key == "csr.text.required"
    assert bad(name, " \t ").key == "csr.text.required"


def test_unit_is_optional():
    assert ok("unit", "") == ""
    assert ok("unit", "  Mail Team ") == "Mail Team"


@pytest.mark.parametrize("name, value", [
    ("org", "株式会社エグザンプル"),
    ("state", "東京都"),
    ("locality", "千代田区"),
    ("unit", "情報システム部"),
    ("org", "Müller & Söhne GmbH"),
])
def test_unicode_text_is_allowed(name, value):
    assert ok(name, value) == value
    assert csr.field_note(name, value).key == "csr.note.non_ascii"


def test_ascii_text_has_no_note():
    assert ok("org", "Example, Inc. + Partners") == "Example, Inc. + Partners"
    assert csr.field_note("org", "Example, Inc. + Partners") is None
    assert csr.field_note("cn", "メール.例え.jp") is None


@pytest.mark.parametrize("value", ["Example\x07Corp", "Example\nCorp", "Example\tCorp", "Ex\x00",
                                   "Example\u200bCorp", "\u202eExample", "Example\u2028Corp", "Ex\x7f"])
def test_control_and_invisible_characters_refused(value):
    err = bad("org", value)
    assert err.key == "csr.text.control"
    assert err.params["char"].startswith("U+")


@pytest.mark.parametrize("name, limit", [("state", 128), ("locality", 128), ("org", 64), ("unit", 64)])
def test_x520_upper_bounds(name, limit):
    assert ok(name, "あ" * limit) == "あ" * limit  # characters, not bytes
    err = bad(name, "a" * (limit + 1))
    assert err.key == "csr.text.too_long"
    assert err.params["max"] == limit and err.params["length"] == limit + 1


def test_text_is_nfc_normalised():
    assert ok("org", "Cafe\u0301") == "Caf\u00e9"


# -- host names -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("mail.example.jp", "mail.example.jp"),
    ("Mail.Example.JP", "mail.example.jp"),
    ("mail.example.jp.", "mail.example.jp"),
    ("  mail.example.jp  ", "mail.example.jp"),
    ("smtp-1.mx.example.co.jp", "smtp-1.mx.example.co.jp"),
    ("3com.example.jp", "3com.example.jp"),
    ("メール.例え.jp", "xn--4dkua4c.xn--r8jz45g.jp"),
    ("xn--4dkua4c.xn--r8jz45g.jp", "xn--4dkua4c.xn--r8jz45g.jp"),
    ("ＭＡＩＬ．例え。ｊｐ", "mail.xn--r8jz45g.jp"),  # full-width input and the ideographic full stop
    ("*.example.jp", "*.example.jp"),
    ("*.例え.jp", "*.xn--r8jz45g.jp"),
])
def test_cn_normalisation(value, expected):
    assert ok("cn", value) == expected


@pytest.mark.parametrize("value, key", [
    ("", "csr.text.required"),
    ("192.0.2.25", "csr.host.ip"),
    ("2001:db8::25", "csr.host.ip"),
    ("[2001:db8::25]", "csr.host.ip"),
    ("１９２．０．２．２５", "csr.host.ip"),
    ("mail", "csr.host.not_fqdn"),
    ("localhost", "csr.host.not_fqdn"),
    ("mail..example.jp", "csr.host.empty_label"),
    (".example.jp", "csr.host.empty_label"),
    ("mail_1.example.jp", "csr.host.bad_chars"),
    ("mail.example.jp/", "csr.host.bad_chars"),
    ("mail example.jp", "csr.host.space"),
    ("mail.example.jp\x07", "csr.host.bad_chars"),
    ("-mail.example.jp", "csr.host.hyphen"),
    ("mail-.example.jp", "csr.host.hyphen"),
    ("ab--cd.example.jp", "csr.host.reserved_hyphens"),
    ("xn--zz.example.jp", "csr.host.idna"),
    ("☃.example.jp", "csr.host.idna"),
    ("a" * 64 + ".example.jp", "csr.host.label_too_long"),
    ("198.51.100.256", "csr.host.numeric_tld"),
    ("mail.*.example.jp", "csr.host.wildcard"),
    ("*mail.example.jp", "csr.host.wildcard"),
    ("*.*.example.jp", "csr.host.wildcard"),
    ("*", "csr.host.wildcard"),
    ("*.jp", "csr.host.wildcard_broad"),
])
def test_cn_refusals(value, key):
    err = bad("cn", value)
    assert err.key == key
    if value.strip():
        # The message names what the user typed (control characters escaped).
        assert shown(value.strip()) in rendered(err)["en"]


def test_ip_refusal_explains_why():
    text = rendered(bad("cn", "192.0.2.25"))
    assert "mail.example.jp" in text["en"] and "IP" in text["ja"]


def test_cn_is_limited_to_64_characters_but_aliases_are_not():
    long_name = "a" * 60 + ".example.jp"  # 71 characters, a valid host name
    err = bad("cn", long_name)
    assert err.key == "csr.cn.too_long"
    assert err.params["max"] == 64
    assert ok("aliases", long_name) == [long_name]
    assert csr.normalize_hostname(long_name) == (long_name, None)


def test_host_name_total_length():
    name = ".".join(["a" * 63] * 4)  # 255 characters
    _, err = csr.normalize_hostname(name)
    assert err is not None and err.key == "csr.host.too_long"
    name = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters
    assert csr.normalize_hostname(name) == (name, None)


def test_idn_label_length_counts_punycode():
    label = "".join(chr(0x4E00 + i * 397) for i in range(24))  # 24 kanji, 76 characters as punycode
    assert len(label) < 63
    _, err = csr.normalize_hostname(f"{label}.example.jp")
    assert err is not None and err.key == "csr.host.label_too_long"


def test_hostname_without_wildcards():
    _, err = csr.normalize_hostname("*.example.jp", wildcard=False)
    assert err is not None and err.key == "csr.host.wildcard_refused"
    assert csr.normalize_hostname("Mail.Example.JP", wildcard=False) == ("mail.example.jp", None)


# -- aliases --------------------------------------------------------------------------------

def test_aliases_split_normalise_and_deduplicate():
    value = "example.jp, smtp.example.jp、POP.example.jp　imap.example.jp;EXAMPLE.jp\nsmtp.example.jp."
    assert ok("aliases", value) == ["example.jp", "smtp.example.jp", "pop.example.jp", "imap.example.jp"]
    assert ok("aliases", "") == []
    assert ok("aliases", " , ") == []
    assert ok("aliases", ["メール.例え.jp", "*.example.jp"]) == ["xn--4dkua4c.xn--r8jz45g.jp", "*.example.jp"]


def test_one_invalid_alias_gets_its_own_message():
    err = bad("aliases", "example.jp mail_1.example.jp")
    assert err.key == "csr.host.bad_chars"
    assert "mail_1.example.jp" in rendered(err)["ja"]


def test_every_invalid_alias_is_named():
    err = bad("aliases", "example.jp 192.0.2.1 smtp.example.jp mail *.jp")
    assert err.key == "csr.aliases.invalid"
    assert err.params["count"] == 3
    text = rendered(err)
    for name in ("192.0.2.1", "mail", "*.jp"):
        assert name in text["en"] and name in text["ja"]


def test_too_many_aliases():
    value = " ".join(f"h{i}.example.jp" for i in range(csr.MAX_ALIASES))
    assert bad("aliases", value).key == "csr.aliases.too_many"
    value = " ".join(f"h{i}.example.jp" for i in range(csr.MAX_ALIASES - 1))
    assert len(ok("aliases", value)) == csr.MAX_ALIASES - 1


# -- e-mail and memo ------------------------------------------------------------------------

def test_email():
    assert ok("email", "") == ""
    assert ok("email", " admin@example.jp ") == "admin@example.jp"
    assert ok("email", "admin@メール.例え.jp") == "admin@xn--4dkua4c.xn--r8jz45g.jp"
    for value in ("admin", "admin@", "@example.jp", "ad min@example.jp", "admin@example..jp"):
        assert bad("email", value).key == "csr.email.invalid"
    assert bad("email", "管理者@example.jp").key == "csr.email.not_ascii"
    long_address = "a" * 64 + "@" + "b" * 60 + ".example.jp"
    err = bad("email", long_address)
    assert err.key == "csr.text.too_long" and err.params["max"] == 128


def test_memo():
    assert ok("memo", "") == ""
    assert ok("memo", "更新用\r\n\t2025 年版  ") == "更新用\n\t2025 年版"
    assert ok("memo", "x" * 1000) == "x" * 1000
    assert bad("memo", "x" * 1001).key == "csr.memo.too_long"
    assert bad("memo", "bell\x07").key == "csr.text.control"


# -- key fields -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, expected", [
    ("keytype", "RSA", "rsa"), ("keytype", "ec", "ec"), ("keytype", "", "rsa"),
    ("keysize", "4096", 4096), ("keysize", "", 2048),
    ("curve", "p384", "P-384"), ("curve", "", "P-256"),
])
def test_key_fields(name, value, expected):
    assert ok(name, value) == expected


@pytest.mark.parametrize("value", ["1024", "8192", "big"])
def test_keysize_refusals(value):
    err = bad("keysize", value)
    assert err.key.startswith("keys.size.")
    assert "2048" in rendered(err)["en"]


def test_keytype_note_for_ec():
    assert csr.field_note("keytype", "EC").key == "keys.describe.ec"
    assert csr.field_note("keytype", "rsa") is None


def test_unknown_field_is_a_programming_error():
    with pytest.raises(ValueError):
        csr.validate_field("colour", "blue")


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(FIELDS), value=st.text(max_size=80))
def test_validate_field_never_raises(name, value):
    normalised, err = csr.validate_field(name, value)
    if err is not None:
        rendered(err, strict=False)
    elif name not in ("aliases", "keysize"):
        assert isinstance(normalised, str)


@settings(max_examples=150, deadline=None)
@given(st.from_regex(r"\A[a-zA-Z0-9\-.*あ-ん]{1,40}\Z"))
def test_normalised_host_names_are_stable(value):
    name, err = csr.normalize_hostname(value)
    if err is None:
        assert name.isascii() and name == name.lower()
        assert csr.normalize_hostname(name) == (name, None)


# -- the whole form -------------------------------------------------------------------------

def test_validate_form_builds_the_request():
    request, errors = csr.validate_form(dict(GOOD, aliases="MAIL.example.jp example.jp", keytype="EC",
                                             curve="secp384r1"))
    assert errors == {}
    assert request == CsrRequest(country="JP", state="Tokyo", locality="Chiyoda-ku", org="Example K.K.",
                                 cn="mail.example.jp", aliases=["example.jp"], email="admin@example.jp",
                                 key=KeySpec(kind="ec", size=2048, curve="P-384"))


def test_validate_form_reports_every_bad_field_in_order():
    request, errors = csr.validate_form({"country": "UK", "cn": "192.0.2.1", "email": "nope",
                                         "keysize": "1024", "org": "x" * 65})
    assert request is None
    assert list(errors) == ["country", "state", "locality", "org", "cn", "email", "keysize"]
    assert errors["state"].msg.key == "csr.text.required"
    # Each with the fix that says what its field expects.
    assert {name: exc.fix.key if exc.fix else None for name, exc in errors.items()} == {
        "country": "csr.country.fix", "state": "csr.state.fix", "locality": "csr.locality.fix",
        "org": "csr.org.fix", "cn": "csr.cn.fix", "email": "csr.email.fix", "keysize": "keys.size.fix"}
    for exc in errors.values():
        rendered(exc.msg)


def test_request_from_values_raises_the_first_problem_with_its_field_and_fix():
    with pytest.raises(InputError) as info:
        csr.request_from_values(dict(GOOD, cn="mail", email="nope"))
    assert info.value.field == "cn"
    assert info.value.msg.key == "csr.host.not_fqdn"
    assert info.value.fix is not None and info.value.fix.key == "csr.cn.fix"
    rendered(info.value.fix)
    with pytest.raises(InputError) as info:
        CsrRequest.from_form(dict(GOOD, keysize="1024"))
    assert info.value.field == "keysize"
    assert CsrRequest.from_form(GOOD).cn == "mail.example.jp"


def test_san_names_put_the_cn_first_once():
    request = csr.request_from_values(dict(GOOD, aliases="example.jp mail.example.jp smtp.example.jp"))
    assert request.aliases == ["example.jp", "smtp.example.jp"]
    assert csr.san_names(request) == ["mail.example.jp", "example.jp", "smtp.example.jp"]
    hand_made = CsrRequest(country="JP", state="T", locality="C", org="O", cn="a.example.jp",
                           aliases=["b.example.jp", "a.example.jp", "b.example.jp"])
    assert csr.san_names(hand_made) == ["a.example.jp", "b.example.jp"]


# -- building -------------------------------------------------------------------------------

def test_built_csr_subject_and_sans(built):
    assert [(a.oid, a.value) for a in built.subject] == [
        (NameOID.COUNTRY_NAME, "JP"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Tokyo"),
        (NameOID.LOCALITY_NAME, "Chiyoda-ku"),
        (NameOID.ORGANIZATION_NAME, "株式会社エグザンプル"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Mail Team"),
        (NameOID.COMMON_NAME, "mail.example.jp"),
        (NameOID.EMAIL_ADDRESS, "admin@example.jp"),
    ]
    san = built.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["mail.example.jp", "example.jp"]


def test_built_csr_is_sha256_and_valid(built, rsa_key):
    assert built.is_signature_valid
    assert isinstance(built.signature_hash_algorithm, hashes.SHA256)
    assert keys.public_key_matches(rsa_key, built)
    assert csr.csr_problems(built) == []


def test_optional_subject_fields_are_left_out(rsa_key):
    request = csr.request_from_values(dict(GOOD, unit="", email="", aliases=""))
    built = csr.build_csr(request, rsa_key)
    oids = [a.oid for a in built.subject]
    assert NameOID.ORGANIZATIONAL_UNIT_NAME not in oids and NameOID.EMAIL_ADDRESS not in oids
    san = built.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.value.get_values_for_type(x509.DNSName) == ["mail.example.jp"]


def test_ec_csr():
    key = keys.generate_private_key(KeySpec(kind="ec", curve="P-384"))
    request = csr.request_from_values(dict(GOOD, cn="*.例え.jp", aliases="例え.jp"))
    built = csr.build_csr(request, key)
    assert built.is_signature_valid
    assert isinstance(built.signature_hash_algorithm, hashes.SHA256)
    d = csr.describe_csr(built)
    assert d["key"] == "EC P-384"
    assert d["sans"] == ["*.xn--r8jz45g.jp", "xn--r8jz45g.jp"]
    assert d["sans_display"] == ["*.例え.jp", "例え.jp"]


def test_build_revalidates_hand_made_requests(rsa_key):
    hand_made = CsrRequest(country="jp", state=" Tokyo ", locality="Chiyoda-ku", org="Example",
                           cn="Mail.Example.JP.", aliases=["Example.JP"])
    built = csr.build_csr(hand_made, rsa_key)
    assert built.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
    assert csr.describe_csr(built)["sans"] == ["mail.example.jp", "example.jp"]
    with pytest.raises(InputError) as info:
        csr.build_csr(CsrRequest(country="JP", state="T", locality="C", org="O", cn="192.0.2.1"), rsa_key)
    assert info.value.field == "cn"


def test_build_refuses_a_weak_key():
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(InputError) as info:
        csr.build_csr(csr.request_from_values(GOOD), weak)
    assert info.value.field == "key"
    assert info.value.msg.key == "keys.weak.rsa"
    rendered(info.value.fix)


def test_pem_round_trip_and_description(built, rsa_key):
    pem = csr.csr_pem(built)
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----\n")
    loaded = x509.load_pem_x509_csr(pem)
    d = csr.describe_csr(loaded)
    assert {k: d[k] for k in ("country", "state", "locality", "org", "unit", "cn", "email")} == {
        "country": "JP", "state": "Tokyo", "locality": "Chiyoda-ku", "org": "株式会社エグザンプル",
        "unit": "Mail Team", "cn": "mail.example.jp", "email": "admin@example.jp"}
    assert d["sans"] == ["mail.example.jp", "example.jp"]
    assert d["key"] == "RSA 2048"
    assert d["signature_ok"] is True
    assert d["signature_hash"] == "sha256"
    der = loaded.public_bytes(serialization.Encoding.DER)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", d["sha256"])
    assert d["sha256"].replace(":", "").lower() == hashlib.sha256(der).hexdigest()
    assert d["public_key_sha256"] == keys.public_key_fingerprint(rsa_key)
    # Key material never appears in the description.
    assert "PRIVATE" not in repr(d)


# -- diagnosing CSRs made elsewhere -----------------------------------------------------------

def _foreign_csr(key, cn: str | None = "mail.example.jp", sans: list[str] | None = None):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(key, hashes.SHA256())


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _sha1_csr(key) -> x509.CertificateSigningRequest:
    """cryptography no longer signs with SHA-1, so assemble one from the signed parts."""
    info = _foreign_csr(key, sans=["mail.example.jp"]).tbs_certrequest_bytes
    signature = key.sign(info, padding.PKCS1v15(), hashes.SHA1())
    sha1_with_rsa = _tlv(0x30, bytes.fromhex("06092a864886f70d010105") + b"\x05\x00")
    return x509.load_der_x509_csr(_tlv(0x30, info + sha1_with_rsa + _tlv(0x03, b"\x00" + signature)))


def test_problems_of_a_csr_without_sans(rsa_key):
    problems = csr.csr_problems(_foreign_csr(rsa_key))
    assert [p.key for p in problems] == ["csr.problem.no_san"]
    rendered(problems[0])
    assert csr.describe_csr(_foreign_csr(rsa_key))["sans"] == []


def test_problem_cn_not_among_sans(rsa_key):
    problems = csr.csr_problems(_foreign_csr(rsa_key, cn="Mail.Example.JP", sans=["mail.example.jp"]))
    assert problems == []  # case does not matter
    problems = csr.csr_problems(_foreign_csr(rsa_key, cn="mail.example.jp", sans=["example.jp"]))
    assert [p.key for p in problems] == ["csr.problem.cn_not_in_san"]
    assert "example.jp" in rendered(problems[0])["ja"]
    assert csr.csr_problems(_foreign_csr(rsa_key, cn=None, sans=["example.jp"])) == []


def test_problem_weak_key():
    weak = rsa.generate_private_key(65537, 1024)
    problems = csr.csr_problems(_foreign_csr(weak, sans=["mail.example.jp"]))
    assert [p.key for p in problems] == ["keys.weak.rsa"]


def test_problem_sha1_signature(rsa_key):
    sha1 = _sha1_csr(rsa_key)
    problems = csr.csr_problems(sha1)
    assert [p.key for p in problems] == ["csr.problem.weak_hash"]
    assert "SHA-1" in rendered(problems[0])["en"]
    assert csr.describe_csr(sha1)["signature_hash"] == "sha1"


def test_problem_bad_signature(built):
    der = bytearray(built.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature value
    tampered = x509.load_der_x509_csr(bytes(der))
    problems = csr.csr_problems(tampered)
    assert [p.key for p in problems] == ["csr.problem.bad_signature"]
    assert csr.describe_csr(tampered)["signature_ok"] is False


# -- catalogs -----------------------------------------------------------------------------

_SOURCE = Path(csr.__file__).read_text(encoding="utf-8")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_key_exists_in_both_catalogs():
    used = set(re.findall(r'"((?:csr|keys)\.[a-z0-9_.]+)"', _SOURCE))
    used |= {f"csr.label.{name}" for name in FIELDS}
    used |= {f"csr.{name}.fix" for name in FIELDS if name not in ("keytype", "keysize", "curve")}
    for lang in ("en", "ja"):
        missing = used - catalog(lang).keys()
        assert not missing, (lang, missing)
