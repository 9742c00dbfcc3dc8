"""Printable twins of the names in JSON output.

``diagnose --json`` and ``probe --json`` keep certificate subjects, issuers
and names exactly as the certificates say, control characters included:
JSON is data, and a script that compares names needs them faithful.  A
script that *prints* them must not hand a terminal an ESC, a CR/LF or a
U+202E taken from a certificate, so each such field gets a ``*_display``
twin beside it with every control or invisible character escaped
(:func:`xmailnb.i18n.shown`, the escaping every message applies to them).

>>> with_display_forms({"subject": "CN=a\\x1b[2Jb", "names": ["x\\ny"]})["names_display"]
['x\\\\x0ay']
"""

from __future__ import annotations

from typing import Any, Mapping

from ..i18n import shown

__all__ = ["DISPLAYED", "with_display_forms"]

#: The fields that get a ``<name>_display`` twin.
DISPLAYED = ("subject", "issuer", "names")


def with_display_forms(doc: Mapping[str, Any]) -> dict[str, Any]:
    """*doc* with ``subject_display``, ``issuer_display`` (text) and
    ``names_display`` (a list) beside the raw fields it holds; nested
    dictionaries, and lists of them, get the same.  The raw values are
    left as they are."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, Mapping):
            value = with_display_forms(value)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            value = [with_display_forms(v) for v in value]
        out[key] = value
        if key not in DISPLAYED:
            continue
        if isinstance(value, str):
            out[f"{key}_display"] = shown(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[f"{key}_display"] = [shown(v) for v in value]
    return out
