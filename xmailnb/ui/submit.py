"""Step 3: getting the CSR signed: a paid CA (checklist) or ACME."""

from __future__ import annotations

import functools
import importlib
from typing import Any

import ipywidgets as widgets

from ..flows import actions
from ..flows.actions import CHECKLIST
from ..i18n import Msg
from ._base import Step, button, escape

__all__ = ["SubmitStep", "CHECKLIST"]


def _practice() -> Any:
    """The practice CA module, or ``None`` when this build lacks it."""
    try:
        return importlib.import_module("xmailnb.flows.practice")
    except ImportError:
        return None


class SubmitStep(Step):
    """Paid CA checklist (ticks saved in ``sslconf/checklist.json``) or ACME.

    On a sandbox MailRoot a practice CA can sign the pending CSR
    (``xm-practice-sign``).
    """

    STEP = "submit"

    def _build(self) -> list[Any]:
        self.mode = widgets.ToggleButtons(options=self._mode_options(), value="ca",
                                          style={"button_width": "auto"})
        self.mode.add_class("xm-submit-mode")
        self.mode.observe(self.safe(lambda _c: self._show_mode()), "value")

        self.checks: dict[str, widgets.Checkbox] = {}
        rows = []
        for item in CHECKLIST:
            box = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="2em"))
            box.add_class(f"xm-checklist-{item}")
            box.observe(self.safe(lambda change, i=item: self._ticked(i, change)), "value")
            self.checks[item] = box
            text = widgets.HTML(layout=widgets.Layout(width="90%"))
            self.bind(text, "value", functools.partial(self._item_html, item))
            row = widgets.HBox([box, text])
            row.add_class("xm-checklist-item")
            rows.append(row)
        self.checklist = widgets.VBox([self.label("ui.submit.checklist.intro"), *rows])
        self.checklist.add_class("xm-checklist")
        self._loading = False

        self.practice_sign = button(button_style="info", icon="certificate")
        self.practice_sign.add_class("xm-practice-sign")
        self.bind(self.practice_sign, "description", "ui.submit.practice.sign")
        self.practice_sign.on_click(self.safe(lambda _b: self.sign_practice()))
        self.practice_box = widgets.VBox([self.label("ui.submit.practice.intro", css="xm-practice-notice"),
                                          self.practice_sign])
        self.practice_box.add_class("xm-practice")
        self.practice_issued = False

        self.acme_box = widgets.VBox()
        self.acme_box.add_class("xm-submit-acme")
        self.acme_panel: Any = None
        self.ca_box = widgets.VBox([self.checklist, self.practice_box])
        self._show_mode()
        return [self.label("ui.submit.intro"), self.mode, self.ca_box, self.acme_box]

    def _mode_options(self) -> list[tuple[str, str]]:
        return [(self.t("ui.submit.mode.ca"), "ca"), (self.t("ui.submit.mode.acme"), "acme")]

    def _item_html(self, item: str, lang: str) -> str:
        from ..i18n import text

        title = escape(text(f"ui.submit.item.{item}", lang))
        detail = escape(text(f"ui.submit.item.{item}.detail", lang))
        return f'<b>{title}</b><div class="xm-fix">{detail}</div>'

    # -- ACME ---------------------------------------------------------------------------
    def _show_mode(self) -> None:
        acme = self.mode.value == "acme"
        self.ca_box.layout.display = "none" if acme else None
        self.acme_box.layout.display = None if acme else "none"
        if acme and not self.acme_box.children:
            self.acme_box.children = [self._make_acme()]

    def _make_acme(self) -> Any:
        try:
            module = importlib.import_module("xmailnb.ui.acme_panel")
        except ImportError:
            return self.label("ui.submit.acme.unavailable", css="xm-acme-unavailable")
        try:
            panel = module.AcmePanel(mailroot=self.mailroot, lang=self.lang)
        except Exception as exc:
            self.message.show_error(exc)
            return widgets.HTML()
        self.acme_panel = panel
        if hasattr(panel, "has_trait") and panel.has_trait("state"):
            panel.observe(self.safe(lambda _c: self._update_state()), "state")
        if hasattr(panel, "has_trait") and panel.has_trait("changes"):
            panel.observe(self.safe(lambda _c: self.mark_changed()), "changes")
        return panel

    # -- checklist ----------------------------------------------------------------------
    def ticked(self) -> list[str]:
        return [item for item, box in self.checks.items() if box.value]

    def _read_checklist(self) -> list[str]:
        assert self.mailroot is not None
        return actions.read_checklist(self.mailroot)

    def _ticked(self, item: str, change: dict[str, Any]) -> None:
        if self._loading:
            return
        assert self.mailroot is not None
        try:
            saved = actions.tick_checklist(self.mailroot, item, bool(change["new"]))
        except Exception as exc:
            self.message.show_error(exc)
            self._loading = True
            try:
                self.checks[item].value = change["old"]
            finally:
                self._loading = False
            return
        # Ticks made meanwhile on another page show up here too.
        self._loading = True
        try:
            for name, box in self.checks.items():
                box.value = name in saved
        finally:
            self._loading = False
        self.message.clear()
        self._update_state()

    # -- practice CA ---------------------------------------------------------------------
    def sign_practice(self) -> Any:
        """Have the practice CA sign the pending CSR (sandbox only)."""
        assert self.mailroot is not None
        practice = _practice()
        if practice is None or not self.mailroot.is_sandbox:
            return None
        try:
            issued = practice.sign_pending_csr(self.mailroot)
        except Exception as exc:
            self.message.show_error(exc)
            self.state = "error"
            return None
        leaf = issued.leaf
        self.practice_issued = True
        self.message.show("ok", Msg.of("ui.submit.practice.done", subject=leaf.subject.rfc4514_string(),
                                       not_after=leaf.not_valid_after_utc.date().isoformat()),
                          Msg.of("ui.submit.practice.next"))
        self._update_state()
        self.mark_changed()
        return issued

    def _refresh(self) -> None:
        assert self.mailroot is not None
        saved = self._read_checklist()
        self._loading = True
        try:
            for item, box in self.checks.items():
                box.value = item in saved
        finally:
            self._loading = False
        practice = _practice()
        available = practice is not None and self.mailroot.is_sandbox
        self.practice_box.layout.display = None if available else "none"
        if available and hasattr(practice, "issued"):
            try:
                self.practice_issued = practice.issued(self.mailroot) is not None
            except Exception:
                self.practice_issued = False
        if self.acme_panel is not None and hasattr(self.acme_panel, "refresh"):
            self.acme_panel.refresh()
        self._update_state()

    def _update_state(self) -> None:
        acme_done = getattr(self.acme_panel, "state", None) == "done"
        if len(self.ticked()) == len(CHECKLIST) or self.practice_issued or acme_done:
            self.state = "done"
        else:
            self.state = "ready"

    def _relabel(self) -> None:
        value = self.mode.value
        self.mode.options = self._mode_options()
        self.mode.value = value
        if self.acme_panel is not None and hasattr(self.acme_panel, "set_lang"):
            self.acme_panel.set_lang(self.lang)
