"""Messages in Japanese and English, from gettext catalogs.

Core code never builds user-facing sentences: it returns :class:`Msg` values
(a message id plus parameters) and the view (CLI, widgets) renders them in
the user's language.  The catalogs are ordinary gettext files, one domain
(``xmailnb``) per language::

    xmailnb/locale/<lang>/LC_MESSAGES/xmailnb.po   the source translators edit
    xmailnb/locale/<lang>/LC_MESSAGES/xmailnb.mo   compiled by Babel at build time

Message ids are stable keys (``diagnose.cert.valid``), not English
sentences: the English text lives in ``en/xmailnb.po`` like any other
translation, so fixing an English typo does not invalidate the Japanese one.
Each Japanese entry carries the English text as a translator comment.

Plural forms follow gettext: an entry with ``msgid_plural`` has one form per
plural category of its language (English two, Japanese one) and the form is
chosen by the message's ``count`` parameter::

    Msg.of("diagnose.cert.valid", count=1, date="2030-01-01").render("en")
    # 'The certificate is valid for 1 more day, until 2030-01-01.'

Nothing is written at run time.  Where the compiled ``.mo`` is missing (a
source checkout that was never built) the ``.po`` is compiled in memory with
Babel instead.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import locale
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "LANGUAGES",
    "DEFAULT_LANGUAGE",
    "Surface",
    "PAGE_SUFFIX",
    "format_datetime",
    "format_date",
    "local_date",
    "DOMAIN",
    "Msg",
    "Lines",
    "catalog",
    "has",
    "detect_language",
    "locale_dir",
    "render",
    "text",
    "page_text",
    "preload",
    "shown",
]

LANGUAGES: tuple[str, ...] = ("ja", "en")
DEFAULT_LANGUAGE = "en"
DOMAIN = "xmailnb"


class Surface(StrEnum):
    """Where a message is shown.

    The command line names its own options (``--chain FILE``); the page must
    name its own controls instead ("the intermediate field of step 4").  An
    entry whose text talks about the command line has a sibling
    ``<key>.page`` that says the same for the page; rendering for
    :attr:`PAGE` takes that sibling when there is one.  ``tests/test_i18n.py``
    checks that every entry mentioning a command or an option has it.
    """

    CLI = "cli"
    PAGE = "page"


#: Suffix of the page's variant of an entry.
PAGE_SUFFIX = ".page"


def locale_dir() -> Path:
    """The folder holding ``<lang>/LC_MESSAGES/xmailnb.po`` (and ``.mo``)."""
    return Path(__file__).parent / "locale"


def _po_path(lang: str) -> Path:
    return locale_dir() / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def _translations(lang: str) -> gettext.GNUTranslations:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    po = _po_path(lang)
    mo = po.with_suffix(".mo")
    try:
        if mo.stat().st_mtime_ns >= po.stat().st_mtime_ns:
            with open(mo, "rb") as fh:
                return gettext.GNUTranslations(fh)
    except FileNotFoundError:
        pass
    # Not built (or edited since): compile in memory, never into the package.
    return gettext.GNUTranslations(io.BytesIO(compile_po(po)))


def preload() -> None:
    """Load every language's catalog now (a preheated dashboard kernel does
    it before the page is asked for; the page's language switch names every
    language in its own words, so the first page reads them all)."""
    for lang in LANGUAGES:
        _translations(lang)


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of the catalog at *po* (Babel, as the build does)."""
    # Babel only where no compiled catalog is at hand (a source checkout):
    # an installed product never parses a .po.
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(po, "rb") as fh:
        parsed = read_po(fh, abort_invalid=True)
    out = io.BytesIO()
    write_mo(out, parsed, use_fuzzy=False)
    return out.getvalue()


@lru_cache(maxsize=None)
def catalog(lang: str) -> Mapping[str, str]:
    """Every message id of *lang* -> its text (plural entries: the "other" form).

    Read from the ``.po`` source with Babel: meant for tests and tools, not
    for rendering.

    Raises:
        ValueError: *lang* is not one of :data:`LANGUAGES`.
    """
    from babel.messages.pofile import read_po  # tests and tools only, see above

    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    with open(_po_path(lang), "rb") as fh:
        parsed = read_po(fh)
    out: dict[str, str] = {}
    for message in parsed:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, (tuple, list)) else message.id
        value = message.string[-1] if isinstance(message.string, (tuple, list)) else message.string
        out[str(key)] = str(value)
    return out


def _lookup(key: str, lang: str, count: int | None) -> str | None:
    t = _translations(lang)
    if count is not None:
        found = t.ngettext(key, key, count)
        if found != key:
            return found
    found = t.gettext(key)
    return found if found != key else None


def has(key: str, lang: str = DEFAULT_LANGUAGE) -> bool:
    """Whether the catalog of *lang* defines *key* (singular or plural)."""
    return _lookup(key, lang, None) is not None or _lookup(key, lang, 2) is not None


# Characters that must never reach a terminal or a page raw from a value:
# C0 and C1 controls (ESC sequences clear screens and forge colours, CR/LF
# forge lines), DEL, the bidirectional overrides and isolates (U+202E makes
# "gpj.exe" read "exe.jpg"), other invisible format characters, line and
# paragraph separators, and lone surrogates (undecodable bytes).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(value: str) -> str:
    """*value* safe to show: every control or invisible formatting character
    written as a visible escape (``\\x1b``, ``\\n``-style ``\\x0a``, ``\\u202e``).

    Applied to every parameter a message is rendered with (certificate
    subjects, names, file names, what a remote server sent), so a hostile
    value can neither drive the terminal nor fake a line; the templates
    themselves keep their own line breaks.

    >>> shown("evil\\x1b[2Jname\\nOK")
    'evil\\\\x1b[2Jname\\\\x0aOK'
    """
    if value.isprintable() and value.isascii():
        return value
    return _UNSAFE.sub(_escape_char, value)


def _count_of(params: Mapping[str, Any]) -> int | None:
    count = params.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def text(key: str, lang: str, /, **params: Any) -> str:
    """Render catalog entry *key* in *lang* with *params* (for the command line).

    A missing key falls back to English, then to the key itself, so that a
    catalog gap shows up as a visible key rather than a traceback.
    """
    return _text(key, lang, Surface.CLI, params)


def page_text(key: str, lang: str, /, **params: Any) -> str:
    """Like :func:`text`, for the page: ``<key>.page`` when the catalog has it."""
    return _text(key, lang, Surface.PAGE, params)


def _template(key: str, lang: str, surface: Surface, count: int | None) -> str:
    if surface is Surface.PAGE:
        for code in (lang, DEFAULT_LANGUAGE):
            found = _lookup(key + PAGE_SUFFIX, code, count)
            if found is not None:
                return found
    return _lookup(key, lang, count) or _lookup(key, DEFAULT_LANGUAGE, count) or key


def _text(key: str, lang: str, surface: Surface, params: Mapping[str, Any]) -> str:
    template = _template(key, lang, surface, _count_of(params))
    rendered = {name: _render_value(value, lang, surface) for name, value in params.items()}
    try:
        return template.format(**rendered)
    except (KeyError, IndexError, ValueError):
        return template


def local_date(when: dt.datetime) -> dt.date:
    """The calendar day of *when* in this machine's time zone."""
    return when.astimezone().date()


def format_datetime(when: dt.datetime) -> str:
    """*when* in this machine's local time, one format for every language:
    ``2026-11-29 22:56 JST`` (a naive time is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    local = when.astimezone()
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".rstrip()


def format_date(day: dt.date) -> str:
    """A calendar day, one format for every language: ``2026-11-29``."""
    return day.isoformat()


def _render_value(value: Any, lang: str, surface: Surface = Surface.CLI) -> Any:
    # Messages and lines of messages are the product's own text: rendered,
    # not escaped (their own parameters were escaped when they rendered).
    if isinstance(value, (Msg, Lines)):
        return value.render(lang, surface)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (Msg, str)) for v in value):
        sep = "、" if lang == "ja" else ", "
        return sep.join(v.render(lang, surface) if isinstance(v, Msg) else shown(v) for v in value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    # Times and days are shown in one format, in local time (JSON keeps ISO).
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return format_date(value)
    return shown(value if isinstance(value, str) else str(value))


@dataclass(frozen=True)
class Msg:
    """A message to show to the user: a catalog key and its parameters.

    Parameters may themselves be :class:`Msg` values (rendered in the same
    language) or lists of them.  An integer ``count`` parameter chooses the
    plural form where the entry has one.

    >>> Msg("common.yes").render("en")
    'yes'
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, key: str, /, **params: Any) -> "Msg":
        return cls(key, params)

    def render(self, lang: str, surface: Surface = Surface.CLI) -> str:
        """The message in *lang*; for :attr:`Surface.PAGE` the entry's page
        variant (``<key>.page``) when it has one, and so for every message
        among its parameters."""
        return _text(self.key, lang, surface, self.params)

    def page(self, lang: str) -> str:
        """Shorthand for ``render(lang, Surface.PAGE)``."""
        return _text(self.key, lang, Surface.PAGE, self.params)

    def to_json(self, lang: str) -> str:
        return self.render(lang)

    def to_record(self) -> dict[str, Any]:
        """The message as JSON data, to render later in any language
        (:meth:`from_record` reads it back).

        >>> Msg.from_record(Msg.of("common.yes").to_record()) == Msg.of("common.yes")
        True
        """
        return {"key": self.key, "params": {k: _record_value(v) for k, v in self.params.items()}}

    @classmethod
    def from_record(cls, doc: Any) -> "Msg | None":
        """The message :meth:`to_record` wrote, or ``None`` when *doc* is not one."""
        if not isinstance(doc, dict) or not isinstance(doc.get("key"), str):
            return None
        params = doc.get("params")
        values = {k: _value_of_record(v) for k, v in (params.items() if isinstance(params, dict) else ())}
        return cls(doc["key"], values)


def _record_value(value: Any) -> Any:
    # A list of names or messages stays a list (never its Python repr).
    if isinstance(value, (Msg, Lines)):
        return value.to_record()
    if isinstance(value, (list, tuple)):
        return [_record_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def _value_of_record(value: Any) -> Any:
    if isinstance(value, dict):
        return Lines.from_record(value) or Msg.from_record(value) or ""
    if isinstance(value, list):
        return [_value_of_record(v) for v in value]
    return value


@dataclass(frozen=True)
class Lines:
    """Lines the product composes from messages, as one parameter of another
    message (a list of ports inside the notice's body).

    A parameter given as a plain string is escaped by :func:`shown`, line
    breaks included, since it may come from outside (a certificate name, a
    server's reply).  Text the product composes itself keeps its line
    breaks: give it as :class:`Lines` (or as a :class:`Msg`), never as a
    string rendered beforehand.  Each message's own parameters are still
    escaped when it renders, so a hostile value cannot add a line here.

    Args:
        items: the lines, in order: messages, or nested :class:`Lines`
            (a message whose template has several lines gives several).
        prefix: layout put before every line, such as an indent or a
            bullet (``"   "``, ``"- "``); never words, which belong in the
            catalog.

    >>> print(Lines((Msg.of("common.yes"), Lines((Msg.of("common.no"),), prefix="- ")), prefix="  ").render("en"))
      yes
      - no
    """

    items: tuple["Msg | Lines", ...]
    prefix: str = ""

    def __post_init__(self) -> None:
        if any(ch.isalnum() for ch in self.prefix):
            raise ValueError(f"a prefix is layout, not words: {self.prefix!r}")
        if not all(isinstance(item, (Msg, Lines)) for item in self.items):
            raise TypeError("Lines holds messages (Msg) or Lines, not rendered strings")

    def render(self, lang: str, surface: Surface = Surface.CLI) -> str:
        """The lines in *lang*, joined with line breaks, each but an empty one with the prefix."""
        return "\n".join(self.prefix + line if line else line for item in self.items
                         for line in item.render(lang, surface).split("\n"))

    def page(self, lang: str) -> str:
        """Shorthand for ``render(lang, Surface.PAGE)``."""
        return self.render(lang, Surface.PAGE)

    def to_record(self) -> dict[str, Any]:
        """As JSON data (:meth:`from_record` reads it back)."""
        return {"lines": [item.to_record() for item in self.items], "prefix": self.prefix}

    @classmethod
    def from_record(cls, doc: Any) -> "Lines | None":
        """The lines :meth:`to_record` wrote, or ``None`` when *doc* is not that."""
        if not isinstance(doc, dict) or not isinstance(doc.get("lines"), list):
            return None
        items = [cls.from_record(d) or Msg.from_record(d) for d in doc["lines"]]
        prefix = doc.get("prefix")
        if not isinstance(prefix, str) or any(i is None for i in items):
            return None
        try:
            return cls(tuple(i for i in items if i is not None), prefix)
        except (TypeError, ValueError):
            return None


def render(msg: Msg | None, lang: str) -> str:
    """Render *msg*, or return an empty string for ``None``."""
    return "" if msg is None else msg.render(lang)


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """Pick the user's language from the locale: ``ja`` for a Japanese locale,
    else English.  ``XMAILNB_LANG`` overrides the locale when set to a known
    language."""
    env = os.environ if environ is None else environ
    forced = env.get("XMAILNB_LANG", "").strip().lower()
    if forced in LANGUAGES:
        return forced
    # POSIX precedence: LC_ALL, then LC_MESSAGES, then LANG.
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var, "")
        if value:
            return "ja" if value.lower().startswith("ja") else DEFAULT_LANGUAGE
    if environ is None:
        try:
            loc = locale.getlocale()[0] or ""
        except ValueError:
            loc = ""
        if loc.lower().startswith("ja"):
            return "ja"
    return DEFAULT_LANGUAGE
