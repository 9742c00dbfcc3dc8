"""What no rendered text may hold: an escape where a character was meant,
a raw catalog key, or a Python repr.  Every approval test passes its text
through :func:`unreadable` before comparing it."""

from __future__ import annotations

import re
from functools import lru_cache

from xmailnb.i18n import LANGUAGES, catalog

__all__ = ["unreadable"]

_PATTERNS = {
    "an escaped control character (\\x..)": re.compile(r"\\x[0-9a-fA-F]{2}"),
    "an escaped character (\\u....)": re.compile(r"\\[uU][0-9a-fA-F]{4}"),
    "an OpenSSL byte escape (\\E2...)": re.compile(r"\\[89A-F][0-9A-F]\\[89AB][0-9A-F]"),
    "a Python object repr": re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>"),
    "an enum repr (Status.OK)": re.compile(r"\b[A-Z][a-z]\w*\.[A-Z][A-Z_]+\b"),
    "a list or dict repr": re.compile(r"\[['\"]|['\"]\]|\{['\"]\w+['\"]:"),
    "a None or bound method": re.compile(r"(?:[:=(]\s*|\bis )None\b|<bound method|<function "),
    "an unfilled placeholder ({name})": re.compile(r"(?<!\{)\{[a-z_]+\}(?!\})"),
}
# A catalog key as a word: dotted lower-case ids (notice.port.tls).
_KEY = re.compile(r"(?<![\w./-])[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+(?![\w/-])")
# ... except where --json names a message's key for scripts ("key": "...").
_JSON_KEY = re.compile(r'"key": "[^"]*"')


@lru_cache(maxsize=None)
def _keys() -> frozenset[str]:
    return frozenset(k for lang in LANGUAGES for k in catalog(lang))


def unreadable(text: str) -> list[str]:
    """What a person should not see in *text*: ``["<what>: <excerpt>", ...]``."""
    problems = []
    for what, pattern in _PATTERNS.items():
        for m in pattern.finditer(text):
            problems.append(f"{what}: {text[max(0, m.start() - 30):m.end() + 30]!r}")
    keys = _keys()
    for m in _KEY.finditer(_JSON_KEY.sub('"key": ""', text)):
        if m.group() in keys:
            problems.append(f"a raw catalog key: {m.group()!r}")
    return problems
