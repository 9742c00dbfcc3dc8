"""Certificate signing requests: field validation, building, inspection.

The CSR form (widgets) and ``xmailnb csr`` share the rules here.  Each field
can be checked alone with :func:`validate_field`, so a form can flag a field
as the user types; :func:`validate_form` checks them all and
:func:`request_from_values` raises the first problem for the command line.

Upper bounds on subject attributes are those of RFC 5280 Appendix A
(``ub-state-name`` 128, ``ub-locality-name`` 128, ``ub-organization-name``
64, ``ub-organizational-unit-name`` 64, ``ub-common-name`` 64).  For the
e-mail address RFC 5280 raised ``ub-emailaddress-length`` to 255, but
OpenSSL (``ub_email_address``) still refuses more than 128 characters, so 128
is used.  Lengths count characters, as the UTF8String upper bounds do.

>>> request, errors = validate_form({
...     "country": "jp", "state": "Tokyo", "locality": "Chiyoda-ku",
...     "org": "Example K.K.", "cn": "Mail.Example.JP.", "aliases": "example.jp, mail.example.jp"})
>>> errors
{}
>>> san_names(request)
['mail.example.jp', 'example.jp']
"""

from __future__ import annotations

import gettext
import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping

import idna
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from . import keys
from ..errors import InputError
from ..i18n import Msg
from .certfiles import WEAK_HASHES, hash_label, san_values, subject_alt_name
from .keys import KeySpec

__all__ = [
    "FIELDS",
    "REQUIRED_FIELDS",
    "MAX_LENGTHS",
    "MAX_ALIASES",
    "CsrRequest",
    "validate_field",
    "field_note",
    "validate_form",
    "request_from_values",
    "normalize_hostname",
    "san_names",
    "build_csr",
    "csr_pem",
    "describe_csr",
    "csr_problems",
    "preload",
]

FIELDS: tuple[str, ...] = ("country", "state", "locality", "org", "unit", "cn", "aliases", "email",
                           "keytype", "keysize", "curve", "memo")
REQUIRED_FIELDS: frozenset[str] = frozenset({"country", "state", "locality", "org", "cn"})
MAX_LENGTHS: dict[str, int] = {
    "state": 128,      # ub-state-name
    "locality": 128,   # ub-locality-name
    "org": 64,         # ub-organization-name
    "unit": 64,        # ub-organizational-unit-name
    "cn": 64,          # ub-common-name
    "email": 128,      # OpenSSL ub_email_address (RFC 5280 allows 255)
    "memo": 1000,
}
# Let's Encrypt and most commercial CAs cap a certificate at 100 names.
MAX_ALIASES = 100
_MAX_HOSTNAME = 253  # RFC 1035 2.3.4, without the trailing dot
_MAX_LABEL = 63

_TEXT_FIELDS = ("state", "locality", "org", "unit")
_KEY_FIELDS = ("keytype", "keysize", "curve")
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# Separators people type between host names, including the Japanese comma
# and full-width forms an IME produces (full-width space is whitespace).
_ALIAS_SEPARATORS = re.compile(r"[\s,;，、；]+")
_SUBJECT_OIDS: tuple[tuple[str, x509.ObjectIdentifier], ...] = (
    ("country", NameOID.COUNTRY_NAME),
    ("state", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("org", NameOID.ORGANIZATION_NAME),
    ("unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("cn", NameOID.COMMON_NAME),
    ("email", NameOID.EMAIL_ADDRESS),
)


def _label(name: str) -> Msg:
    return Msg.of(f"csr.label.{name}")


@dataclass(kw_only=True)
class CsrRequest:
    """What goes into a CSR, validated and normalised (host names in A-label
    form, country upper-case); keyword arguments only.  Build one with :func:`validate_form` or
    :func:`request_from_values`; :func:`build_csr` re-checks it anyway."""

    country: str
    state: str
    locality: str
    org: str
    unit: str = ""
    cn: str
    aliases: list[str] = field(default_factory=list)
    email: str = ""
    key: KeySpec = field(default_factory=KeySpec)
    memo: str = ""

    @classmethod
    def from_form(cls, values: Mapping[str, Any]) -> "CsrRequest":
        """Same as :func:`request_from_values`."""
        return request_from_values(values)

    def to_values(self) -> dict[str, str]:
        """The request as form strings, keyed by :data:`FIELDS`."""
        return {"country": self.country, "state": self.state, "locality": self.locality,
                "org": self.org, "unit": self.unit, "cn": self.cn, "aliases": " ".join(self.aliases),
                "email": self.email, "keytype": self.key.kind, "keysize": str(self.key.size),
                "curve": self.key.curve, "memo": self.memo}


# -- field rules ----------------------------------------------------------------

def _fail(name: str, msg: Msg) -> InputError:
    # Key fields never come here: keys.parse_key_field raises with its own fix.
    return InputError(msg, Msg.of(f"csr.{name}.fix"), field=name)


def _bad_char(value: str, *, allow: str = "") -> str | None:
    """The first character that must not appear in a subject value or memo,
    as ``U+XXXX``: controls, format characters (zero-width, bidi overrides,
    BOM), surrogates, private-use and unassigned code points, and line or
    paragraph separators."""
    for ch in value:
        if ch in allow:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return f"U+{ord(ch):04X}"
    return None


def _check_text(name: str, value: str) -> str:
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        if name in REQUIRED_FIELDS:
            raise _fail(name, Msg.of("csr.text.required", label=_label(name)))
        return ""
    bad = _bad_char(text)
    if bad:
        raise _fail(name, Msg.of("csr.text.control", label=_label(name), char=bad))
    limit = MAX_LENGTHS[name]
    if len(text) > limit:
        raise _fail(name, Msg.of("csr.text.too_long", label=_label(name), length=len(text), max=limit))
    return text


def _check_country(value: str) -> str:
    # pycountry's tables are for CSR forms only: every diagnosis (which reads
    # CSRs through this module) would pay about 18 ms for them at start-up.
    import pycountry

    text = value.strip()
    if not text:
        raise _fail("country", Msg.of("csr.text.required", label=_label("country")))
    code = text.upper()
    if code == "UK":
        # ISO 3166-1 reserves UK; the United Kingdom's code is GB.
        raise _fail("country", Msg.of("csr.country.uk", value=text))
    if len(code) == 2 and code.isascii() and code.isalpha():
        if pycountry.countries.get(alpha_2=code) is None:
            raise _fail("country", Msg.of("csr.country.unknown", value=text))
        return code
    narrow = unicodedata.normalize("NFKC", text).upper()
    if narrow != code and len(narrow) == 2 and narrow.isascii() and narrow.isalpha():
        # Full-width letters (ＪＰ), as a Japanese input method types them.
        raise _fail("country", Msg.of("csr.country.fullwidth", value=text, code=narrow))
    # A three-letter code or a country's name: say which two letters to use.
    suggestion = _country_suggestion(text)
    if suggestion:
        raise _fail("country", Msg.of("csr.country.suggest", value=text, code=suggestion))
    raise _fail("country", Msg.of("csr.country.length", value=text))


def preload() -> None:
    """Load the country tables a CSR form is checked against (kept off
    start-up, see :func:`_check_country`; a preheated dashboard kernel loads
    them before the page is asked for, not on the first click on step 2)."""
    import pycountry

    pycountry.countries.get(alpha_2="JP")


def _country_suggestion(text: str) -> str | None:
    """The alpha-2 code for an alpha-3 code or an English or Japanese country
    name (``"JPN"``, ``"Japan"``, ``"日本"``), else ``None``."""
    import pycountry  # CSR forms only, see _check_country

    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        pass
    if text.isascii():
        return None
    try:
        names = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["ja"])
    except OSError:
        return None
    wanted = unicodedata.normalize("NFC", text)
    for country in pycountry.countries:
        if names.gettext(country.name) == wanted:
            return country.alpha_2
    return None


def normalize_hostname(value: str, *, wildcard: bool = True) -> tuple[str, Msg | None]:
    """Check a host name and return its normalised A-label form.

    Rules: fully qualified (at least two labels, the last not all digits),
    labels of letters, digits and hyphens (1-63 characters, no hyphen at
    either end), at most 253 characters; internationalised names are mapped
    (UTS #46: case, full-width forms, the ideographic full stop) and converted
    to punycode; one trailing dot is dropped; IP addresses are refused.  With
    *wildcard*, ``*.`` may stand as the whole left-most label, followed by at
    least two labels.  No upper bound for the CN is applied here (see
    :func:`validate_field`), so this also suits a ``--hostname`` option.

    Returns:
        ``(name, None)`` on success, else ``(value, message)``; the message
        names the host as the user typed it.
    """
    try:
        return _hostname(value, wildcard=wildcard), None
    except _HostError as exc:
        return value, exc.msg


def normalize_hostname_option(value: str) -> str:
    """The host name clients connect to, as given by the user (IDN -> A-labels).

    Raises:
        InputError: not a valid host name (field ``hostname``).
    """
    # Clients may connect by address: then the certificate needs that
    # address as an IP subjectAltName (a CSR never asks for one).
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        pass
    name, err = normalize_hostname(value, wildcard=False)
    if err is not None:
        raise InputError(err, Msg.of("actions.hostname.invalid.fix"), field="hostname")
    return name



class _HostError(Exception):
    def __init__(self, msg: Msg) -> None:
        super().__init__(msg.key)
        self.msg = msg


def _ip_like(text: str) -> bool:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _hostname(value: str, *, wildcard: bool) -> str:
    shown = value.strip()
    if _ip_like(shown):
        raise _HostError(Msg.of("csr.host.ip", name=shown))
    bad = _bad_char(shown)
    if bad:
        raise _HostError(Msg.of("csr.host.bad_chars", name=shown, chars=bad))
    if any(ch.isspace() for ch in shown):
        raise _HostError(Msg.of("csr.host.space", name=shown))
    try:
        # UTS #46 mapping before anything else: users paste "ＭＡＩＬ．例え。jp".
        mapped = idna.uts46_remap(shown, std3_rules=False, transitional=False)
    except idna.IDNAError:
        mapped = shown.lower()
    mapped = unicodedata.normalize("NFC", mapped)
    if _ip_like(mapped):
        raise _HostError(Msg.of("csr.host.ip", name=shown))
    if mapped.endswith(".") and not mapped.endswith(".."):
        mapped = mapped[:-1]

    is_wildcard = False
    if "*" in mapped:
        if not wildcard:
            raise _HostError(Msg.of("csr.host.wildcard_refused", name=shown))
        if not mapped.startswith("*.") or "*" in mapped[2:]:
            raise _HostError(Msg.of("csr.host.wildcard", name=shown))
        is_wildcard, mapped = True, mapped[2:]

    labels = mapped.split(".")
    bad_chars = sorted({ch for label in labels for ch in label if ch.isascii() and ch not in _LDH})
    if bad_chars:
        raise _HostError(Msg.of("csr.host.bad_chars", name=shown, chars=" ".join(bad_chars)))
    if any(not label for label in labels):
        raise _HostError(Msg.of("csr.host.empty_label", name=shown))
    if len(labels) < 2:
        raise _HostError(Msg.of("csr.host.wildcard_broad" if is_wildcard else "csr.host.not_fqdn",
                                name=shown))

    alabels: list[str] = []
    for label in labels:
        if label.startswith("-") or label.endswith("-"):
            raise _HostError(Msg.of("csr.host.hyphen", name=shown, label=label))
        if label.isascii() and len(label) > _MAX_LABEL:
            raise _HostError(Msg.of("csr.host.label_too_long", name=shown, label=label,
                                    length=len(label), max=_MAX_LABEL))
        try:
            if label.isascii():
                # Also checks an "xn--" label really is valid punycode.
                alabel = idna.alabel(label).decode("ascii")
            else:
                idna.check_label(label)
                alabel = "xn--" + label.encode("punycode").decode("ascii")
        except idna.IDNAError:
            if label.isascii() and label[2:4] == "--" and not label.startswith("xn--"):
                raise _HostError(Msg.of("csr.host.reserved_hyphens", name=shown, label=label)) from None
            raise _HostError(Msg.of("csr.host.idna", name=shown, label=label)) from None
        if len(alabel) > _MAX_LABEL:
            raise _HostError(Msg.of("csr.host.label_too_long", name=shown, label=label,
                                    length=len(alabel), max=_MAX_LABEL))
        alabels.append(alabel)
    if alabels[-1].isdigit():
        raise _HostError(Msg.of("csr.host.numeric_tld", name=shown))
    result = ("*." if is_wildcard else "") + ".".join(alabels)
    if len(result) > _MAX_HOSTNAME:
        raise _HostError(Msg.of("csr.host.too_long", name=shown, length=len(result), max=_MAX_HOSTNAME))
    return result


def _check_cn(value: str) -> str:
    if not value.strip():
        raise _fail("cn", Msg.of("csr.text.required", label=_label("cn")))
    name, err = normalize_hostname(value)
    if err is not None:
        raise _fail("cn", err)
    if len(name) > MAX_LENGTHS["cn"]:
        raise _fail("cn", Msg.of("csr.cn.too_long", name=value.strip(), length=len(name),
                                 max=MAX_LENGTHS["cn"]))
    return name


def _check_aliases(value: str | list[str] | tuple[str, ...]) -> list[str]:
    tokens = (list(value) if isinstance(value, (list, tuple))
              else [t for t in _ALIAS_SEPARATORS.split(value.strip()) if t])
    names: list[str] = []
    invalid: list[tuple[str, Msg]] = []
    for token in tokens:
        name, err = normalize_hostname(token)
        if err is not None:
            invalid.append((token.strip(), err))
        elif name not in names:
            names.append(name)
    if len(invalid) == 1:
        raise _fail("aliases", invalid[0][1])
    if invalid:
        raise _fail("aliases", Msg.of("csr.aliases.invalid", count=len(invalid),
                                      names=", ".join(t for t, _ in invalid), first=invalid[0][1]))
    if len(names) + 1 > MAX_ALIASES:
        raise _fail("aliases", Msg.of("csr.aliases.too_many", count=len(names), max=MAX_ALIASES - 1))
    return names


def _check_email(value: str) -> str:
    text = value.strip()
    if not text:
        return ""
    # email_validator brings dnspython (about 20 ms): only an address typed
    # into a CSR form or an ACME account needs it.
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise _fail("email", Msg.of("csr.email.invalid", value=text)) from None
    # emailAddress is an IA5String: ASCII only.  The domain can be converted
    # to punycode; a non-ASCII local part cannot.
    if result.ascii_email is None:
        raise _fail("email", Msg.of("csr.email.not_ascii", value=text))
    address = result.ascii_email
    if len(address) > MAX_LENGTHS["email"]:
        raise _fail("email", Msg.of("csr.text.too_long", label=_label("email"), length=len(address),
                                    max=MAX_LENGTHS["email"]))
    return address


def _check_memo(value: str) -> str:
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    bad = _bad_char(text, allow="\n\t")
    if bad:
        raise _fail("memo", Msg.of("csr.text.control", label=_label("memo"), char=bad))
    if len(text) > MAX_LENGTHS["memo"]:
        raise _fail("memo", Msg.of("csr.memo.too_long", length=len(text), max=MAX_LENGTHS["memo"]))
    return text


def _check(name: str, value: Any) -> Any:
    """Normalised value of field *name*, or raise its InputError."""
    if name in _KEY_FIELDS:
        return keys.parse_key_field(name, value)
    if name == "aliases":
        return _check_aliases(value if isinstance(value, (list, tuple)) else ("" if value is None else str(value)))
    text = "" if value is None else str(value)
    if name == "country":
        return _check_country(text)
    if name in _TEXT_FIELDS:
        return _check_text(name, text)
    if name == "cn":
        return _check_cn(text)
    if name == "email":
        return _check_email(text)
    if name == "memo":
        return _check_memo(text)
    raise ValueError(f"unknown CSR field {name!r}")


def validate_field(name: str, value: Any) -> tuple[Any, Msg | None]:
    """Check one form field, as the user types.

    Args:
        name: one of :data:`FIELDS`.
        value: the text of the field (``aliases`` may also be a list).

    Returns:
        ``(normalised, None)`` when valid -- a ``str`` for most fields,
        ``list[str]`` of A-labels for ``aliases``, ``int`` for ``keysize`` --
        or ``(value, message)`` with the input unchanged when not.

    Raises:
        ValueError: *name* is not a CSR field.
    """
    try:
        return _check(name, value), None
    except InputError as exc:
        return value, exc.msg


def field_note(name: str, value: Any) -> Msg | None:
    """Advice about a valid value that is not an error, or ``None``.

    Subject text outside ASCII is legal (UTF8String) but some CAs accept only
    Latin letters; an EC key gets its compatibility note.
    """
    if name in _TEXT_FIELDS and value and not str(value).isascii():
        return Msg.of("csr.note.non_ascii", label=_label(name))
    if name == "keytype":
        normalised, err = validate_field(name, value)
        if err is None and normalised == "ec":
            return KeySpec(kind="ec").describe()
    return None


def _collect(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[InputError]]:
    clean: dict[str, Any] = {}
    errors: list[InputError] = []
    for name in FIELDS:
        try:
            clean[name] = _check(name, values.get(name, ""))
        except InputError as exc:
            errors.append(exc)
    return clean, errors


def _request(clean: Mapping[str, Any]) -> CsrRequest:
    return CsrRequest(
        country=clean["country"], state=clean["state"], locality=clean["locality"], org=clean["org"],
        unit=clean["unit"], cn=clean["cn"],
        aliases=[a for a in clean["aliases"] if a != clean["cn"]],
        email=clean["email"],
        key=KeySpec(kind=clean["keytype"], size=clean["keysize"], curve=clean["curve"]),
        memo=clean["memo"],
    )


def validate_form(values: Mapping[str, Any]) -> tuple[CsrRequest | None, dict[str, InputError]]:
    """Check every field of the CSR form.

    Missing fields count as empty.  Every given field is checked, including
    ``keysize`` when the key type is EC, so the result agrees with
    :func:`validate_field` field by field.

    Returns:
        ``(request, {})`` when all is valid, else ``(None, {field: error})``
        in :data:`FIELDS` order, each error with its message and the fix
        that says what the field expects.
    """
    clean, errors = _collect(values)
    if errors:
        return None, {exc.field: exc for exc in errors if exc.field}
    return _request(clean), {}


def request_from_values(values: Mapping[str, Any]) -> CsrRequest:
    """Build a request from form or command-line values (names as in
    :data:`FIELDS`).

    Raises:
        InputError: the first invalid field in :data:`FIELDS` order, with its
            ``field`` set and a fix saying what the field expects.
    """
    clean, errors = _collect(values)
    if errors:
        raise errors[0]
    return _request(clean)


def san_names(request: CsrRequest) -> list[str]:
    """The subjectAltNames of *request*: the CN first, then the aliases, each once."""
    names: list[str] = []
    for name in [request.cn, *request.aliases]:
        if name and name not in names:
            names.append(name)
    return names


# -- building and reading CSRs ---------------------------------------------------

def build_csr(request: CsrRequest, key: Any) -> x509.CertificateSigningRequest:
    """Build and sign (SHA-256) the CSR for *request* with *key*.

    The subject holds C, ST, L, O, OU (if any), CN and emailAddress (if any);
    a subjectAltName extension lists :func:`san_names` as DNS names.  The
    request is validated again, so a hand-made :class:`CsrRequest` cannot
    produce a CSR the form would refuse.

    Raises:
        InputError: a field of *request* is invalid, or *key* is weak or of a
            type XMail cannot use (field ``key``).
    """
    checked = request_from_values(request.to_values())
    problem = keys.key_strength_problem(key)
    if problem is not None:
        raise InputError(problem, Msg.of("keys.weak.fix"), field="key")
    values = {"country": checked.country, "state": checked.state, "locality": checked.locality,
              "org": checked.org, "unit": checked.unit, "cn": checked.cn, "email": checked.email}
    subject = x509.Name([x509.NameAttribute(oid, values[name])
                         for name, oid in _SUBJECT_OIDS if values[name]])
    sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in san_names(checked)])
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .add_extension(sans, critical=False)
            .sign(key, hashes.SHA256()))


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    """The CSR as PEM (``BEGIN CERTIFICATE REQUEST``), what CAs ask for."""
    return csr.public_bytes(serialization.Encoding.PEM)


def _subject_value(csr: x509.CertificateSigningRequest, oid: x509.ObjectIdentifier) -> str:
    attrs = csr.subject.get_attributes_for_oid(oid)
    if not attrs:
        return ""
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _sans(csr: x509.CertificateSigningRequest) -> list[str] | None:
    """DNS names and IP addresses of the SAN extension; ``None`` without one."""
    san = subject_alt_name(csr)
    return None if san is None else san_values(san)


def _display_name(name: str) -> str:
    """U-label form of an A-label host name, for people; unchanged if not IDNA."""
    if "xn--" not in name:
        return name
    try:
        return ".".join("*" if label == "*" else idna.decode(label) for label in name.split("."))
    except (idna.IDNAError, UnicodeError):
        return name


def _signature_ok(csr: x509.CertificateSigningRequest) -> bool:
    try:
        return bool(csr.is_signature_valid)
    except (UnsupportedAlgorithm, ValueError):  # an algorithm this OpenSSL cannot check: not verified
        return False


def _hash_name(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        algorithm = csr.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        return None
    return algorithm.name if algorithm is not None else None


def describe_csr(csr: x509.CertificateSigningRequest) -> dict[str, Any]:
    """Facts about a CSR, for display and JSON (no key material).

    Returns:
        A dict with the subject fields by form name (``country``, ``state``,
        ``locality``, ``org``, ``unit``, ``cn``, ``email``; ``""`` when
        absent), ``sans`` (list, ``[]`` without the extension),
        ``sans_display`` (the same in Unicode for IDNs), ``key`` (e.g.
        ``"RSA 2048"``), ``signature_hash`` (e.g. ``"sha256"``), ``sha256``
        (fingerprint of the CSR DER, upper-case colon hex),
        ``public_key_sha256`` and ``signature_ok``.
    """
    out: dict[str, Any] = {name: _subject_value(csr, oid) for name, oid in _SUBJECT_OIDS}
    sans = _sans(csr) or []
    out["sans"] = sans
    out["sans_display"] = [_display_name(n) for n in sans]
    out["key"] = keys.key_summary(csr)
    out["signature_hash"] = _hash_name(csr)
    out["sha256"] = keys.sha256_fingerprint(csr.public_bytes(serialization.Encoding.DER))
    out["public_key_sha256"] = keys.public_key_fingerprint(csr)
    out["signature_ok"] = _signature_ok(csr)
    return out


def csr_problems(csr: x509.CertificateSigningRequest) -> list[Msg]:
    """What is wrong with a CSR someone else made, most serious first.

    Checks: the signature (a weak hash is reported instead, because the
    library refuses to verify SHA-1 at all), the key (weak or unusable type),
    the subjectAltName extension (present, and holding the CN).
    """
    problems: list[Msg] = []
    hash_name = _hash_name(csr)
    if hash_name in WEAK_HASHES:
        problems.append(Msg.of("csr.problem.weak_hash", algorithm=hash_label(hash_name)))
    elif not _signature_ok(csr):
        problems.append(Msg.of("csr.problem.bad_signature"))
    weak = keys.key_strength_problem(csr)
    if weak is not None:
        problems.append(weak)
    sans = _sans(csr)
    cn = _subject_value(csr, NameOID.COMMON_NAME)
    if not sans:
        problems.append(Msg.of("csr.problem.no_san"))
    elif cn:
        wanted, err = normalize_hostname(cn)
        names = {s.lower() for s in sans}
        if (wanted if err is None else cn.lower()) not in names:
            problems.append(Msg.of("csr.problem.cn_not_in_san", cn=cn, names=", ".join(sans)))
    return problems
