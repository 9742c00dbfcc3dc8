"""The product's one clock.

Every "now" in xmailnb (validity checks, archive ids, audit times, renewal
dates) comes from :func:`now`, so a test can freeze time for the whole
product in one place and mint its certificates relative to the same instant.

>>> import datetime as dt
>>> with frozen(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)):
...     now().year
2030
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["now", "frozen", "freeze", "unfreeze", "timestamp"]

_frozen_at: dt.datetime | None = None


def now() -> dt.datetime:
    """The current time, timezone-aware (UTC), or the frozen instant."""
    if _frozen_at is not None:
        return _frozen_at
    return dt.datetime.now(dt.timezone.utc)


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)


def freeze(at: dt.datetime) -> None:
    """Make :func:`now` return *at* until :func:`unfreeze` (tests only)."""
    global _frozen_at
    _frozen_at = _aware(at)


def unfreeze() -> None:
    global _frozen_at
    _frozen_at = None


@contextmanager
def frozen(at: dt.datetime) -> Iterator[dt.datetime]:
    """Freeze :func:`now` at *at* for the duration of the block."""
    global _frozen_at
    previous = _frozen_at
    _frozen_at = _aware(at)
    try:
        yield _frozen_at
    finally:
        _frozen_at = previous


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time read from a record (naive
    = UTC), or ``None`` when *value* is not one.

    >>> timestamp("1970-01-01T00:01:00")
    60.0
    >>> timestamp("yesterday") is None
    True
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()
