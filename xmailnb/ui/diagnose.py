"""Step 1: what the MailRoot holds and what is wrong with it."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from .. import diagnose as diagnosemod
from ._base import Step, button, css_id, escape, set_status_class

__all__ = ["DiagnoseStep"]


class DiagnoseStep(Step):
    """The diagnosis as a list of findings (status, message, fix) and a summary.

    ``report`` holds the latest :class:`~xmailnb.diagnose.Report` (``None``
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
        self.findings = widgets.VBox()
        self.findings.add_class("xm-findings")
        self.rows: dict[str, widgets.HTML] = {}
        return [self.intro, self.refresh_button, self.summary, self.findings]

    def _refresh(self) -> None:
        assert self.mailroot is not None
        report = diagnosemod.diagnose(self.mailroot)
        with self.hold_trait_notifications():
            self.report = report
            rows: dict[str, widgets.HTML] = {}
            for finding in report.findings:
                row = widgets.HTML()
                row.add_class("xm-finding")
                row.add_class(f"xm-check-{css_id(finding.check)}")
                set_status_class(row, finding.status)
                rows[finding.check] = row
            self.rows = rows
            self.findings.children = list(rows.values())
            self.message.show("ok" if report.ready else "error", report.summary())
            self._relabel()
            self.state = "done"

    def _relabel(self) -> None:
        report = self.report
        if report is None:
            return
        for finding in report.findings:
            row = self.rows.get(finding.check)
            if row is None:
                continue
            icon = escape(self.t(f"ui.icon.{finding.status}"))
            status = escape(self.t(f"cli.status.{finding.status}"))
            body = escape(finding.message.render(self.lang)).replace("\n", "<br>")
            fix = ""
            if finding.fix is not None:
                fix = f'<div class="xm-fix">{escape(finding.fix.render(self.lang))}</div>'
            row.value = (f'<span class="xm-icon" title="{status}">{icon}</span> '
                         f'<span class="xm-text">{body}</span>{fix}')
