"""Shared pieces of the step widgets: the step base class, messages, the look.

Every visible word comes from the catalogs, rendered for the page
(:meth:`xmailnb.i18n.Msg.page`: the page names its own controls, never a
command-line option).  A step keeps a list of label bindings and re-renders
them all when the language changes; outcome messages are kept as
:class:`~xmailnb.i18n.Msg` values so they follow the language too.  HTML is
made by the templates of :mod:`xmailnb.ui._html` (autoescaped).

Fewer widget models make a lighter page: widgets that never change their
layout share one ``Layout`` and one style (:func:`html`, :func:`button`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import threading
from enum import StrEnum
from typing import Any, Callable, ClassVar, Iterable

import ipywidgets as widgets
import traitlets
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

from ..errors import XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language, page_text
from ..logs import log_unexpected
from ..mailroot import MailRoot, resolve
from ..checks.progress import StepState, step_progress
from ..status import Status
from ..steps import Step
from . import _html

__all__ = [
    "Activity",
    "StepView",
    "STATUS_ICONS",
    "Message",
    "CSS",
    "as_mailroot",
    "set_status_class",
    "set_flag_class",
    "button",
    "html",
    "error_msgs",
    "css_id",
]

log = logging.getLogger(__name__)

STATUS_CLASSES = tuple(f"xm-{s}" for s in Status)
#: The mark shown beside an outcome, for eyes that do not tell colours apart.
STATUS_ICONS: dict[Status, str] = {Status.OK: "✔", Status.INFO: "ℹ", Status.WARN: "⚠", Status.ERROR: "✖"}


class Activity(StrEnum):
    """What a step is doing now (its progress is a :class:`~xmailnb.checks.progress.StepState`)."""

    IDLE = "idle"
    BUSY = "busy"      #: work runs in a thread (key generation, live check, ACME)
    FAILED = "failed"  #: the last action was refused or failed


# One stylesheet for the whole workbook (a step shown on its own in a
# notebook brings it along).  Fonts are local names only: nothing is fetched.
CSS = """
<style>
.xm-app, .xm-step {
  --xm-font: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", "Noto Sans CJK JP",
             "Hiragino Sans", "Yu Gothic UI", "Meiryo", sans-serif;
  --xm-text: #1f2933; --xm-muted: #52606d; --xm-line: #d9e2ec; --xm-panel: #f5f7fa;
  --xm-blue: #1d4ed8; --xm-blue-bg: #eaf1fd;
  --xm-ok: #1e7b34; --xm-ok-bg: #e8f5ec; --xm-warn: #8a5300; --xm-warn-bg: #fff4db;
  --xm-error: #b42318; --xm-error-bg: #fdecea; --xm-info: #1f5fad; --xm-info-bg: #eef4fb;
  --jp-widgets-font-family: var(--xm-font); --jp-ui-font-family: var(--xm-font);
  --jp-widgets-font-size: 14px;
  font-family: var(--xm-font); color: var(--xm-text); font-size: 15px; line-height: 1.65;
  box-sizing: border-box; max-width: 100%;
}
/* Japanese: one CJK family for kana, kanji and Latin alike (local fonts only). */
.xm-app.xm-ja, .xm-step.xm-ja {
  --xm-font: "Noto Sans CJK JP", "Noto Sans JP", "Source Han Sans JP", "Hiragino Kaku Gothic ProN",
             "Hiragino Sans", "Yu Gothic UI", "Meiryo", sans-serif;
}
.xm-app { max-width: 1120px; margin: 0 auto; padding: 0 4px 24px 4px; }
.xm-app *, .xm-step * { box-sizing: border-box; }
.xm-app .widget-html-content, .xm-step .widget-html-content { font-family: var(--xm-font); font-size: 15px;
  line-height: 1.65; white-space: normal; overflow-wrap: anywhere; }
.xm-app .widget-html, .xm-step .widget-html { margin: 0; max-width: 100%; }
.xm-app code, .xm-step code { font-family: "Noto Sans Mono CJK JP", "DejaVu Sans Mono", monospace; font-size: 90%;
  background: var(--xm-panel); padding: 0 4px; border-radius: 3px; }

/* header */
.xm-top { align-items: flex-start; gap: 16px; padding: 12px 0 4px 0; }
.xm-brand { font-size: 14px; font-weight: 700; letter-spacing: .04em; color: var(--xm-muted); text-transform: uppercase; }
.xm-headline { font-size: 22px; font-weight: 700; line-height: 1.4; margin: 2px 0 2px 0; }
.xm-headline .xm-icon { display: inline-block; width: 1.2em; }
.xm-headline-error { color: var(--xm-error); }
.xm-headline-warn { color: var(--xm-warn); }
.xm-headline-ok { color: var(--xm-ok); }
.xm-mailroot { font-size: 13px; color: var(--xm-muted); overflow-wrap: anywhere; }
.xm-practice-bar { background: var(--xm-blue-bg); border: 1px solid #c7d7f5; border-radius: 8px;
  padding: 6px 12px; margin: 6px 0; align-items: center; gap: 12px; flex-wrap: wrap; }
.xm-practice-bar .widget-html { flex: 1 1 420px; }
.xm-practice-notice, .xm-reset-notice { background: var(--xm-blue-bg); border-left: 4px solid var(--xm-blue);
  padding: 6px 12px; border-radius: 4px; }
.xm-reset-notice { margin: 6px 0; font-weight: 600; }
.xm-confirm { background: var(--xm-warn-bg); border: 1px solid #f0d08a; border-radius: 8px; padding: 10px 14px;
  margin: 8px 0; gap: 6px; }
.xm-confirm .xm-text { font-weight: 700; }
.xm-orientation { color: var(--xm-muted); margin: 4px 0 2px 0; }
.xm-legend { font-size: 13px; color: var(--xm-muted); display: flex; flex-wrap: wrap; gap: 4px 16px; }
.xm-legend .xm-mark { font-weight: 700; }
.xm-legend .xm-state-done .xm-mark { color: var(--xm-ok); }
.xm-legend .xm-state-attention .xm-mark { color: var(--xm-warn); }
.xm-legend .xm-state-broken .xm-mark { color: var(--xm-error); }

/* the stepper */
.xm-navbar { display: grid !important; grid-template-columns: repeat(7, minmax(0, 1fr)); gap: 6px;
  margin: 10px 0 4px 0; }
/* A tab is two lines, "○ 6." above "Check the server", wrapped (if at all)
   in balanced lines: never one character alone; Japanese breaks between words only. */
.xm-app .jupyter-button.xm-nav { width: 100%; height: auto; min-height: 44px; margin: 0; padding: 6px 8px;
  white-space: pre-line; text-wrap: balance; line-break: strict; line-height: 1.3; font-size: 13.5px;
  text-align: left; border-radius: 8px;
  border: 1px solid var(--xm-line); background: #fff; color: var(--xm-text); box-shadow: none; }
.xm-app .jupyter-button.xm-nav.xm-state-done { background: var(--xm-ok-bg); border-color: #9fd3ae; color: #14532d; }
.xm-app .jupyter-button.xm-nav.xm-state-attention { background: var(--xm-warn-bg); border-color: #f0cf82; color: #6b4100; }
.xm-app .jupyter-button.xm-nav.xm-state-broken { background: var(--xm-error-bg); border-color: #f1a9a0; color: #8a1c12; }
.xm-app .jupyter-button.xm-nav.xm-nav-current { outline: 3px solid var(--xm-blue); outline-offset: -3px; font-weight: 700; }
.xm-app.xm-ja .jupyter-button.xm-nav { font-size: 13px; word-break: keep-all; overflow-wrap: anywhere; }

/* a step */
.xm-body { margin-top: 8px; }
.xm-step { padding: 4px 0 8px 0; gap: 10px; }
.xm-step-head { display: flex; gap: 14px; align-items: flex-start; border-bottom: 1px solid var(--xm-line);
  padding: 6px 0 10px 0; }
.xm-step-number { flex: 0 0 auto; width: 40px; height: 40px; border-radius: 50%; background: var(--xm-blue);
  color: #fff; font-weight: 700; font-size: 19px; display: flex; align-items: center; justify-content: center; }
.xm-step-title { margin: 0; font-size: 20px; line-height: 1.4; }
.xm-why { margin: 2px 0 0 0; color: var(--xm-muted); }
.xm-section { border: 1px solid var(--xm-line); border-radius: 10px; padding: 12px 16px; gap: 8px;
  background: #fff; }
.xm-section-title { font-weight: 700; font-size: 16px; }
.xm-label { font-weight: 700; display: block; }
.xm-optional { font-weight: 400; color: var(--xm-muted); font-size: 13px; }
.xm-hint, .xm-fix { color: var(--xm-muted); font-size: 13.5px; }
.xm-row { gap: 2px; min-width: 0; }
.xm-fields { display: grid !important; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px 24px; }
.xm-fields .xm-wide { grid-column: 1 / -1; }
.xm-app .widget-text, .xm-app .widget-textarea, .xm-app .widget-password, .xm-app .widget-dropdown,
.xm-step .widget-text, .xm-step .widget-textarea, .xm-step .widget-dropdown { width: 100%; max-width: 100%; margin: 2px 0; }
.xm-app .widget-text input, .xm-app .widget-textarea textarea, .xm-app .widget-dropdown select,
.xm-step .widget-text input, .xm-step .widget-textarea textarea { font-family: var(--xm-font); font-size: 14.5px; }
.xm-app textarea.widget-input, .xm-step textarea.widget-input { width: 100%; max-width: 100%; }
.xm-mono textarea { font-family: "DejaVu Sans Mono", "Noto Sans Mono CJK JP", monospace !important; font-size: 12.5px !important; }
.xm-app .jupyter-button, .xm-step .jupyter-button { height: auto; min-height: 34px; padding: 4px 16px; border-radius: 6px;
  font-size: 14px; white-space: normal; line-height: 1.35; }
.xm-actions { gap: 10px; align-items: center; flex-wrap: wrap; margin: 4px 0; }
.xm-app .widget-toggle-buttons .widget-toggle-button { width: auto; min-width: 6em; padding: 4px 14px; }
.xm-app .widget-checkbox { width: auto; }
.xm-app .widget-checkbox label, .xm-app .widget-label { width: auto; }
.xm-app .widget-inline-hbox .widget-label { white-space: normal; }
.xm-highlight { outline: 3px solid var(--xm-blue); outline-offset: 3px; border-radius: 6px; }
.xm-invalid input, .xm-invalid textarea, input.xm-invalid, textarea.xm-invalid { outline: 2px solid var(--xm-error); }

/* outcomes and findings */
.xm-message:empty, .xm-field-message:empty, .xm-acme-message:empty { display: none; }
.xm-message, .xm-acme-message { border-radius: 8px; padding: 8px 12px; }
.xm-message.xm-ok, .xm-acme-message.xm-ok { background: var(--xm-ok-bg); border-left: 4px solid var(--xm-ok); }
.xm-message.xm-error, .xm-acme-message.xm-error { background: var(--xm-error-bg);
  border-left: 4px solid var(--xm-error); }
.xm-message.xm-warn { background: var(--xm-warn-bg); border-left: 4px solid var(--xm-warn); }
.xm-message.xm-info { background: var(--xm-info-bg); border-left: 4px solid var(--xm-info); }
.xm-message .xm-text, .xm-acme-message .xm-text { font-weight: 600; }
.xm-acme-run-row { align-items: center; gap: 12px; flex-wrap: wrap; }
.xm-acme-run-row .xm-acme-blocked { flex: 1 1 320px; }
.xm-field-message { font-size: 13.5px; }
.xm-rollback-result { border-radius: 8px; padding: 8px 12px; }
.xm-rollback-result.xm-ok { background: var(--xm-ok-bg); border-left: 4px solid var(--xm-ok); }
.xm-rollback-result.xm-error { background: var(--xm-error-bg); border-left: 4px solid var(--xm-error); }
.xm-rollback-result .xm-text { font-weight: 600; }
.xm-field-message.xm-ok { color: var(--xm-ok); }
.xm-field-message.xm-error { color: var(--xm-error); }
.xm-field-message.xm-warn { color: var(--xm-warn); }
.xm-field-message.xm-info { color: var(--xm-info); }
.xm-group { margin: 6px 0 10px 0; }
.xm-group-title, details.xm-group > summary { font-weight: 700; margin: 4px 0; cursor: default; }
details.xm-group > summary { cursor: pointer; color: var(--xm-blue); }
.xm-group-note { color: var(--xm-muted); font-size: 13.5px; margin: 2px 0 4px 0; }
.xm-finding { display: flex; gap: 10px; align-items: flex-start; padding: 8px 12px; margin: 6px 0;
  border: 1px solid var(--xm-line); border-left: 5px solid #9aa5b1; border-radius: 6px; background: #fff; }
.xm-endpoint .widget-html-content { display: flex; gap: 10px; align-items: flex-start; }
.xm-finding .xm-icon { flex: 0 0 1.3em; font-weight: 700; text-align: center; }
.xm-finding-body { flex: 1 1 auto; min-width: 0; }
.xm-check-name { font-weight: 700; }
.xm-finding.xm-ok { border-left-color: var(--xm-ok); } .xm-finding.xm-ok .xm-icon { color: var(--xm-ok); }
.xm-finding.xm-warn { border-left-color: #d48a00; background: var(--xm-warn-bg); } .xm-finding.xm-warn .xm-icon { color: var(--xm-warn); }
.xm-finding.xm-error { border-left-color: var(--xm-error); background: var(--xm-error-bg); } .xm-finding.xm-error .xm-icon { color: var(--xm-error); }
.xm-finding.xm-info { border-left-color: var(--xm-info); } .xm-finding.xm-info .xm-icon { color: var(--xm-info); }
.xm-group-other .xm-finding, .xm-group-skipped .xm-finding { padding: 4px 10px; margin: 3px 0; font-size: 14px; }
.xm-goto { gap: 8px; flex-wrap: wrap; }
.xm-app .jupyter-button.xm-goto-button { background: #fff; border: 1px solid var(--xm-blue); color: var(--xm-blue); }
.xm-list { margin: 4px 0; padding-left: 1.3em; }
.xm-list li { margin: 2px 0; }
.xm-list li.xm-warn { color: var(--xm-warn); }
.xm-list-title { font-weight: 700; }
.xm-table td { padding: 2px 8px; overflow-wrap: anywhere; }
a.xm-download { display: inline-block; padding: 6px 16px; border-radius: 6px; border: 1px solid var(--xm-blue);
  color: var(--xm-blue); background: #fff; text-decoration: none; font-weight: 600; }
a.xm-download:hover { background: var(--xm-blue-bg); }
.xm-progress::before { content: ""; display: inline-block; width: 0.8em; height: 0.8em;
  margin-right: 0.5em; border: 2px solid var(--xm-blue); border-right-color: transparent;
  border-radius: 50%; animation: xm-spin 0.8s linear infinite; vertical-align: -1px; }
@keyframes xm-spin { to { transform: rotate(360deg); } }
.xm-var { font-weight: 700; }
.xm-setting { gap: 14px; align-items: flex-start; padding: 8px 0; border-bottom: 1px solid var(--xm-line); }
.xm-setting > .widget-vbox:first-child { flex: 0 0 15em; }
.xm-setting.xm-setting-list > .widget-vbox:first-child { flex: 0 0 17.5em; }
.xm-footer { margin-top: 14px; justify-content: flex-end; }
.xm-app .jupyter-button.xm-next { background: var(--xm-blue); color: #fff; font-weight: 700; }
@media (max-width: 900px) {
  .xm-navbar { grid-template-columns: repeat(4, minmax(0, 1fr)); }
  .xm-fields { grid-template-columns: minmax(0, 1fr); }
}
</style>
"""


# -- small helpers ---------------------------------------------------------------------

_SHARED: dict[str, Any] = {}


def _shared(kind: str) -> Any:
    """One Layout (or style) for every widget that never changes its own:
    one model in the browser instead of one per widget."""
    if kind not in _SHARED:
        _SHARED[kind] = {"layout": lambda: widgets.Layout(),
                         "wide": lambda: widgets.Layout(width="100%"),
                         "html_style": lambda: HTMLStyle(),
                         "button_style": lambda: widgets.ButtonStyle(),
                         "button_layout": lambda: widgets.Layout(width="auto", align_self="flex-start"),
                         "text_style": lambda: TextStyle(description_width="initial")}[kind]()
    return _SHARED[kind]


def html(value: str = "", *classes: str, hideable: bool = False) -> widgets.HTML:
    """An HTML widget; it shares its layout and style unless *hideable*."""
    kw: dict[str, Any] = {"style": _shared("html_style")}
    if not hideable:
        kw["layout"] = _shared("layout")
    w = widgets.HTML(value, **kw)
    for cls in classes:
        w.add_class(cls)
    return w


def button(*classes: str, hideable: bool = False, **kw: Any) -> widgets.Button:
    """A button as wide as its label; it shares its layout and style unless *hideable*."""
    kw.setdefault("style", _shared("button_style"))
    if "layout" not in kw:
        kw["layout"] = (widgets.Layout(width="auto", align_self="flex-start") if hideable
                        else _shared("button_layout"))
    b = widgets.Button(**kw)
    for cls in classes:
        b.add_class(cls)
    return b


def as_mailroot(mailroot: str | os.PathLike[str] | MailRoot | None) -> MailRoot:
    """The MailRoot a widget works on; resolved when the widget is created."""
    if isinstance(mailroot, MailRoot):
        return mailroot
    return resolve(mailroot)


def set_status_class(widget: Any, status: Status | None) -> None:
    """Give *widget* exactly one of the status classes (or none)."""
    for cls in STATUS_CLASSES:
        if cls != f"xm-{status}" and cls in widget._dom_classes:
            widget.remove_class(cls)
    if status is not None and f"xm-{status}" not in widget._dom_classes:
        widget.add_class(f"xm-{status}")


def set_flag_class(widget: Any, cls: str, on: bool) -> None:
    if on and cls not in widget._dom_classes:
        widget.add_class(cls)
    elif not on and cls in widget._dom_classes:
        widget.remove_class(cls)


def show(widget: Any, visible: bool) -> None:
    """Show or hide a widget created with its own layout."""
    widget.layout.display = None if visible else "none"


def css_id(value: str) -> str:
    return value.replace(".", "-")


def error_msgs(exc: BaseException, what: str = "an action of the workbook") -> list[Msg]:
    """What to show for *exc*: the error and its fix, never a traceback.

    An unexpected error (a bug, not a refusal) is logged with its traceback,
    and the message names the log file.
    """
    if isinstance(exc, XmailnbError):
        return [exc.msg] + ([exc.fix] if exc.fix is not None else [])
    path = log_unexpected(log, what, exc)
    if path is None:
        return [Msg.of("ui.internal.nolog")]
    return [Msg.of("ui.internal", log=str(path))]


class Message(widgets.HTML):  # type: ignore[misc]  # ipywidgets ships no type hints
    """An outcome message: status class plus the rendered messages.

    ``base_class`` is ``xm-message`` for a step's latest outcome and
    ``xm-field-message`` for the note beside one input.
    """

    def __init__(self, base_class: str = "xm-message", lang: str = "en", **kw: Any) -> None:
        kw.setdefault("layout", _shared("layout"))
        kw.setdefault("style", _shared("html_style"))
        super().__init__(**kw)
        self.add_class(base_class)
        self._lang = lang
        self.status: Status | None = None
        self.msgs: list[Msg] = []

    def show(self, status: Status, *msgs: Msg) -> None:
        self.status, self.msgs = status, list(msgs)
        self._draw()

    def show_error(self, exc: BaseException, what: str = "an action of the workbook") -> None:
        self.show(Status.ERROR, *error_msgs(exc, what))

    def clear(self) -> None:
        self.status, self.msgs = None, []
        self._draw()

    def set_lang(self, lang: str) -> None:
        self._lang = lang
        self._draw()

    def text(self) -> str:
        """The message as the page shows it, as plain text."""
        return "\n".join(m.page(self._lang) for m in self.msgs)

    def _draw(self) -> None:
        with self.hold_trait_notifications():
            self.value = (_html.render("message", lines=[m.page(self._lang) for m in self.msgs])
                          if self.msgs else "")
            set_status_class(self, self.status)


class StepView(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """Base of every step: a VBox with its progress and activity.

    Attributes:
        state: where the step stands (:class:`~xmailnb.checks.progress.StepState`,
            from :func:`xmailnb.checks.progress.step_progress`; the wizard sets it
            for every step after each change).
        activity: what the step is doing now (:class:`Activity`).
        changes: incremented each time the step changed the MailRoot, so the
            wizard can read the MailRoot again.
        mailroot: the :class:`~xmailnb.mailroot.MailRoot` (``None`` when it
            could not be used; the step then shows why and nothing else).
    """

    STEP: ClassVar[Step]

    state = traitlets.UseEnum(StepState, default_value=StepState.TODO)
    activity = traitlets.UseEnum(Activity, default_value=Activity.IDLE)
    changes = traitlets.Int(0)

    def __init__(self, mailroot: str | os.PathLike[str] | MailRoot | None = None,
                 lang: str | None = None, *, standalone: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.lang: str = lang if lang in LANGUAGES else detect_language()
        self.standalone = standalone
        self._bindings: list[tuple[Any, str, Callable[[str], str]]] = []
        self._ui_lock = threading.RLock()
        self.add_class("xm-step")
        self.add_class(f"xm-step-{self.STEP}")
        set_flag_class(self, "xm-ja", self.lang == "ja")  # the Japanese font stack
        self.title = html()
        self.bind(self.title, "value", self._head_html)
        self._message_widgets: list[Message] = []
        self.message = self.new_message()
        css = [html(CSS)] if standalone else []
        self.mailroot: MailRoot | None
        try:
            self.mailroot = as_mailroot(mailroot)
        except XmailnbError as exc:
            self.mailroot = None
            self.message.show_error(exc)
            self.children = [*css, self.title, self.message]
            self.activity = Activity.FAILED
            return
        body = self._build()
        tail = [] if any(w is self.message for w in body) else [self.message]
        self.children = [*css, self.title, *body, *tail]
        self.refresh()

    def _head_html(self, lang: str) -> str:
        # The number is in the circle beside the title: not twice.
        title = re.sub(r"^\s*\d+\.\s*", "", page_text(f"ui.{self.STEP}.title", lang))
        return _html.render("step_head", number=self.STEP.number, title=title,
                            why=page_text(f"ui.{self.STEP}.intro", lang))

    # -- to override -------------------------------------------------------------
    def _build(self) -> list[Any]:
        """Create the widgets; return the children between title and message."""
        return []

    def _refresh(self) -> None:
        """Re-read the MailRoot and update the view."""

    def _relabel(self) -> None:
        """Re-render dynamic content (beyond the bindings) in ``self.lang``."""

    # -- public --------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the MailRoot and show its current state (and, shown on its
        own, the step's progress)."""
        if self.mailroot is None:
            return
        with self._ui_lock:
            try:
                self._refresh()
            except Exception as exc:  # shown to the user (logged when unexpected), never a traceback
                self.message.show_error(exc, f"showing step {self.STEP}")
                self.activity = Activity.FAILED
        if self.standalone:
            self.set_progress_state(step_progress(self.mailroot)[self.STEP])

    def set_progress_state(self, state: StepState) -> None:
        """Set :attr:`state` (the wizard does this from the one progress rule)."""
        self.state = state

    def set_lang(self, lang: str) -> None:
        """Re-render every label in *lang* (``"ja"`` or ``"en"``)."""
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        with self._ui_lock, self.hold_trait_notifications():
            self.lang = lang
            set_flag_class(self, "xm-ja", lang == "ja")
            for widget, attr, render in self._bindings:
                setattr(widget, attr, render(lang))
            for child in self._messages():
                child.set_lang(lang)
            if self.mailroot is not None:
                self._relabel()

    # -- helpers for subclasses ------------------------------------------------------
    def t(self, key: str, /, **params: Any) -> str:
        """Catalog entry *key* for the page, in the step's language."""
        return page_text(key, self.lang, **params)

    def m(self, msg: Msg) -> str:
        return msg.page(self.lang)

    def bind(self, widget: Any, attr: str, key: str | Msg | Callable[[str], str], *,
             tag: str | None = None, cls: str | None = None, **params: Any) -> Any:
        """Set ``widget.attr`` from a catalog entry now and on each language change.

        *tag* puts the (escaped) text in that HTML element.
        """
        if callable(key) and not isinstance(key, (str, Msg)):
            render = key
        else:
            msg = key if isinstance(key, Msg) else Msg(key, params)

            def render(lang: str) -> str:
                value = msg.page(lang)
                return _html.render("tag", tag=tag, cls=cls, text=value) if tag else value
        self._bindings.append((widget, attr, render))
        setattr(widget, attr, render(self.lang))
        return widget

    def label(self, key: str, *classes: str, tag: str = "div", **params: Any) -> widgets.HTML:
        """A text paragraph bound to a catalog entry."""
        return self.bind(html("", *classes), "value", key, tag=tag, **params)

    def field_label(self, label_key: str, hint_key: str | None = None, optional: bool = False) -> widgets.HTML:
        """A label above an input, with guidance under it."""
        return self.bind(html(), "value", lambda lang: _html.render(
            "label", label=page_text(label_key, lang), hint=page_text(hint_key, lang) if hint_key else "",
            optional=page_text("ui.csr.optional", lang) if optional else ""))

    def new_message(self, base_class: str = "xm-message") -> Message:
        m = Message(base_class=base_class, lang=self.lang)
        self._message_widgets.append(m)
        return m

    def field_message(self, name: str) -> Message:
        m = self.new_message("xm-field-message")
        m.add_class(f"xm-field-{name}")
        return m

    def _messages(self) -> Iterable[Message]:
        return list(self._message_widgets)

    def safe(self, callback: Callable[..., Any]) -> Callable[..., None]:
        """Wrap a widget callback: an exception becomes the step's error
        message (an unexpected one is logged) instead of a traceback."""
        def run(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:
                self.message.show_error(exc, f"handling a click in step {self.STEP}")
                self.activity = Activity.FAILED
        return run

    def mark_changed(self) -> None:
        """Say that the step changed the MailRoot (the wizard reads it again)."""
        self.changes += 1
        if self.standalone and self.mailroot is not None:
            self.set_progress_state(step_progress(self.mailroot)[self.STEP])

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the step's background work (key generation, probe) and
        its display to finish; True when done (or when none is running)."""
        future: concurrent.futures.Future[Any] | None = getattr(self, "future", None)
        if future is None:
            return True
        try:
            # The step has shown (and, when unexpected, logged) any error.
            future.exception(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True
