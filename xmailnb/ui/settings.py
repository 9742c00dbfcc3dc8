"""Step 5: the TLS variables of server.tab as switches and fields."""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as widgets

from ..flows import actions
from ..mailroot import servertab as st
from ..errors import XmailnbError
from ..i18n import Msg, page_text
from ..status import Status
from ..steps import Step
from . import _html
from ._base import Activity, Message, StepView, box, button, classed, css_id, html, shared, status_icon

__all__ = ["SettingsStep", "UNSET", "EMPTY", "VALUE"]

# A list variable (SmtpNoTLSAuths, SmtpConfig) is one of three things in
# XMail, and the form says which: not set (XMail's default), set to the
# empty value, or set to a list.
UNSET, EMPTY, VALUE = "unset", "empty", "value"


def _head_html(var: st.Variable, lang: str) -> str:
    return _html.render("setting_head", name=var.name, summary=var.summary.page(lang))


class SettingsStep(StepView):
    """One input per TLS variable (flags: Checkbox, integers: IntText, lists:
    a choice of "not set", "empty" or a value) with what it does and what the
    current value means; Save writes only the variables that changed,
    through :func:`xmailnb.flows.actions.change_settings`.

    ``inputs[name]`` is the input of variable *name* (``xm-setting-<name>``);
    for list variables ``modes[name]`` (``xm-setting-mode-<name>``) chooses
    between not set, empty and the text of ``inputs[name]``.
    """

    STEP = Step.SETTINGS

    def _build(self) -> list[Any]:
        self.inputs: dict[str, Any] = {}
        self.modes: dict[str, widgets.Dropdown] = {}
        self.meanings: dict[str, widgets.HTML] = {}
        self.notes: dict[str, Message] = {}
        self.loaded: dict[str, str | None] = {}
        self._loading_values = False
        groups: dict[str, list[Any]] = {}
        for var in st.TLS_VARIABLES:
            cls = f"xm-setting-{var.name}"
            # Widgets are made with their classes and share their layouts:
            # the step's first opening is one message per widget (fewer models).
            if var.kind == "flag":
                # The label says the value shown: "On (1)" ticked, "Off (0)" not (see _show_meaning).
                w: Any = classed(widgets.Checkbox, cls, value=False, indent=False, layout=shared("auto"))
                control: Any = w
            elif var.kind == "int":
                w = classed(widgets.IntText, cls, value=0, layout=shared("int"))
                control = w
            else:
                mode = classed(widgets.Dropdown, f"xm-setting-mode-{var.name}", options=self._mode_options(var),
                               value=UNSET, layout=shared("wide"))
                w = classed(widgets.Text, cls, value="", placeholder=self.t(f"ui.settings.example.{var.slug}"),
                            layout=shared("wide"), style=shared("input_style"))
                mode.observe(self.safe(lambda c, n=var.name: self._mode_changed(n)), "value")
                w.observe(self.safe(lambda c, n=var.name: self._typed(n)), "value")
                self.modes[var.name] = mode
                control = box([mode, w])
            w.observe(self.safe(lambda _c, n=var.name: self._show_meaning(n)), "value")
            self.inputs[var.name] = w
            self.meanings[var.name] = html("", "xm-setting-meaning", "xm-hint")
            self.notes[var.name] = self.field_message(f"setting-{var.name}")
            render = functools.partial(_head_html, var)
            head = self.bind(html(render(self.lang)), "value", render)
            left = box([control])
            right = box([head, self.meanings[var.name], self.notes[var.name]], "xm-row")
            # xm-setting-list: a wider column, the choices are read in full
            row = box([left, right], "xm-setting", *(("xm-setting-list",) if var.name in self.modes else ()),
                      f"xm-setting-row-{var.name}", horizontal=True)
            groups.setdefault(var.group, []).append(row)
        sections = []
        for group, rows in groups.items():
            sections.append(box([self.label(f"ui.settings.group.{group}", "xm-section-title"), *rows], "xm-section"))
        self.save_button = self.bound(button, "description", "ui.settings.save", "xm-settings-save",
                                      button_style="primary")
        self.save_button.on_click(self.safe(lambda _b: self.save()))
        self.issues = html("", "xm-settings-issues")
        self._issues: list[st.Issue] = []
        return [self.issues, *sections, self.save_button, self.message,
                self.label("ui.settings.reload_note", "xm-hint")]

    def _mode_options(self, var: st.Variable) -> list[tuple[str, str]]:
        return [(self.t(f"ui.settings.mode.{var.slug}.{m}"), m) for m in (UNSET, EMPTY, VALUE)]

    # -- values -----------------------------------------------------------------------
    def _mode_changed(self, name: str) -> None:
        if not self._loading_values and self.modes[name].value == VALUE and not self.inputs[name].value:
            self.inputs[name].value = ""
        self.inputs[name].disabled = self.modes[name].value != VALUE
        self._show_meaning(name)

    def _typed(self, name: str) -> None:
        # Text typed for a list variable means "set to this list".
        if not self._loading_values and self.inputs[name].value.strip() and self.modes[name].value != VALUE:
            self.modes[name].value = VALUE

    def _value(self, name: str) -> str | None:
        """What server.tab should hold for *name*: its text, or ``None`` (not set)."""
        var = st.variable(name)
        assert var is not None
        value = self.inputs[name].value
        if var.kind == "flag":
            return "1" if value else "0"
        if var.kind == "int":
            return str(value)
        mode = self.modes[name].value
        if mode == UNSET:
            return None
        return "" if mode == EMPTY else str(value).strip()

    def changed(self) -> dict[str, str | None]:
        """The variables whose input differs from server.tab, with the new
        text (``None``: remove the setting, so XMail's default applies)."""
        out: dict[str, str | None] = {}
        for name in self.inputs:
            var = st.variable(name)
            assert var is not None
            new = self._value(name)
            old = self.loaded.get(name)
            if var.kind in ("flag", "int"):
                if new != var.effective(old):
                    out[name] = new
            elif new != old:
                out[name] = new
        return out

    def _show_meaning(self, name: str) -> None:
        var = st.variable(name)
        assert var is not None
        self.meanings[name].value = _html.render("tag", tag="div", text=self.m(var.meaning(self._value(name))))
        if var.kind == "flag":
            self.inputs[name].description = self.t("ui.settings.flag_on" if self.inputs[name].value
                                                   else "ui.settings.flag_off")

    def save(self) -> Any:
        """Write the changed variables to server.tab (only their lines change)."""
        assert self.mailroot is not None
        for note in self.notes.values():
            note.clear()
        assignments = self.changed()
        if not assignments:
            self.message.show(Status.OK, Msg.of("cli.settings.unchanged"))
            return None
        try:
            entry = actions.change_settings(self.mailroot, assignments)
        except XmailnbError as exc:
            if exc.field in self.notes:
                self.notes[exc.field].show_error(exc)
                self.message.show(Status.ERROR, exc.msg)
            else:
                self.message.show_error(exc)
            self.activity = Activity.FAILED
            return None
        self.activity = Activity.IDLE
        if entry is None:
            self.message.show(Status.OK, Msg.of("cli.settings.unchanged"))
        else:
            self.message.show(Status.OK, Msg.of("ui.settings.done", names=", ".join(assignments)))
        self.refresh()
        self.mark_changed()
        return entry

    # -- refresh ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        assert self.mailroot is not None
        tab = st.ServerTab.read(self.mailroot.server_tab)
        self._loading_values = True
        try:
            with self.hold_trait_notifications():
                for row in st.tls_settings(tab):
                    name = row.name
                    self.loaded[name] = row.value
                    w = self.inputs[name]
                    if row.kind == "flag":
                        w.value = row.effective == "1"
                    elif row.kind == "int":
                        w.value = st.atoi(row.effective)
                    else:
                        value = row.value
                        self.modes[name].value = UNSET if value is None else EMPTY if value == "" else VALUE
                        w.value = value or ""
                        w.disabled = self.modes[name].value != VALUE
                    self._show_meaning(name)
                self._issues = st.tls_inconsistencies(tab)
                self._draw_issues()
        finally:
            self._loading_values = False

    def _draw_issues(self) -> None:
        rows = [{"classes": f"xm-finding xm-{i.severity} xm-issue-{css_id(i.code)}", "icon": status_icon(i.severity, self.lang),
                 "status": page_text(f"cli.status.{i.severity}", self.lang), "name": "",
                 "text": self.m(i.msg), "fix": self.m(i.fix) if i.fix is not None else ""} for i in self._issues]
        self.issues.value = _html.render("findings", groups=[{
            "kind": "problems", "collapsed": None, "rows": rows,
            "title": self.t("ui.settings.issues", count=len(rows))}]) if rows else ""

    def _relabel(self) -> None:
        for name, mode in self.modes.items():
            var = st.variable(name)
            assert var is not None
            value = mode.value
            self._loading_values = True
            try:
                mode.options = self._mode_options(var)
                mode.value = value
                self.inputs[name].placeholder = self.t(f"ui.settings.example.{var.slug}")
            finally:
                self._loading_values = False
        for name in self.inputs:
            self._show_meaning(name)
        self._draw_issues()
