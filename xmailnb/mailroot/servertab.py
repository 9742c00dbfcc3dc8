"""Read and edit XMail's ``server.tab`` without disturbing a byte you did not change.

XMail 1.27 reads ``server.tab`` line by line (``SvrReadConfig``): a line whose
first byte is ``#`` is a comment, trailing CR/LF are stripped, the rest is split
on TAB with runs of tabs collapsing (``strtok``), and each field that starts
with ``"`` is de-quoted up to the next unescaped ``"`` (only ``\\"`` is an
escape; any other backslash is kept).  A field without a leading quote is taken
verbatim.  The first two fields are the name and the value; a line with fewer
fields is ignored.  Names are case-sensitive, and when a name is defined twice
the first line wins (the config hash appends at the tail of a bucket and looks
up from its head).

:class:`ServerTab` follows exactly those rules, keeps every line as raw bytes,
and edits only the line it has to: comments, order, quoting, line endings,
unknown variables and bytes that are not UTF-8 (Shift_JIS comments written on a
Japanese Windows) come out as they went in.

Names and values are decoded as UTF-8 with ``surrogateescape`` (PEP 383): text
in UTF-8 reads naturally, and any other byte survives ``set(name, get(name))``
unchanged.  The TLS variables are plain ASCII either way.

Limits kept on purpose: XMail reads at most 2047 bytes per line and Windows'
text mode stops at a Ctrl-Z byte; neither occurs in a real server.tab, so they
are not emulated.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NoReturn

from ..errors import InputError
from ..files import read_regular
from ..i18n import Msg
from ..status import Status
from .layout import MailRoot

__all__ = [
    "ServerTab",
    "LineChange",
    "Variable",
    "TlsSetting",
    "Issue",
    "TLS_VARIABLES",
    "TLS_VARIABLE_NAMES",
    "AUTH_MECHANISMS",
    "SMTPCONFIG_OPTIONS",
    "variable",
    "flag_value",
    "atoi",
    "validate_setting",
    "check_name",
    "tls_settings",
    "tls_inconsistencies",
    "mail_hostname",
    "mail_hostname_of",
    "stock_servertab",
]

log = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
#: server.tab is a few KB; anything this big is not one.
MAX_FILE_BYTES = 8 * 1024 * 1024


# -- XMail's reading rules -------------------------------------------------------

_INT_MAX = 2**31 - 1


def atoi(text: str | None) -> int:
    """C ``atoi`` as XMail uses it: leading white space, an optional sign,
    then as many digits as there are; anything else reads as 0.

    >>> atoi(" 12abc"), atoi("yes"), atoi("-3"), atoi("")
    (12, 0, -3, 0)
    """
    if not text:
        return 0
    match = re.match(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)", text)
    if match is None:
        return 0
    digits = match.group(2).lstrip("0") or "0"
    # atoi saturates (strtol clamps; XMail's Windows builds keep 32 bits),
    # and int() refuses strings of thousands of digits: never call it on one.
    number = _INT_MAX if len(digits) > 10 else min(int(digits), _INT_MAX)
    return -number if match.group(1) == "-" else number


def flag_value(text: str | None) -> bool:
    """Whether XMail takes *text* as an enabled flag (``atoi(text) != 0``).

    ``None`` (variable not set) is ``False``: callers apply the variable's own
    default first (see :meth:`Variable.effective`).

    >>> flag_value("1"), flag_value("yes"), flag_value("2"), flag_value("")
    (True, False, True, False)
    """
    return atoi(text) != 0


def _dequote(field: bytes) -> bytes:
    # StrDeQuote: only a backslash right before a quote escapes it.
    if not field.startswith(b'"'):
        return field
    out = bytearray()
    i, end = 1, len(field)
    while i < end and field[i] != 0x22:
        if field[i] == 0x5C and i + 1 < end and field[i + 1] == 0x22:
            i += 1
        out.append(field[i])
        i += 1
    return bytes(out)


def _fields(seen: bytes) -> list[tuple[int, int]]:
    # strtok(line, "\t"): runs of tabs collapse, empty fields vanish.
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece in seen.split(b"\t"):
        if piece:
            spans.append((pos, pos + len(piece)))
        pos += len(piece) + 1
    return spans


def _decode(raw: bytes) -> str:
    return raw.decode(_ENCODING, _ERRORS)


def _encode(text: str) -> bytes:
    return text.encode(_ENCODING, _ERRORS)


_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def _lim_istr(buffer: str, match: str, limits: str = ",") -> bool:
    """XMail's ``StrLimIStr`` as written in 1.27, quirk included.

    The "starts a field" test looks at the matched character itself (not the
    one before it) or at the *current search start*, so in ``"LOGIN,PLAIN"``
    only ``LOGIN`` is ever found: XMail honours the first name of the list.
    """
    hay = _encode(buffer).translate(_ASCII_LOWER)
    needle = _encode(match).translate(_ASCII_LOWER)
    lim = _encode(limits)
    if not needle:
        return True
    start = 0
    while True:
        pos = hay.find(needle, start)
        if pos < 0:
            return False
        after = pos + len(needle)
        if (pos == start or hay[pos] in lim) and (after == len(hay) or hay[after] in lim):
            return True
        start = after


def _smtp_options(value: str) -> tuple[dict[str, bool], list[str]]:
    """Parse an SmtpConfig value as ``MscParseOptions`` + ``SMTPSvrCfgOptionsAssign``.

    Returns the options XMail turns on (``MailAuth``, ``WantTLS``) and the
    tokens it silently ignores (unknown or wrongly-cased names).
    """
    options = {"MailAuth": False, "WantTLS": False}
    ignored: list[str] = []
    for token in re.split(r"[,\r\n]+", value):
        if not token:
            continue
        name, sep, arg = token.partition("=")
        on = not sep or atoi(arg) != 0
        if name in ("mail-auth", "MailAuth"):
            options["MailAuth"] = options["MailAuth"] or on
        elif name == "WantTLS":
            options["WantTLS"] = options["WantTLS"] or on
        else:
            ignored.append(token)
    return options, ignored


# -- the file --------------------------------------------------------------------

class _Line:
    """One physical line: its raw bytes and what XMail makes of it."""

    __slots__ = ("raw", "body", "eol", "name", "value", "span", "commented")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        if raw.endswith(b"\r\n"):
            self.body, self.eol = raw[:-2], b"\r\n"
        elif raw.endswith(b"\n"):
            self.body, self.eol = raw[:-1], b"\n"
        else:
            self.body, self.eol = raw, b""
        self.name: str | None = None
        self.value: str | None = None
        self.span: tuple[int, int] | None = None
        self.commented: str | None = None
        # What XMail's C string sees: up to a NUL, trailing CRs stripped.
        seen = self.body.partition(b"\x00")[0].rstrip(b"\r")
        if not seen:
            return
        if seen[:1] == b"#":
            # A stock "#"Name"<TAB>"Value"" line: where set() puts the real one.
            rest = seen[1:].lstrip(b" \t")
            spans = _fields(rest)
            if len(spans) >= 2:
                self.commented = _decode(_dequote(rest[spans[0][0]:spans[0][1]]))
            return
        spans = _fields(seen)
        if len(spans) >= 2:
            self.name = _decode(_dequote(seen[spans[0][0]:spans[0][1]]))
            self.value = _decode(_dequote(seen[spans[1][0]:spans[1][1]]))
            self.span = spans[1]


def _split(data: bytes) -> list[bytes]:
    # Only LF ends a line (fgets); a lone CR is part of the line.
    pieces = data.split(b"\n")
    lines = [p + b"\n" for p in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


@dataclass(frozen=True)
class LineChange:
    """One line that differs between the file as read and as it is now.

    Line numbers are 1-based; ``before``/``after`` are the line's text without
    its line ending (``None`` for an added or removed line).
    """

    old_number: int | None
    new_number: int | None
    before: str | None
    after: str | None


class ServerTab:
    """An XMail ``server.tab`` held as raw lines, edited in place.

    >>> tab = ServerTab.parse(b'#"SSLWantVerify"\\t"0"\\r\\n"RootDomain"\\t"example.jp"\\r\\n')
    >>> tab.get("RootDomain")
    'example.jp'
    >>> tab.set("SSLWantVerify", "1")
    >>> tab.to_bytes()
    b'#"SSLWantVerify"\\t"0"\\r\\n"SSLWantVerify"\\t"1"\\r\\n"RootDomain"\\t"example.jp"\\r\\n'
    """

    def __init__(self, lines: Iterable[bytes] = (), *, path: Path | None = None) -> None:
        self._lines = [_Line(raw) for raw in lines]
        self._original = [line.raw for line in self._lines]
        self.path = path

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, *, path: Path | None = None) -> "ServerTab":
        """Parse *data*; never fails: lines XMail would ignore are kept verbatim."""
        if isinstance(data, str):
            raise TypeError("ServerTab.parse() takes bytes, not str")
        return cls(_split(bytes(data)), path=path)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> "ServerTab":
        """Read and parse the file at *path*.

        Raises:
            OSError: the file cannot be read.
        """
        p = Path(path)
        # Only a regular file, bounded: a FIFO or /dev/zero in its place
        # must not hang or exhaust a command (raises OSError at once).
        return cls.parse(read_regular(p, MAX_FILE_BYTES), path=p)

    def to_bytes(self) -> bytes:
        """The file's bytes: identical to the input while nothing was changed."""
        return b"".join(line.raw for line in self._lines)

    @property
    def changed(self) -> bool:
        return [line.raw for line in self._lines] != self._original

    def __repr__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"<ServerTab{where}: {len(self._lines)} lines, {len(self.names())} variables>"

    # -- reading -------------------------------------------------------------

    def _index(self, name: str) -> int | None:
        for i, line in enumerate(self._lines):
            if line.name == name:
                return i
        return None

    def get(self, name: str) -> str | None:
        """The value XMail uses for *name* (the first definition), or ``None``."""
        i = self._index(name)
        return None if i is None else self._lines[i].value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._index(name) is not None

    def names(self) -> list[str]:
        """Names defined by active lines, each once, in file order."""
        seen: dict[str, None] = {}
        for line in self._lines:
            if line.name is not None:
                seen.setdefault(line.name)
        return list(seen)

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` as XMail sees them (first definition wins)."""
        return [(name, self.get(name) or "") for name in self.names()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def line_number(self, name: str) -> int | None:
        """1-based line of the definition XMail uses, or ``None``."""
        i = self._index(name)
        return None if i is None else i + 1

    def definitions(self, name: str) -> list[tuple[int, str]]:
        """Every active definition of *name*: ``(line number, value)``."""
        return [(i + 1, line.value or "") for i, line in enumerate(self._lines) if line.name == name]

    def commented_line(self, name: str) -> int | None:
        """1-based line of the first commented-out ``#"name"<TAB>...`` line."""
        for i, line in enumerate(self._lines):
            if line.commented == name:
                return i + 1
        return None

    def _entries(self) -> Iterator[tuple[int, str, str]]:
        for i, line in enumerate(self._lines):
            if line.name is not None:
                yield i + 1, line.name, line.value or ""

    @property
    def newline(self) -> bytes:
        """The file's dominant line ending (``b"\\n"`` when there is none or a tie)."""
        crlf = sum(1 for line in self._lines if line.eol == b"\r\n")
        lf = sum(1 for line in self._lines if line.eol == b"\n")
        return b"\r\n" if crlf > lf else b"\n"

    @property
    def has_bom(self) -> bool:
        return bool(self._lines) and self._lines[0].raw.startswith(_BOM)

    # -- editing -------------------------------------------------------------

    def set(self, name: str, value: str) -> None:
        """Give *name* the value *value*, changing as little as possible.

        - Defined: only the value field of the line XMail uses is replaced;
          its name quoting, separator tabs, anything after the value and the
          line ending stay.  Nothing changes if the value is already *value*.
        - Not defined but a stock ``#"name"<TAB>...`` comment exists: a new
          line goes right after that comment, with the comment's line ending.
        - Otherwise the line is appended with the file's dominant line ending.

        A line that has to be followed by the new one gets a line ending if it
        had none (the last line of a file without a final newline).

        Raises:
            ValueError: *name* or *value* cannot be written in server.tab
                (tab, line break, NUL; a quote in the name; a value ending in
                a backslash, which XMail would read as an escaped quote).
                Check user input with :func:`validate_setting` first.
        """
        name_b = _check_name(name)
        value_b = _quote(value)
        i = self._index(name)
        if i is not None:
            line = self._lines[i]
            if line.value == value:
                return
            assert line.span is not None
            start, end = line.span
            self._lines[i] = _Line(line.body[:start] + value_b + line.body[end:] + line.eol)
            return
        content = b'"' + name_b + b'"\t' + value_b
        for j, line in enumerate(self._lines):
            if line.commented == name:
                self._insert_after(j, content, line.eol or self.newline)
                return
        self._insert_after(len(self._lines) - 1, content, self.newline)

    def _insert_after(self, index: int, content: bytes, eol: bytes) -> None:
        if index >= 0 and not self._lines[index].eol:
            self._lines[index] = _Line(self._lines[index].raw + eol)
        self._lines.insert(index + 1, _Line(content + eol))

    def unset(self, name: str) -> int:
        """Comment out every active definition of *name* so XMail's default
        applies (only a ``#`` is added in front of each line).

        Returns:
            How many lines were commented out.
        """
        count = 0
        for i, line in enumerate(self._lines):
            if line.name == name:
                self._lines[i] = _Line(b"#" + line.raw)
                count += 1
        return count

    def changed_lines(self) -> list[LineChange]:
        """The lines that differ from the file as read, for a preview."""
        before = self._original
        after = [line.raw for line in self._lines]
        changes: list[LineChange] = []
        matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                old = i1 + k if i1 + k < i2 else None
                new = j1 + k if j1 + k < j2 else None
                changes.append(LineChange(
                    None if old is None else old + 1,
                    None if new is None else new + 1,
                    None if old is None else _display(before[old]),
                    None if new is None else _display(after[new]),
                ))
        return changes


def _display(raw: bytes) -> str:
    return raw.rstrip(b"\r\n").decode(_ENCODING, "replace")


def _check_name(name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise ValueError("a server.tab name must be a non-empty str")
    raw = _encode(name)
    if any(c in raw for c in b'\t\r\n\x00"'):
        raise ValueError(f"{name!r} cannot be written as a server.tab name")
    return raw


def _quote(value: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError("a server.tab value must be a str")
    raw = _encode(value)
    if any(c in raw for c in b"\t\r\n\x00"):
        raise ValueError(f"{value!r} cannot be written on one server.tab line")
    if raw.endswith(b"\\"):
        # XMail would read the closing quote as an escaped one.
        raise ValueError(f"{value!r} ends with a backslash, which server.tab cannot quote")
    return b'"' + raw.replace(b'"', b'\\"') + b'"'


# -- the TLS variables ------------------------------------------------------------

KINDS = ("flag", "int", "string", "tokens")
#: Mechanisms XMail's SMTP server offers itself (without smtpextauth.tab).
AUTH_MECHANISMS = ("LOGIN", "PLAIN", "CRAM-MD5")
#: SmtpConfig options XMail 1.27 knows (names are case-sensitive).
SMTPCONFIG_OPTIONS = ("MailAuth", "mail-auth", "WantTLS")
_MAX_DEPTH = 100


@dataclass(frozen=True)
class Variable:
    """A server.tab TLS variable: its type, XMail's default and what it does.

    Attributes:
        name: exact (case-sensitive) name.
        kind: ``"flag"`` (0/1), ``"int"``, ``"string"`` or ``"tokens"``
            (comma-separated list).
        default: the value XMail assumes when the variable is not set
            (``None``: "not set" is itself meaningful, e.g. SmtpNoTLSAuths).
        summary: one line saying what the variable does.
        group: ``"starttls"``, ``"auth"`` or ``"verify"``, for grouping in a form.
    """

    name: str
    kind: str
    default: str | None
    summary: Msg
    group: str
    slug: str

    def effective(self, value: str | None) -> str | None:
        """The value XMail acts on when server.tab holds *value* (``None``:
        not set).  Flags become ``"1"``/``"0"``; an empty integer falls back
        to the default (``SvrGetConfigInt``), an empty flag reads as 0."""
        if self.kind == "flag":
            if value is None:
                return self.default
            return "1" if flag_value(value) else "0"
        if self.kind == "int":
            if value is None or value == "":
                return self.default
            return str(atoi(value))
        return self.default if value is None else value

    def meaning(self, value: str | None) -> Msg:
        """What *value* (``None``: not set) makes XMail do, in one sentence."""
        base = f"servertab.{self.slug}"
        eff = self.effective(value)
        if self.kind == "flag":
            return Msg.of(f"{base}.on" if eff == "1" else f"{base}.off")
        if self.name == "SSLMaxCertsDepth":
            depth = atoi(eff)
            if depth <= 0:
                return Msg.of(f"{base}.default")
            return Msg.of(f"{base}.limit", depth=depth)
        if self.name == "SmtpNoTLSAuths":
            if eff is None:
                return Msg.of(f"{base}.unset")
            offered = [m for m in AUTH_MECHANISMS if _lim_istr(eff, m)]
            if not offered:
                return Msg.of(f"{base}.empty")
            return Msg.of(f"{base}.list", mechanisms=",".join(offered))
        if self.name == "SmtpConfig":
            if eff is None:
                return Msg.of(f"{base}.unset")
            options, ignored = _smtp_options(eff)
            parts = []
            if options["WantTLS"]:
                parts.append(Msg.of(f"{base}.want_tls"))
            if options["MailAuth"]:
                parts.append(Msg.of(f"{base}.mail_auth"))
            if ignored:
                parts.append(Msg.of(f"{base}.ignored", tokens=",".join(ignored)))
            if not parts:
                return Msg.of(f"{base}.none")
            return Msg.of(f"{base}.options", options=parts)
        return Msg.of("servertab.value.shown", value="" if eff is None else eff)


def _var(name: str, kind: str, default: str | None, group: str, slug: str) -> Variable:
    return Variable(name, kind, default, Msg.of(f"servertab.{slug}.summary"), group, slug)


TLS_VARIABLES: tuple[Variable, ...] = (
    _var("EnableSMTP-TLS", "flag", "1", "starttls", "enable_smtp_tls"),
    _var("EnablePOP3-TLS", "flag", "1", "starttls", "enable_pop3_tls"),
    _var("EnableCTRL-TLS", "flag", "1", "starttls", "enable_ctrl_tls"),
    _var("SmtpNoTLSAuths", "tokens", None, "auth", "smtp_no_tls_auths"),
    _var("SmtpConfig", "tokens", None, "auth", "smtp_config"),
    _var("SSLWantVerify", "flag", "0", "verify", "ssl_want_verify"),
    _var("SSLWantCert", "flag", "0", "verify", "ssl_want_cert"),
    _var("SSLAllowSelfSigned", "flag", "0", "verify", "ssl_allow_self_signed"),
    _var("SSLUseCertsFile", "flag", "0", "verify", "ssl_use_certs_file"),
    _var("SSLUseCertsDir", "flag", "0", "verify", "ssl_use_certs_dir"),
    _var("SSLMaxCertsDepth", "int", "0", "verify", "ssl_max_certs_depth"),
)
TLS_VARIABLE_NAMES: tuple[str, ...] = tuple(v.name for v in TLS_VARIABLES)
_BY_NAME = {v.name: v for v in TLS_VARIABLES}
_BY_FOLDED = {v.name.casefold(): v.name for v in TLS_VARIABLES}


def variable(name: str) -> Variable | None:
    """The :class:`Variable` called exactly *name*, or ``None``."""
    return _BY_NAME.get(name)


# -- validating a user's setting ----------------------------------------------------

_CONTROL = re.compile(r'[\x00-\x1f\x7f"\\]')
_MECHANISM = re.compile(r"[A-Za-z0-9_-]+")
_OPTION = re.compile(r"([A-Za-z0-9_-]+)(?:=(.*))?")


def _shown(text: str, limit: int = 24) -> str:
    """*text* cut to a length a message can show."""
    return text if len(text) <= limit else text[:limit] + "…"


def validate_setting(name: str, value: str) -> str:
    """Check that *value* is a sensible setting for TLS variable *name*.

    Returns:
        The value to write: flags ``"0"``/``"1"``, integers without leading
        zeros, lists without the spaces XMail would not strip (``"LOGIN,
        PLAIN"`` → ``"LOGIN,PLAIN"``; mechanism names upper-cased, which XMail
        matches case-insensitively anyway).

    Raises:
        InputError: *name* is not a TLS variable (with the right spelling when
            only the case is wrong, which XMail would silently ignore), or
            *value* is not valid for it.
    """
    var = _BY_NAME.get(name)
    if var is None:
        _unknown_name(name)
    if not isinstance(value, str):
        raise TypeError("value must be a str")
    text = value.strip()
    if _CONTROL.search(text):
        raise InputError.of("servertab.value.chars", "servertab.value.chars.fix", name=name)
    if var.kind == "flag":
        if text not in ("0", "1"):
            raise InputError.of("servertab.value.flag", "servertab.value.flag.fix", name=name, value=value)
        return text
    if var.kind == "int":
        if not text.isascii() or not text.isdigit():
            raise InputError.of("servertab.value.int", "servertab.value.int.fix",
                                name=name, value=_shown(value), min=0, max=_MAX_DEPTH)
        # Checked on the digits: int() refuses thousands of them (ValueError).
        if len(text.lstrip("0")) > len(str(_MAX_DEPTH)) or int(text) > _MAX_DEPTH:
            raise InputError.of("servertab.value.int_range", "servertab.value.int.fix",
                                name=name, value=_shown(value), min=0, max=_MAX_DEPTH)
        number = int(text)
        return str(number)
    if var.name == "SmtpNoTLSAuths":
        tokens = [t.strip() for t in text.split(",") if t.strip()]
        for token in tokens:
            if not _MECHANISM.fullmatch(token):
                raise InputError.of("servertab.value.auths", "servertab.value.auths.fix",
                                    name=name, token=token)
        return ",".join(t.upper() for t in tokens)
    if var.name == "SmtpConfig":
        tokens = [t.strip() for t in text.split(",") if t.strip()]
        for token in tokens:
            _check_option(token)
        return ",".join(tokens)
    if not text.isprintable():
        raise InputError.of("servertab.value.chars", "servertab.value.chars.fix", name=name)
    return text


def check_name(name: str) -> str:
    """*name* when it is a TLS variable this tool changes; else the same
    refusal :func:`validate_setting` gives (with a spelling hint)."""
    if variable(name) is None:
        _unknown_name(name)
    return name


def _unknown_name(name: str) -> NoReturn:
    right = _BY_FOLDED.get(str(name).strip().casefold())
    if right is not None:
        raise InputError.of("servertab.name.case", "servertab.name.case.fix", name=name, right=right)
    close = difflib.get_close_matches(str(name), TLS_VARIABLE_NAMES, n=1, cutoff=0.75)
    names = ", ".join(TLS_VARIABLE_NAMES)
    if close:
        raise InputError.of("servertab.name.unknown", "servertab.name.unknown.suggest",
                            name=name, names=names, suggestion=close[0])
    raise InputError.of("servertab.name.unknown", "servertab.name.unknown.fix", name=name, names=names)


def _check_option(token: str) -> None:
    known = ", ".join(SMTPCONFIG_OPTIONS)
    match = _OPTION.fullmatch(token)
    if match is None:
        raise InputError.of("servertab.value.smtpconfig_token", "servertab.value.smtpconfig_token.fix",
                            name="SmtpConfig", token=token, known=known)
    option, arg = match.group(1), match.group(2)
    if option not in SMTPCONFIG_OPTIONS:
        right = {o.casefold(): o for o in SMTPCONFIG_OPTIONS}.get(option.casefold())
        if right is not None:
            raise InputError.of("servertab.value.smtpconfig_case", "servertab.value.smtpconfig_case.fix",
                                name="SmtpConfig", token=token, right=right)
        raise InputError.of("servertab.value.smtpconfig_token", "servertab.value.smtpconfig_token.fix",
                            name="SmtpConfig", token=token, known=known)
    if arg is not None and arg not in ("0", "1"):
        raise InputError.of("servertab.value.smtpconfig_value", "servertab.value.smtpconfig_value.fix",
                            name="SmtpConfig", token=token, option=option)


# -- reports ------------------------------------------------------------------

@dataclass(frozen=True)
class TlsSetting:
    """One TLS variable as a server.tab sets it.

    Attributes:
        name, default, kind, group, summary: those of its :class:`Variable`.
        value: as written (``None`` when not set).
        effective: what XMail acts on.
        is_default: the effective value equals the default's.
        line: 1-based line of the definition used, or ``None``.
        meaning: what *value* does (:class:`~xmailnb.i18n.Msg`).
    """

    name: str
    value: str | None
    default: str | None
    effective: str | None
    is_default: bool
    kind: str
    group: str
    line: int | None
    summary: Msg
    meaning: Msg

    def to_json(self, lang: str) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "default": self.default, "effective": self.effective,
                "is_default": self.is_default, "kind": self.kind, "summary": self.summary.render(lang),
                "meaning": self.meaning.render(lang)}


def tls_settings(tab: ServerTab) -> list[TlsSetting]:
    """One row per TLS variable, in display order."""
    rows = []
    for var in TLS_VARIABLES:
        value = tab.get(var.name)
        effective = var.effective(value)
        rows.append(TlsSetting(name=var.name, value=value, default=var.default, effective=effective,
                               is_default=effective == var.effective(None), kind=var.kind, group=var.group,
                               line=tab.line_number(var.name), summary=var.summary, meaning=var.meaning(value)))
    return rows


@dataclass(frozen=True)
class Issue:
    """Something about the TLS settings an administrator should know.

    Attributes:
        code: stable identifier, e.g. ``"starttls.all_off"``.
        severity: :attr:`Status.INFO`, :attr:`Status.WARN` or :attr:`Status.ERROR`.
        msg: what is the matter; fix: what to do (may be ``None``).
        names: the variables involved, so a form can point at them.
    """

    code: str
    severity: Status
    msg: Msg
    fix: Msg | None = None
    names: tuple[str, ...] = ()


def _issue(code: str, severity: Status, key: str, involved: Iterable[str] = (), fix: bool = True,
           **params: object) -> Issue:
    return Issue(code, severity, Msg(key, params), Msg(f"{key}.fix", params) if fix else None,
                 tuple(involved))


def _on(tab: ServerTab, name: str) -> bool:
    var = _BY_NAME[name]
    return var.effective(tab.get(name)) == "1"


def tls_inconsistencies(tab: ServerTab) -> list[Issue]:
    """Contradictions, no-ops and risks in server.tab's TLS settings.

    Returns:
        Issues sorted by severity (errors first), then in a stable order.
        An empty list means nothing to report.
    """
    issues: list[Issue] = []
    issues += _file_issues(tab)

    protocols = {"EnableSMTP-TLS": "SMTP", "EnablePOP3-TLS": "POP3", "EnableCTRL-TLS": "CTRL"}
    off = [n for n in protocols if not _on(tab, n)]
    if len(off) == len(protocols):
        issues.append(_issue("starttls.all_off", Status.WARN, "servertab.issue.all_off", off))
    elif off:
        issues.append(_issue("starttls.some_off", Status.INFO, "servertab.issue.some_off", off,
                             protocols=", ".join(protocols[n] for n in off)))

    smtp_tls = _on(tab, "EnableSMTP-TLS")
    for line, name, value in tab._entries():
        if name != "SmtpConfig" and not name.startswith("SmtpConfig-"):
            continue
        if tab.line_number(name) != line:
            continue
        options, ignored = _smtp_options(value)
        if ignored:
            issues.append(_issue("smtpconfig.ignored", Status.WARN, "servertab.issue.smtpconfig_ignored", [name],
                                 name=name, tokens=",".join(ignored), known=", ".join(SMTPCONFIG_OPTIONS)))
        if options["WantTLS"] and not smtp_tls:
            issues.append(_issue("smtpconfig.want_tls_no_starttls", Status.ERROR,
                                 "servertab.issue.want_tls_no_starttls", [name, "EnableSMTP-TLS"], name=name))
        elif options["WantTLS"]:
            issues.append(_issue("smtpconfig.want_tls", Status.INFO, "servertab.issue.want_tls", [name], name=name))

    auths = tab.get("SmtpNoTLSAuths")
    clear = [m for m in AUTH_MECHANISMS if auths is None or _lim_istr(auths, m)]
    if auths is not None:
        listed = [t for t in auths.split(",") if t.strip()]
        if len(listed) > 1:
            issues.append(_issue("auth.first_only", Status.WARN, "servertab.issue.first_only", ["SmtpNoTLSAuths"],
                                 value=auths, first=listed[0].strip()))
    if smtp_tls and ({"LOGIN", "PLAIN"} & set(clear)):
        issues.append(_issue("auth.clear", Status.INFO, "servertab.issue.auth_clear", ["SmtpNoTLSAuths"],
                             mechanisms=",".join(m for m in clear if m in ("LOGIN", "PLAIN"))))
    if not smtp_tls and auths is not None and not clear:
        issues.append(_issue("auth.smtps_only", Status.WARN, "servertab.issue.smtps_only",
                             ["SmtpNoTLSAuths", "EnableSMTP-TLS"]))

    verify = _on(tab, "SSLWantVerify") or _on(tab, "SSLWantCert")
    if _on(tab, "SSLWantCert"):
        # SSL_VERIFY_FAIL_IF_NO_PEER_CERT: every client without a certificate
        # is refused, and mail programs have none (issue #11).
        issues.append(_issue("verify.want_cert", Status.WARN, "servertab.issue.want_cert", ["SSLWantCert"]))
    elif _on(tab, "SSLWantVerify"):
        issues.append(_issue("verify.requested", Status.INFO, "servertab.issue.want_verify", ["SSLWantVerify"]))
    if _on(tab, "SSLWantCert") and not _on(tab, "SSLWantVerify"):
        issues.append(_issue("verify.implied", Status.INFO, "servertab.issue.want_cert_implies",
                             ["SSLWantCert", "SSLWantVerify"], fix=False))
    if verify:
        if not _on(tab, "SSLUseCertsFile") and not _on(tab, "SSLUseCertsDir"):
            issues.append(_issue("verify.no_ca", Status.WARN, "servertab.issue.verify_no_ca",
                                 ["SSLWantVerify", "SSLUseCertsFile", "SSLUseCertsDir"]))
        issues.append(_issue("verify.outbound", Status.WARN, "servertab.issue.verify_outbound",
                             ["SSLWantVerify", "SSLWantCert"]))
    else:
        idle = [n for n in ("SSLUseCertsFile", "SSLUseCertsDir", "SSLAllowSelfSigned") if _on(tab, n)]
        if atoi(_BY_NAME["SSLMaxCertsDepth"].effective(tab.get("SSLMaxCertsDepth"))) > 0:
            idle.append("SSLMaxCertsDepth")
        if idle:
            issues.append(_issue("verify.unused", Status.INFO, "servertab.issue.verify_unused", idle,
                                 names=", ".join(idle)))

    return sorted(issues, key=lambda issue: issue.severity, reverse=True)


def _file_issues(tab: ServerTab) -> list[Issue]:
    issues: list[Issue] = []
    if tab.has_bom:
        first = _Line(tab._lines[0].raw[len(_BOM):])
        if first.name is not None:
            issues.append(_issue("file.bom", Status.WARN, "servertab.issue.bom", [first.name], name=first.name))
    for line, name, _value in tab._entries():
        right = _BY_FOLDED.get(name.strip().strip('"').casefold())
        if right is not None and name != right:
            issues.append(_issue("name.case", Status.WARN, "servertab.issue.name_case", [right],
                                 line=line, found=name, name=right))
    for var in TLS_VARIABLES:
        found = tab.definitions(var.name)
        if len(found) > 1:
            issues.append(_issue("name.duplicate", Status.WARN, "servertab.issue.duplicate", [var.name],
                                 name=var.name, count=len(found), lines=", ".join(str(n) for n, _ in found),
                                 line=found[0][0], value=found[0][1]))
        value = tab.get(var.name)
        if var.kind in ("flag", "int") and value is not None and not re.fullmatch(r"\s*[0-9]+\s*", value):
            if var.kind == "int" and value == "":
                continue
            issues.append(_issue("value.not_numeric", Status.WARN, "servertab.issue.not_numeric", [var.name],
                                 name=var.name, value=value, effective=var.effective(value),
                                 line=tab.line_number(var.name)))
    return issues


def mail_hostname(tab: ServerTab) -> str | None:
    """The mail host name clients are expected to use: ``SmtpServerDomain``,
    else ``RootDomain`` (lower-case, no trailing dot), or ``None``.

    XMail itself falls back to the reverse DNS name of the listening address
    when SmtpServerDomain is missing; RootDomain is the better guess of the
    name in a certificate.
    """
    for name in ("SmtpServerDomain", "RootDomain"):
        value = (tab.get(name) or "").strip().rstrip(".").lower()
        if value:
            return value
    return None


def mail_hostname_of(mr: MailRoot) -> str | None:
    """:func:`mail_hostname` of *mr*'s server.tab (``None`` when unreadable)."""
    try:
        data = mr.read(mr.rel_server_tab, MAX_FILE_BYTES)
    except OSError as exc:
        log.info("server.tab of %s unreadable: %s", mr.path, exc)
        return None
    return mail_hostname(ServerTab.parse(data)) if data is not None else None


# -- a stock file for the sandbox -------------------------------------------------

_STOCK = """\
#
# XMail server configuration: server.tab
#
# Each line is "Name"<TAB>"Value". Use real TAB characters and double quotes.
# A line that starts with # is a comment; remove the # to use a setting.
# XMail reads this file again whenever it needs a value: no restart needed.
#
"RootDomain"\t"{domain}"
"SmtpServerDomain"\t"{host}"
"POP3Domain"\t"{domain}"
"HeloDomain"\t"{host}"
"PostMaster"\t"postmaster@{domain}"
"ErrorsAdmin"\t"postmaster@{domain}"
#"TempErrorsAdmin"\t"send-failures@{domain}"
#"DefaultSMTPGateways"\t"192.168.1.2,192.168.1.15"
"RemoveSpoolErrors"\t"0"
"Pop3LogPasswd"\t"0"
#"NoSenderBounce"\t"1"
#"DisableEmitAuthUser"\t"1"
#"NotifyMsgLinesExtra"\t"8"
#"NotifySendLogToSender"\t"0"
#"NotifyTryPattern"\t"1"
"MaxMTAOps"\t"16"
"ReceivedHdrType"\t"0"
"FetchHdrTags"\t"+X-Deliver-To,+Received,To,Cc"
#"SmtpGwConfig"\t"NeedTLS=1"
#
# TLS. The server certificate (followed by its intermediates) is server.cert
# and its unencrypted private key is server.key, both PEM, in the MailRoot.
# The values shown are XMail's defaults.
#
#"EnableSMTP-TLS"\t"1"
#"EnablePOP3-TLS"\t"1"
#"EnableCTRL-TLS"\t"1"
#"SmtpNoTLSAuths"\t""
#"SSLWantVerify"\t"0"
#"SSLWantCert"\t"0"
#"SSLAllowSelfSigned"\t"0"
#"SSLUseCertsFile"\t"0"
#"SSLUseCertsDir"\t"0"
#"SSLMaxCertsDepth"\t"0"
#
#"SmtpMsgIPBanSpammers"\t"550 Denied due inclusion of your IP in our spam lists"
#"SmtpMsgIPBanSpamAddress"\t"550 Denied due inclusion of your email address in our spam lists"
#"SmtpMsgIPBanMaps"\t"550 Denied due inclusion of your IP in the following map"
#"CustomSMTPMessage"\t"Please see http://www.{domain}/smtp_errors.html for more information about this error"
#"MaxMessageSize"\t"20000"
#"EnableAuthSMTP-POP3"\t"0"
#"Pop3SyncErrorAccount"\t"psync-errors@{domain}"
#"AllowNullSender"\t"1"
#"AllowSmtpVRFY"\t"1"
#"AllowSmtpETRN"\t"1"
#"SMTP-MaxErrors"\t"4"
#"SmtpMinDiskSpace"\t"100000"
#"SmtpMinVirtMemSpace"\t"64000"
#"Pop3MinVirtMemSpace"\t"64000"
#"SMTP-RDNSCheck"\t"1"
#"CheckMailerDomain"\t"1"
#"SmartDNSHost"\t"dns.{domain}:tcp,192.168.1.1:udp"
#"SmtpConfig"\t"mail-auth"
#"SmtpConfig-192.168.0.1"\t"mail-auth"
"DefaultSmtpPerms"\t"MRVZ"
"""


def stock_servertab(domain: str = "example.jp", host: str = "mail.example.jp", crlf: bool = False) -> bytes:
    """A server.tab like a fresh XMail 1.27 install, for the training sandbox.

    The TLS variables are present but commented out with their defaults, as
    an administrator finds them before turning anything on.

    Args:
        domain: the mail domain (RootDomain, POP3Domain, postmaster's domain).
        host: the mail host name (SmtpServerDomain, HeloDomain).
        crlf: end lines with CR LF, as on Windows.

    Raises:
        ValueError: *domain* or *host* cannot be written in server.tab.
    """
    for value in (domain, host):
        if not value or _CONTROL.search(value) or not value.isascii() or " " in value:
            raise ValueError(f"{value!r} is not a host or domain name")
    text = _STOCK.format(domain=domain, host=host)
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("ascii")
