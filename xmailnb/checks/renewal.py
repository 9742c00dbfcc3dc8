"""The ``acme.renewal`` finding: when the ACME certificate is renewed next,
and whether the last attempt failed.

It reads what :mod:`xmailnb.flows.acme` recorded (:mod:`xmailnb.mailroot.acme_state`)
and never imports the ACME machinery itself: a diagnosis stays offline and fast.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509

from .. import clock
from ..i18n import Msg
from ..mailroot.acme_state import DEFAULT_RENEW_DAYS, load_settings, load_status
from ..mailroot.layout import MailRoot
from ..pki import certfiles
from ..status import Status
from .findings import Finding
from .installed import installed_leaf

__all__ = ["renewal_due", "renewal_finding"]


def renewal_due(mr: MailRoot, days: int = DEFAULT_RENEW_DAYS, *,
                at: dt.datetime | None = None) -> tuple[bool, x509.Certificate | None, dt.datetime | None]:
    """Whether fewer than *days* days remain on the installed certificate.

    Returns ``(due, leaf, renew_after)``; no installed certificate counts as due.
    """
    at = at or clock.now()
    leaf = installed_leaf(mr)
    if leaf is None:
        return True, None, None
    renew_after = leaf.not_valid_after_utc - dt.timedelta(days=days)
    return at >= renew_after, leaf, renew_after


def renewal_finding(mr: MailRoot, at: dt.datetime | None = None) -> Finding | None:
    """The ``acme.renewal`` finding, or ``None`` when ACME was never used here.

    ``info`` with the next renewal date; ``warn`` when the last attempt
    failed (its reason and fix included) or the installed certificate is not
    the one ACME issued.
    """
    settings = load_settings(mr)
    if settings is None:
        return None
    at = at or clock.now()
    status = load_status(mr)
    days = status.renew_days or DEFAULT_RENEW_DAYS
    last = status.last_attempt
    details: dict[str, Any] = {"directory": settings.directory, "challenge": settings.challenge,
                               "renew_days": days, "last_result": last.result if last else None,
                               "last_time": last.time if last else None}
    if last is not None and last.result == "failed":
        reason = Msg.from_record(last.error) or Msg.of("acme.renewal.unknown")
        fix = Msg.from_record(last.fix)
        return Finding("acme.renewal", Status.WARN,
                       Msg.of("acme.renewal.failed", time=(last.time or "-")[:16].replace("T", " "),
                              reason=reason),
                       fix or Msg.of("acme.renewal.failed.fix"), details)
    due, leaf, renew_after = renewal_due(mr, days, at=at)
    if leaf is None or renew_after is None:
        return Finding("acme.renewal", Status.INFO, Msg.of("acme.renewal.no_cert"), None, details)
    details.update({"not_after": leaf.not_valid_after_utc.isoformat(),
                    "next_renewal": renew_after.date().isoformat()})
    if certfiles.cert_fingerprint(leaf) not in status.issued:
        return Finding("acme.renewal", Status.INFO, Msg.of("acme.renewal.not_acme"),
                       Msg.of("acme.renewal.not_acme.fix"), details)
    key = "acme.renewal.due" if due else "acme.renewal.next"
    return Finding("acme.renewal", Status.INFO, Msg.of(key, date=renew_after.date().isoformat(),
                                                       not_after=leaf.not_valid_after_utc.date().isoformat(),
                                                       days=days),
                   Msg.of("acme.renewal.fix"), details)
