"""Step 5: the TLS variables of server.tab as switches and fields."""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as widgets

from ..flows import actions
from ..mailroot import servertab as st
from ..i18n import Msg
from ._base import Step, button, css_id, escape, set_status_class

__all__ = ["SettingsStep"]


def _head_html(var: st.Variable, lang: str) -> str:
    return f"<code>{escape(var.name)}</code> &mdash; {escape(var.summary.render(lang))}"


class SettingsStep(Step):
    """One input per TLS variable (flags: Checkbox, integers: IntText, lists:
    Text) with its summary and what the current value means; Save writes only
    the variables that changed, through :func:`xmailnb.flows.actions.change_settings`.

    ``inputs[name]`` is the input of variable *name*; it carries
    ``xm-setting-<name>``.
    """

    STEP = "settings"

    def _build(self) -> list[Any]:
        self.inputs: dict[str, Any] = {}
        # For text variables "not set" and "set to nothing" differ in XMail
        # (SmtpNoTLSAuths: no restriction vs. no AUTH before STARTTLS), so
        # each has a "set in server.tab" box beside its text.
        self.defined: dict[str, widgets.Checkbox] = {}
        self.meanings: dict[str, widgets.HTML] = {}
        self.notes: dict[str, Any] = {}
        self.loaded: dict[str, str | None] = {}
        self.rows_data: dict[str, dict[str, Any]] = {}
        self._saved = False
        self._loading_values = False
        rows = []
        for var in st.TLS_VARIABLES:
            if var.kind == "flag":
                w: Any = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="2em"))
            elif var.kind == "int":
                w = widgets.IntText(value=0, layout=widgets.Layout(width="8em"))
            else:
                w = widgets.Text(value="", layout=widgets.Layout(width="20em"))
                defined = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="auto"))
                defined.add_class(f"xm-setting-defined-{var.name}")
                self.bind(defined, "description", "ui.settings.defined")
                defined.observe(self.safe(lambda _c, n=var.name: self._show_meaning(n)), "value")
                w.observe(self.safe(lambda c, n=var.name: self._typed(n, c)), "value")
                self.defined[var.name] = defined
            w.add_class(f"xm-setting-{var.name}")
            w.observe(self.safe(lambda _c, n=var.name: self._show_meaning(n)), "value")
            self.inputs[var.name] = w
            head = widgets.HTML()
            self.bind(head, "value", functools.partial(_head_html, var))
            meaning = widgets.HTML()
            meaning.add_class("xm-setting-meaning")
            self.meanings[var.name] = meaning
            self.notes[var.name] = self.field_message(f"setting-{var.name}")
            control = widgets.VBox([w, self.defined[var.name]]) if var.name in self.defined else w
            row = widgets.HBox([control, widgets.VBox([head, meaning, self.notes[var.name]],
                                                      layout=widgets.Layout(width="90%"))])
            row.add_class("xm-setting")
            row.add_class(f"xm-setting-row-{var.name}")
            rows.append(row)
        self.save_button = button(button_style="primary", icon="save")
        self.save_button.add_class("xm-settings-save")
        self.bind(self.save_button, "description", "ui.settings.save")
        self.save_button.on_click(self.safe(lambda _b: self.save()))
        self.issues = widgets.VBox()
        self.issues.add_class("xm-settings-issues")
        self._issues: list[st.Issue] = []
        return [self.label("ui.settings.intro"), *rows, self.save_button, self.message,
                self.issues, self.label("ui.settings.reload_note")]

    # -- values -----------------------------------------------------------------------
    def _text(self, name: str) -> str:
        """The input's value as server.tab text."""
        var = st.variable(name)
        value = self.inputs[name].value
        assert var is not None
        if var.kind == "flag":
            return "1" if value else "0"
        if var.kind == "int":
            return str(value)
        return str(value).strip()

    def _typed(self, name: str, change: dict[str, Any]) -> None:
        # Typing a value means setting the variable.
        if change["new"] and not self._loading_values:
            self.defined[name].value = True

    def _value(self, name: str) -> str | None:
        """What server.tab should hold for *name*: its text, or ``None`` (not set)."""
        if name in self.defined and not self.defined[name].value:
            return None
        return self._text(name)

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
        current = self._value(name)
        self.meanings[name].value = f'<div class="xm-fix">{escape(var.meaning(current).render(self.lang))}</div>'

    def save(self) -> Any:
        """Write the changed variables to server.tab (only their lines change)."""
        assert self.mailroot is not None
        for note in self.notes.values():
            note.clear()
        assignments = self.changed()
        if not assignments:
            self.message.show("ok", Msg.of("cli.settings.unchanged"))
            return None
        try:
            entry = actions.change_settings(self.mailroot, assignments)
        except Exception as exc:
            field = getattr(exc, "field", None)
            if field in self.notes:
                self.notes[field].show_error(exc)
            self.message.show_error(exc)
            self.state = "error"
            return None
        self._saved = True
        if entry is None:
            self.message.show("ok", Msg.of("cli.settings.unchanged"))
        else:
            self.message.show("ok", Msg.of("ui.settings.done", names=", ".join(assignments), id=entry.id))
        self.refresh()
        self.mark_changed()
        return entry

    # -- refresh ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        assert self.mailroot is not None
        tab = st.ServerTab.read(self.mailroot.server_tab)
        self._loading_values = True
        with self.hold_trait_notifications():
            for row in st.tls_settings(tab):
                name = row["name"]
                self.loaded[name] = row["value"]
                self.rows_data[name] = row
                w = self.inputs[name]
                if row["kind"] == "flag":
                    w.value = row["effective"] == "1"
                elif row["kind"] == "int":
                    w.value = st.atoi(row["effective"])
                else:
                    w.value = row["value"] or ""
                    self.defined[name].value = row["value"] is not None
                self._show_meaning(name)
            self._issues = st.tls_inconsistencies(tab)
            self._draw_issues()
            errors = any(i.severity == "error" for i in self._issues)
            self.state = "ready" if errors and not self._saved else "done"
        self._loading_values = False

    def _draw_issues(self) -> None:
        rows = []
        for issue in self._issues:
            w = widgets.HTML()
            w.add_class("xm-finding")
            w.add_class(f"xm-issue-{css_id(issue.code)}")
            set_status_class(w, issue.severity)
            fix = issue.fix.render(self.lang) if issue.fix is not None else ""
            w.value = (f'<span class="xm-text">{escape(issue.msg.render(self.lang))}</span>'
                       + (f'<div class="xm-fix">{escape(fix)}</div>' if fix else ""))
            rows.append(w)
        self.issues.children = rows

    def _relabel(self) -> None:
        for name in self.inputs:
            self._show_meaning(name)
        self._draw_issues()
