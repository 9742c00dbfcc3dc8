"""Message catalogs and rendering in Japanese and English.

Core code never builds user-facing sentences: it returns :class:`Msg` values
(a catalog key plus parameters) and the view (CLI, widgets) renders them in the
user's language.  Catalogs live in ``xmailnb/catalogs/<lang>/<domain>.toml``,
one flat table of ``"key" = "text"`` per domain, so that modules can grow their
own messages without touching each other's files.  Both languages must define
exactly the same keys with the same ``{placeholders}`` (a test enforces it).
"""

from __future__ import annotations

import marshal
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "LANGUAGES",
    "DEFAULT_LANGUAGE",
    "Msg",
    "catalog",
    "detect_language",
    "render",
    "text",
    "shown",
]

LANGUAGES: tuple[str, ...] = ("ja", "en")
DEFAULT_LANGUAGE = "en"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    # TOML turns unquoted dotted keys into nested tables; accept both spellings.
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


def _folder(lang: str) -> Path:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    # A plain path, not importlib.resources: the catalogs ship as package
    # data next to this file, and the command line's start-up time counts.
    return Path(__file__).parent / "catalogs" / lang


@lru_cache(maxsize=None)
def _domain(lang: str, domain: str) -> Mapping[str, str]:
    """One domain file of *lang* (empty when there is none).

    The parsed table is kept next to the file, in ``__pycache__`` as Python
    keeps bytecode, and reused while the file is unchanged: every command
    reads a few catalogs when it starts, and TOML parsing (with the parser's
    import) would be a visible part of that.  Where the folder is read-only
    the file is simply parsed each time.
    """
    source = _folder(lang) / f"{domain}.toml"
    try:
        st = source.stat()
    except FileNotFoundError:
        return {}
    cache = source.parent / "__pycache__" / f"{domain}.{st.st_mtime_ns}.{st.st_size}.marshal"
    try:
        table = marshal.loads(cache.read_bytes())
        if isinstance(table, dict):
            return table
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import tomllib

    table = _flatten(tomllib.loads(source.read_text(encoding="utf-8")))
    _write_cache(cache, table)
    return table


def _write_cache(cache: Path, table: dict[str, str]) -> None:
    domain = cache.name.split(".", 1)[0]
    try:
        cache.parent.mkdir(exist_ok=True)
        for old in cache.parent.glob(f"{domain}.*.marshal"):
            old.unlink(missing_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_bytes(marshal.dumps(table))
        os.replace(tmp, cache)  # atomic: a concurrent reader sees all or nothing
    except OSError:
        pass  # a read-only installation: parse again next time


@lru_cache(maxsize=None)
def catalog(lang: str) -> Mapping[str, str]:
    """Return the merged catalog of *lang* (every domain file), key -> text.

    Raises:
        ValueError: *lang* is not one of :data:`LANGUAGES`, or two domain
            files define the same key.
    """
    merged: dict[str, str] = {}
    for entry in sorted(_folder(lang).glob("*.toml")):
        table = _domain(lang, entry.stem)
        clash = merged.keys() & table.keys()
        if clash:
            raise ValueError(f"{lang}/{entry.name}: duplicate keys {sorted(clash)}")
        merged.update(table)
    return merged


def _lookup(key: str, lang: str) -> str | None:
    # Keys start with their domain ("diagnose.cert.valid" lives in
    # diagnose.toml), so a command reads only the files it speaks from.
    found = _domain(lang, key.split(".", 1)[0]).get(key)
    return found if found is not None else catalog(lang).get(key)


def text(key: str, lang: str, /, **params: Any) -> str:
    """Render catalog entry *key* in *lang* with *params*.

    A missing key falls back to English, then to the key itself, so that a
    catalog gap shows up as a visible key rather than a traceback.
    """
    template = _lookup(key, lang)
    if template is None:
        template = _lookup(key, DEFAULT_LANGUAGE) or key
    rendered = {name: _render_value(value, lang) for name, value in params.items()}
    try:
        return template.format(**rendered)
    except (KeyError, IndexError, ValueError):
        return template


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


def _render_value(value: Any, lang: str) -> Any:
    if isinstance(value, Msg):
        return value.render(lang)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Msg) for v in value):
        sep = "、" if lang == "ja" else ", "
        return sep.join(v.render(lang) for v in value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return shown(value if isinstance(value, str) else str(value))


@dataclass(frozen=True)
class Msg:
    """A message to show to the user: a catalog key and its parameters.

    Parameters may themselves be :class:`Msg` values (rendered in the same
    language) or lists of them.

    >>> Msg("common.yes").render("en")
    'yes'
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, key: str, /, **params: Any) -> "Msg":
        return cls(key, params)

    def render(self, lang: str) -> str:
        return text(self.key, lang, **dict(self.params))

    def to_json(self, lang: str) -> str:
        return self.render(lang)


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
            import locale

            loc = locale.getlocale()[0] or ""
        except ValueError:
            loc = ""
        if loc.lower().startswith("ja"):
            return "ja"
    return DEFAULT_LANGUAGE
