"""The one scrubber of the approval tests: what changes from run to run
(times, fingerprints, serial numbers, temporary paths, ports, key ids) is
replaced by a stable placeholder, so that an approved file changes only
when the text a person reads changes.

Times are kept *relative* to the frozen clock of the test (the approval
conftest freezes :mod:`xmailnb.clock` at midnight UTC of the day the suite
runs): "valid until 2027-03-05" becomes ``<today+89d>``, so a reviewer
still sees that the practice certificate is valid for about 90 days, and
the file does not change from one day (or one ``faketime -f +365d`` run) to
the next.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

__all__ = ["Scrubber"]

_ISO = re.compile(r"\b(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
                  r"(?: ?(Z|UTC|GMT|[+-]\d{2}:?\d{2})\b)?")
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
# The store's archive ids: 20261206T223112401721Z (possibly with a suffix).
_ARCHIVE_ID = re.compile(r"\b\d{8}T\d{6,12}Z(?:-\d+)?\b")
# Colon-separated hex (fingerprints, serials, key ids as OpenSSL prints them).
_COLON_HEX = re.compile(r"\b[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){3,}\b")
# A run of hex digits of 8 or more holding a digit: digests, serials, the
# practice CA's tag ("Training only 3930c3ae"), key ids.
_HEX = re.compile(r"\b(?=[0-9A-Fa-f]*\d)[0-9A-Fa-f]{8,}\b")
# PEM bodies (a CSR printed on stdout): the armour stays, the base64 goes.
_PEM = re.compile(r"(-----BEGIN ([A-Z0-9 ]+)-----\n)[A-Za-z0-9+/=\n]+?(-----END \2-----)")
# ... and inside a JSON string, where the line breaks are written \n.
_PEM_JSON = re.compile(r"(-----BEGIN ([A-Z0-9 ]+)-----\\n)(?:[A-Za-z0-9+/=]|\\n)+?(-----END \2-----)")


def _span(delta: dt.timedelta) -> str:
    sign = "-" if delta < dt.timedelta(0) else "+"
    rest = abs(delta)
    days, seconds = rest.days, rest.seconds
    parts = [f"{days}d"] if days else []
    if seconds // 3600:
        parts.append(f"{seconds // 3600}h")
    if seconds % 3600 // 60:
        parts.append(f"{seconds % 3600 // 60}m")
    if seconds % 60:
        parts.append(f"{seconds % 60}s")
    return sign + "".join(parts) if parts else ""


@dataclass
class Scrubber:
    """Replaces the values of one test run by placeholders.

    Attributes:
        now: the frozen clock of the test (aware, UTC).
        known: exact strings of this run (a temporary folder, a port) and
            their placeholders; longer strings are replaced first.
    """

    now: dt.datetime
    known: dict[str, str] = field(default_factory=dict)

    def register(self, value: object, placeholder: str) -> None:
        """Replace *value* (a path, a port) by *placeholder* wherever it appears."""
        text = str(value)
        if text:
            self.known[text] = placeholder

    def __call__(self, text: str) -> str:
        for value in sorted(self.known, key=len, reverse=True):
            placeholder = self.known[value]
            if value.isdigit():  # a port: never a digit inside another number
                text = re.sub(rf"(?<![\d.]){value}(?![\d])", placeholder, text)
            else:
                text = text.replace(value, placeholder)
        text = _PEM.sub(r"\1<base64>\n\3", text)
        text = _PEM_JSON.sub(r"\1<base64>\\n\3", text)
        text = _ARCHIVE_ID.sub("<archive-id>", text)
        text = _ISO.sub(self._instant, text)
        text = _DATE.sub(self._day, text)
        text = _COLON_HEX.sub("<hex>", text)
        return _HEX.sub("<hex>", text)

    def _instant(self, m: re.Match[str]) -> str:
        day, hour, minute, second, zone = m.groups()
        when = dt.datetime.fromisoformat(f"{day}T{hour}:{minute}:{second or '00'}")
        offset = dt.timedelta(0)
        if zone and zone[0] in "+-":
            digits = zone[1:].replace(":", "")
            offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            offset = offset if zone[0] == "+" else -offset
        when = when.replace(tzinfo=dt.timezone(offset))
        return f"<now{_span(when - self.now)}>"

    def _day(self, m: re.Match[str]) -> str:
        try:
            day = dt.date(*(int(g) for g in m.groups()))
        except ValueError:
            return m.group()
        delta = (day - self.now.date()).days
        return "<today>" if delta == 0 else f"<today{delta:+d}d>"
