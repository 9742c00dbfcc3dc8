"""What a check found: :class:`Finding` and the :class:`Report` of a diagnosis.

The types every check returns, kept apart from the checks themselves so
that any check (the files, the ACME renewal, the live probe) can make a
finding without importing the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..i18n import Msg
from ..mailroot.layout import MailRoot
from ..status import Status
from ..steps import Target

__all__ = ["Finding", "Report", "Status", "finding"]


@dataclass
class Finding:
    """One check's outcome.

    Attributes:
        details: machine-readable facts (no key material).
        target: where the workbook fixes it (set for errors and warnings
            that have a place in the workbook; ``None`` when the fix lies
            outside it, e.g. file permissions).
        outside: the fix lies outside the workbook (file permissions, the
            account it runs as): there is no step to send the user to.
    """

    check: str
    status: Status
    message: Msg
    fix: Msg | None = None
    details: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None
    outside: bool = False

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # a view or a test may pass "warn"

    def to_json(self, lang: str) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "status": str(self.status),
                               "message": self.message.render(lang),
                               "fix": self.fix.render(lang) if self.fix else "",
                               "target": self.target.to_json() if self.target else None}
        out.update(self.details)
        return out


def finding(check: str, status: Status, msg_key: str, fix: str | None = None,
            details: Mapping[str, Any] | None = None, *, target: Target | None = None, outside: bool = False,
            **params: Any) -> Finding:
    """A finding whose message and fix are catalog entries with the same *params*."""
    return Finding(check, status, Msg(msg_key, params), Msg(fix, params) if fix else None, dict(details or {}),
                   target=target, outside=outside)


@dataclass
class Report:
    """The findings of one diagnosis of *mailroot*, in check order."""

    mailroot: MailRoot
    findings: list[Finding]
    hostname: str | None = None

    @property
    def worst(self) -> Status:
        return Status.worst(f.status for f in self.findings)

    def count(self, status: Status) -> int:
        wanted = Status(status)
        return sum(1 for f in self.findings if f.status is wanted)

    def by_check(self, check: str) -> Finding:
        """The finding of *check*.

        Raises:
            KeyError: no such check in this report.
        """
        for f in self.findings:
            if f.check == check:
                return f
        raise KeyError(check)

    def status_of(self, check: str) -> Status | None:
        """The status of *check*, or ``None`` when the report has no such finding."""
        for f in self.findings:
            if f.check == check:
                return f.status
        return None

    @property
    def ready(self) -> bool:
        return self.count(Status.ERROR) == 0

    def summary(self) -> Msg:
        errors, warnings = self.count(Status.ERROR), self.count(Status.WARN)
        if errors and not warnings:
            return Msg.of("diagnose.summary.errors_only", count=errors)
        if errors:
            return Msg.of("diagnose.summary.errors", count=errors,
                          warnings=Msg.of("diagnose.summary.warning_count", count=warnings))
        if warnings:
            return Msg.of("diagnose.summary.warnings", count=warnings)
        return Msg.of("diagnose.summary.ready")

    def to_json(self, lang: str) -> dict[str, Any]:
        return {"mailroot": str(self.mailroot.path), "sandbox": self.mailroot.is_sandbox,
                "hostname": self.hostname, "ready": self.ready,
                "summary": self.summary().render(lang),
                "findings": [f.to_json(lang) for f in self.findings]}
