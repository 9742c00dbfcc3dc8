"""Step 3: getting the CSR signed: a paid CA (checklist), ACME, or the practice CA."""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as widgets

from ..flows import actions, practice
from ..flows.actions import CHECKLIST
from ..errors import XmailnbError
from ..i18n import Msg, local_date, page_text
from ..status import Status
from ..steps import Step
from . import _html
from ._base import Activity, StepView, box, button, classed, error_msgs, html, show

__all__ = ["SubmitStep", "CHECKLIST"]


class SubmitStep(StepView):
    """Paid CA checklist (ticks saved in ``sslconf/checklist.json``) or ACME.

    On a sandbox MailRoot a practice CA can sign the pending CSR
    (``xm-practice-sign``); it is offered first there.
    """

    STEP = Step.SUBMIT

    def _build(self) -> list[Any]:
        assert self.mailroot is not None
        # Widgets are made with their classes and labels (one message each, ui/_base.py).
        self.mode = classed(widgets.ToggleButtons, "xm-submit-mode", options=self._mode_options(), value="ca",
                            style={"button_width": "auto"})
        self.mode.observe(self.safe(lambda _c: self._show_mode()), "value")

        self.checks: dict[str, widgets.Checkbox] = {}
        rows = []
        box_layout = widgets.Layout(width="2em", flex="0 0 2em")
        for item in CHECKLIST:
            tick = classed(widgets.Checkbox, f"xm-checklist-{item}", value=False, indent=False, layout=box_layout)
            tick.observe(self.safe(lambda change, i=item: self._ticked(i, change)), "value")
            self.checks[item] = tick
            render = functools.partial(self._item_html, item)
            text = self.bind(html(render(self.lang)), "value", render)
            rows.append(box([tick, text], "xm-checklist-item", horizontal=True))
        self.checklist = box([self.label("ui.submit.checklist.intro", "xm-hint"), *rows], "xm-checklist",
                             "xm-section")
        self._loading = False

        self.practice_sign = self.bound(button, "description", "ui.submit.practice.sign", "xm-practice-sign",
                                        button_style="info")
        self.practice_sign.on_click(self.safe(lambda _b: self.sign_practice()))
        self.practice_box = classed(widgets.VBox, "xm-practice", "xm-practice-notice",
                                    children=[self.label("ui.submit.practice.intro"), self.practice_sign],
                                    layout=widgets.Layout(display=None if self.mailroot.is_sandbox else "none"))
        self.practice_issued = False

        self.acme_box = box([], "xm-submit-acme", hidden=True)
        self.acme_panel: Any = None
        self.ca_box = widgets.VBox([self.checklist], layout=widgets.Layout())
        return [self.practice_box, self.message, self.label("ui.submit.choose", "xm-section-title"), self.mode,
                self.ca_box, self.acme_box]

    def _mode_options(self) -> list[tuple[str, str]]:
        return [(self.t("ui.submit.mode.ca"), "ca"), (self.t("ui.submit.mode.acme"), "acme")]

    @staticmethod
    def _item_html(item: str, lang: str) -> str:
        return _html.render("label", label=page_text(f"ui.submit.item.{item}", lang),
                            hint=page_text(f"ui.submit.item.{item}.detail", lang), optional="")

    # -- ACME ---------------------------------------------------------------------------
    def _show_mode(self) -> None:
        acme = self.mode.value == "acme"
        show(self.ca_box, not acme)
        show(self.acme_box, acme)
        if acme and not self.acme_box.children:
            self.acme_box.children = [self._make_acme()]

    def _make_acme(self) -> Any:
        from .acme_panel import AcmePanel  # built only when chosen: the ACME client is large

        panel = AcmePanel(mailroot=self.mailroot, lang=self.lang)
        self.acme_panel = panel
        panel.observe(self.safe(lambda _c: self.mark_changed()), "changes")
        return panel

    # -- checklist ----------------------------------------------------------------------
    def ticked(self) -> list[str]:
        return [item for item, tick in self.checks.items() if tick.value]

    def _set_ticks(self, saved: list[str]) -> None:
        self._loading = True
        try:
            for name, tick in self.checks.items():
                tick.value = name in saved
        finally:
            self._loading = False

    def _ticked(self, item: str, change: dict[str, Any]) -> None:
        if self._loading:
            return
        assert self.mailroot is not None
        try:
            saved = actions.tick_checklist(self.mailroot, item, bool(change["new"]))
        except XmailnbError as exc:
            self.message.show_error(exc)
            self._loading = True
            try:
                self.checks[item].value = change["old"]
            finally:
                self._loading = False
            return
        # Ticks made meanwhile on another page show up here too.
        self._set_ticks(saved)
        self.message.clear()
        self.mark_changed()

    # -- practice CA ---------------------------------------------------------------------
    def sign_practice(self) -> Any:
        """Have the practice CA sign the pending CSR (sandbox only)."""
        assert self.mailroot is not None
        if not self.mailroot.is_sandbox:
            return None
        try:
            issued = practice.sign_pending_csr(self.mailroot)
        except (XmailnbError, OSError) as exc:
            self.message.show(Status.ERROR, *error_msgs(exc, "signing with the practice CA"))
            self.activity = Activity.FAILED
            return None
        leaf = issued.leaf
        self.practice_issued = True
        self.activity = Activity.IDLE
        self.message.show(Status.OK, Msg.of("ui.submit.practice.done", subject=leaf.subject.rfc4514_string(),
                                       not_after=local_date(leaf.not_valid_after_utc)),
                          Msg.of("ui.submit.practice.next"))
        self.mark_changed()
        return issued

    def _refresh(self) -> None:
        assert self.mailroot is not None
        self._set_ticks(actions.read_checklist(self.mailroot))
        if self.mailroot.is_sandbox:
            self.practice_issued = practice.issued(self.mailroot) is not None
        if self.acme_panel is not None:
            self.acme_panel.refresh()

    def _relabel(self) -> None:
        value = self.mode.value
        self.mode.options = self._mode_options()
        self.mode.value = value
        if self.acme_panel is not None:
            self.acme_panel.set_lang(self.lang)
