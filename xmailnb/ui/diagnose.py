"""Step 1: what the MailRoot holds and what is wrong with it."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..checks import diagnose as diagnosemod
from ._base import Step, button, css_id, escape

__all__ = ["DiagnoseStep"]


class DiagnoseStep(Step):
    """The diagnosis as a list of findings (status, message, fix) and a summary.

    ``report`` holds the latest :class:`~xmailnb.checks.diagnose.Report` (``None``
    before the first run or when it failed).
    """

    STEP = "diagnose"

    def _build(self) -> list[Any]:
        self.report: diagnosemod.Report | None = None
        self.intro = self.label("ui.diagnose.intro")
        self.refresh_button = button(icon="refresh")
        self.refresh_button.add_class("xm-diagnose-refresh")
        self.bind(self.refresh_button, "description", "ui.diagnose.refresh")
        self.refresh_button.on_click(self.safe(lambda _b: self.refresh()))
        # The summary is the step's outcome message, shown above the findings.
        self.summary = self.message
        self.summary.add_class("xm-summary")
        # All findings in one HTML widget, each a row with its own classes
        # (xm-finding xm-<status> xm-check-<id>): one widget model instead of
        # three per finding keeps the page quick to appear.
        self.findings = widgets.HTML()
        self.findings.add_class("xm-findings")
        return [self.intro, self.refresh_button, self.summary, self.findings]

    def row_classes(self, check: str) -> tuple[str, ...]:
        """The CSS classes of the row of *check* (empty when it is not shown)."""
        if self.report is None:
            return ()
        for finding in self.report.findings:
            if finding.check == check:
                return ("xm-finding", f"xm-{finding.status}", f"xm-check-{css_id(finding.check)}")
        return ()

    def _refresh(self) -> None:
        assert self.mailroot is not None
        report = diagnosemod.diagnose(self.mailroot)
        with self.hold_trait_notifications():
            self.report = report
            self.message.show("ok" if report.ready else "error", report.summary())
            self._relabel()
            self.state = "done"

    def _relabel(self) -> None:
        report = self.report
        if report is None:
            return
        rows = []
        for finding in report.findings:
            icon = escape(self.t(f"ui.icon.{finding.status}"))
            status = escape(self.t(f"cli.status.{finding.status}"))
            body = escape(finding.message.render(self.lang)).replace("\n", "<br>")
            fix = ""
            if finding.fix is not None:
                fix = f'<div class="xm-fix">{escape(finding.fix.render(self.lang))}</div>'
            rows.append(f'<div class="{" ".join(self.row_classes(finding.check))}">'
                        f'<span class="xm-icon" title="{status}">{icon}</span> '
                        f'<span class="xm-text">{body}</span>{fix}</div>')
        self.findings.value = "".join(rows)
