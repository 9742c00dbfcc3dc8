"""Step 1: what the MailRoot holds and what is wrong with it."""

from __future__ import annotations

from typing import Any, Callable

import ipywidgets as widgets

from ..checks import diagnose as diagnosemod
from ..checks.findings import Finding, Report
from ..checks.progress import record_diagnosis
from ..checks.diagnose import check_title
from ..i18n import Msg, page_text
from ..status import Status
from ..steps import Step, Target
from . import _html
from ._base import StepView, button, css_id, html, status_icon

__all__ = ["DiagnoseStep"]

class DiagnoseStep(StepView):
    """The diagnosis, grouped: problems first, then warnings (each with a
    button to the step that fixes it), then every other check, collapsed
    while there is something to fix.

    ``report`` holds the latest :class:`~xmailnb.checks.diagnose.Report` (``None``
    before the first run or when it failed).  In the wizard the report comes
    from the wizard's progress (:meth:`show_report`), and the buttons open
    the step named by each finding's :class:`~xmailnb.steps.Target`
    (:attr:`navigate`).
    """

    STEP = Step.DIAGNOSE

    def _build(self) -> list[Any]:
        self.report: Report | None = None
        #: Set by the wizard: opens a step (and points at a control there).
        self.navigate: Callable[[Target], None] | None = None
        #: Set by the wizard: "Diagnose again" refreshes the whole workbook.
        self.refresh_hook: Callable[[], None] | None = None
        self.refresh_button = button("xm-diagnose-refresh")
        self.bind(self.refresh_button, "description", "ui.diagnose.refresh")
        self.refresh_button.on_click(self.safe(lambda _b: self._again()))
        # The summary is the step's outcome message, shown above the findings.
        self.summary = self.message
        self.summary.add_class("xm-summary")
        # Findings are rows of one HTML widget each group (xm-finding
        # xm-<status> xm-check-<id>): one model instead of three per finding.
        self.findings = html("", "xm-findings")
        self.goto = widgets.HBox([])
        self.goto.add_class("xm-goto")
        self._goto_buttons: dict[Step, widgets.Button] = {}
        self.others = html("", "xm-findings", "xm-findings-other")
        return [self.summary, self.findings, self.goto, self.others, self.refresh_button]

    def row_classes(self, check: str) -> tuple[str, ...]:
        """The CSS classes of the row of *check* (empty when it is not shown)."""
        if self.report is None:
            return ()
        for finding in self.report.findings:
            if finding.check == check:
                return ("xm-finding", f"xm-{finding.status}", f"xm-check-{css_id(finding.check)}")
        return ()

    def _again(self) -> None:
        if self.refresh_hook is not None:
            self.refresh_hook()
        else:
            self.refresh()

    def _refresh(self) -> None:
        assert self.mailroot is not None
        # In the wizard the report comes from the wizard's progress (one
        # diagnosis per change, not two).
        if self.standalone:
            self.show_report(diagnosemod.diagnose(self.mailroot))
            record_diagnosis(self.mailroot, where="notebook")

    def show_report(self, report: Report) -> None:
        """Show *report* (the wizard hands over the one its progress read)."""
        with self.hold_trait_notifications():
            self.report = report
            self.message.show(Status.OK if report.ready else Status.ERROR, report.summary())
            self._relabel()

    def targets(self) -> list[Target]:
        """Where the problems shown are fixed, one per step, in step order."""
        if self.report is None:
            return []
        found: dict[Step, Target] = {}
        for f in self.report.findings:
            if f.status >= Status.WARN and f.target is not None:
                found.setdefault(f.target.step, f.target)
        return [found[s] for s in sorted(found, key=lambda s: s.number)]

    def _row(self, f: Finding, *, name_only: bool = False) -> dict[str, Any]:
        return {"classes": " ".join(self.row_classes(f.check)), "icon": status_icon(f.status, self.lang),
                "status": self.t(f"cli.status.{f.status}"), "name": check_title(f.check).page(self.lang)
                if f.check in diagnosemod.CHECK_IDS or f.check == "acme.renewal" else "",
                "text": "" if name_only else f.message.page(self.lang),
                "fix": "" if name_only or f.fix is None else f.fix.page(self.lang)}

    def _relabel(self) -> None:
        report = self.report
        if report is None:
            return
        t = self.t
        errors = [f for f in report.findings if f.status is Status.ERROR]
        warnings = [f for f in report.findings if f.status is Status.WARN]
        skipped: dict[str, list[Finding]] = {}
        other = []
        for f in report.findings:
            reason = f.details.get("skipped") if f.status is Status.INFO else None
            if isinstance(reason, str):
                skipped.setdefault(reason, []).append(f)
            elif f.status <= Status.INFO:
                other.append(f)
        groups = []
        if errors:
            groups.append({"kind": "problems", "collapsed": None, "rows": [self._row(f) for f in errors],
                           "title": t("ui.diagnose.group.problems", count=len(errors))})
        if warnings:
            groups.append({"kind": "warnings", "collapsed": None, "rows": [self._row(f) for f in warnings],
                           "title": t("ui.diagnose.group.warnings", count=len(warnings))})
        self.findings.value = _html.render("findings", groups=groups)
        count = len(other) + sum(len(v) for v in skipped.values())
        # Every other check, collapsed while there is something to fix; the
        # skipped ones say together what they wait for (not one line each
        # saying the same).
        rest = {"kind": "other", "collapsed": bool(errors or warnings), "rows": [self._row(f) for f in other],
                "title": t("ui.diagnose.group.other" if errors or warnings else "ui.diagnose.group.all",
                           count=count),
                "sections": [{"kind": "skipped", "note": t(f"ui.diagnose.skipped.{reason}", count=len(fs)),
                              "rows": [self._row(f, name_only=True) for f in fs]}
                             for reason, fs in skipped.items()]}
        self.others.value = _html.render("findings", groups=[rest]) if count else ""
        self._draw_goto()

    def _draw_goto(self) -> None:
        targets = self.targets() if self.navigate is not None else []
        buttons = []
        for target in targets:
            b = self._goto_buttons.get(target.step)
            if b is None:
                b = button("xm-goto-button", f"xm-goto-{target.step}")
                self._goto_buttons[target.step] = b
                b.on_click(self.safe(lambda _b, s=target.step: self._go(s)))
            b.description = page_text("ui.diagnose.goto", self.lang, n=target.step.number,
                                      name=Msg.of(f"ui.nav.{target.step}"))
            buttons.append(b)
        self.goto.children = buttons

    def _go(self, step: Step) -> None:
        target = next((t for t in self.targets() if t.step is step), Target(step))
        if self.navigate is not None:
            self.navigate(target)
