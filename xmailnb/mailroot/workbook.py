"""The workbook's own settings for a MailRoot, kept apart from server.tab.

XMail's listeners are command-line options of the service (``-SI``,
``-PI``, ...), invisible in server.tab, so only the administrator can say
that the server also listens on the submission port or on other ports.
What they name for the live check is kept in ``sslconf/xmailnb.json``
(written through the store like every other file), so the next check, the
dashboard and the user notice know which listeners really exist.

>>> save_probe_settings(mr, host="mail.example.jp", ports={"smtps": 465, "submission": 587})  # doctest: +SKIP
>>> probe_settings(mr).ports                                                               # doctest: +SKIP
{'smtps': 465, 'submission': 587}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Mapping

from ..boundedjson import JsonLimitError
from ..boundedjson import loads as bounded_loads
from ..files import FileTooLarge, read_regular
from .endpoints import ENDPOINTS
from .layout import REL_WORKBOOK, MailRoot
from .store import Action, ArchiveEntry, Store

__all__ = ["REL_WORKBOOK", "ACTION", "ProbeSettings", "load", "probe_settings", "save_probe_settings"]

log = logging.getLogger(__name__)

#: The store action of a change to this file (a bookkeeping action: a plain
#: rollback steps over it).
ACTION = Action.WORKBOOK
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProbeSettings:
    """What the administrator named for the live check.

    Attributes:
        host: where the server runs (``None``: not given).
        ports: endpoint name -> port of the listeners XMail has (``None``:
            not given, so XMail's stock listeners are assumed).
    """

    host: str | None = None
    ports: dict[str, int] | None = None


def load(mr: MailRoot) -> dict[str, Any]:
    """The whole settings document (empty when missing or unreadable)."""
    try:
        return _parse(read_regular(mr.file(REL_WORKBOOK), limit=_MAX_BYTES))
    except FileNotFoundError:
        return {}
    except FileTooLarge:
        raise JsonLimitError("json.too_large", REL_WORKBOOK, _MAX_BYTES) from None
    except OSError as exc:
        log.info("ignoring %s: %s", REL_WORKBOOK, exc)
        return {}


def _parse(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        doc = bounded_loads(data, name=REL_WORKBOOK, max_bytes=_MAX_BYTES)
    except JsonLimitError:
        raise  # refused with a message naming the file, not silently replaced
    except (ValueError, UnicodeDecodeError) as exc:
        # A damaged file is not worth a refusal: the defaults apply.
        log.info("ignoring %s: %s", REL_WORKBOOK, exc)
        return {}
    return doc if isinstance(doc, dict) else {}


def _valid_ports(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict) or not value:
        return None
    out: dict[str, int] = {}
    for name, port in value.items():
        if name not in ENDPOINTS or isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            return None
        out[name] = port
    return out


def probe_settings(mr: MailRoot) -> ProbeSettings:
    """The host and listeners remembered for *mr* (checked; bad values ignored)."""
    section = load(mr).get("probe")
    if not isinstance(section, dict):
        return ProbeSettings()
    host = section.get("host")
    host = host.strip() if isinstance(host, str) and host.strip() and len(host) <= 255 else None
    return ProbeSettings(host=host, ports=_valid_ports(section.get("ports")))


def save_probe_settings(mr: MailRoot, *, host: str | None,
                        ports: Mapping[str, int] | None) -> ArchiveEntry | None:
    """Remember the host and listeners of the live check for *mr*.

    ``None`` forgets a value (the default applies again).  Nothing is
    written when nothing changes.

    Raises:
        BusyError: another writer holds the MailRoot.
        StoreError: the file could not be written (nothing changed).
    """
    section: dict[str, Any] = {}
    if host:
        section["host"] = host
    if ports:
        section["ports"] = dict(ports)
    # Read under the lock: another section written meanwhile is kept.
    with Store(mr).transaction(ACTION, {"probe": section}) as tx:
        current = tx.read(REL_WORKBOOK)
        doc = _parse(current)
        if section:
            doc["probe"] = section
        else:
            doc.pop("probe", None)
        if current is not None or doc:
            tx.write(REL_WORKBOOK, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return tx.entry
