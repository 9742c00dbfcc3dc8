"""How a check turned out: ``ok``, ``info``, ``warn`` or ``error``.

One vocabulary for the diagnosis, the live probe and server.tab's issues.
The values are the strings JSON output and CSS classes (``xm-ok``, ...)
have always used; code compares members, never strings.

>>> max([Status.INFO, Status.ERROR, Status.WARN]).value
'error'
>>> Status.worst([])
<Status.OK: 'ok'>
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["Status"]


class Status(enum.StrEnum):
    """A check's outcome, ordered from good to bad (``<`` compares severity)."""

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def worst(cls, statuses: Iterable[Status]) -> Status:
        """The worst of *statuses* (``OK`` when there are none)."""
        return max(statuses, default=cls.OK)


_RANK = {status: rank for rank, status in enumerate(Status)}
