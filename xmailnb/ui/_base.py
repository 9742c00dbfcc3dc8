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
from pathlib import Path
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
    "status_icon",
    "Message",
    "CSS",
    "as_mailroot",
    "set_status_class",
    "shared",
    "set_flag_class",
    "box",
    "button",
    "classed",
    "html",
    "error_msgs",
    "css_id",
]

log = logging.getLogger(__name__)

STATUS_CLASSES = tuple(f"xm-{s}" for s in Status)


class Activity(StrEnum):
    """What a step is doing now (its progress is a :class:`~xmailnb.checks.progress.StepState`)."""

    IDLE = "idle"
    BUSY = "busy"      #: work runs in a thread (key generation, live check, ACME)
    FAILED = "failed"  #: the last action was refused or failed


# One stylesheet for the whole workbook, ui/workbook.css (a step shown on
# its own in a notebook brings it along).
CSS = f"<style>\n{Path(__file__).with_name('workbook.css').read_text(encoding='utf-8')}</style>\n"


# -- small helpers ---------------------------------------------------------------------

_SHARED: dict[str, Any] = {}


def shared(kind: str) -> Any:
    """One Layout (or style) for every widget that never changes its own:
    one model in the browser instead of one per widget."""
    if kind not in _SHARED:
        _SHARED[kind] = {"layout": lambda: widgets.Layout(),
                         "wide": lambda: widgets.Layout(width="100%"),
                         "auto": lambda: widgets.Layout(width="auto"),
                         "int": lambda: widgets.Layout(width="8em"),
                         "upload": lambda: widgets.Layout(width="auto", min_width="12em"),
                         "port": lambda: widgets.Layout(width="9em"),
                         "html_style": lambda: HTMLStyle(),
                         "button_style": lambda: widgets.ButtonStyle(),
                         "button_layout": lambda: widgets.Layout(width="auto", align_self="flex-start"),
                         "text_style": lambda: TextStyle(description_width="initial"),
                         "input_style": lambda: TextStyle()}[kind]()
    return _SHARED[kind]


# A widget's CSS classes given when it is made travel in its first message to
# the page; each add_class afterwards is one more message (a step of the CSR
# form sent 98 of them when first opened).  `_dom_classes` is the name the
# widget protocol gives that state (ipywidgets' DOMWidget model).
def classed(factory: Callable[..., Any], *classes: str, **kw: Any) -> Any:
    """``factory(**kw)`` with *classes* already on it."""
    return factory(_dom_classes=classes, **kw)


def html(value: str = "", *classes: str, hideable: bool = False, hidden: bool = False) -> widgets.HTML:
    """An HTML widget; it shares its layout and style unless *hideable*
    (or *hidden*: made hidden, shown later with :func:`show`)."""
    kw: dict[str, Any] = {"style": shared("html_style")}
    if hidden:
        kw["layout"] = widgets.Layout(display="none")
    elif not hideable:
        kw["layout"] = shared("layout")
    return classed(widgets.HTML, *classes, value=value, **kw)


def button(*classes: str, hideable: bool = False, **kw: Any) -> widgets.Button:
    """A button as wide as its label; it shares its layout and style unless *hideable*."""
    kw.setdefault("style", shared("button_style"))
    if "layout" not in kw:
        kw["layout"] = (widgets.Layout(width="auto", align_self="flex-start") if hideable
                        else shared("button_layout"))
    return classed(widgets.Button, *classes, **kw)


def box(children: Iterable[Any], *classes: str, horizontal: bool = False, hideable: bool = False,
        hidden: bool = False) -> widgets.Box:
    """A VBox (HBox if *horizontal*) with its classes; it shares its layout
    unless *hideable* (or *hidden*: made hidden, shown later with :func:`show`)."""
    if hidden:
        layout = widgets.Layout(display="none")
    else:
        layout = widgets.Layout() if hideable else shared("layout")
    return classed(widgets.HBox if horizontal else widgets.VBox, *classes, children=list(children), layout=layout)


def as_mailroot(mailroot: str | os.PathLike[str] | MailRoot | None) -> MailRoot:
    """The MailRoot a widget works on; resolved when the widget is created."""
    if isinstance(mailroot, MailRoot):
        return mailroot
    return resolve(mailroot)


def status_icon(status: Status, lang: str) -> str:
    """The mark shown beside an outcome (for eyes that do not tell colours apart)."""
    return page_text(f"ui.icon.{status}", lang)


def set_status_class(widget: Any, status: Status | None) -> None:
    """Give *widget* exactly one of the status classes (or none)."""
    # ipywidgets' add_class/remove_class change (and send) nothing when the
    # class is already there or already gone.
    for cls in STATUS_CLASSES:
        if cls != f"xm-{status}":
            widget.remove_class(cls)
    if status is not None:
        widget.add_class(f"xm-{status}")


def set_flag_class(widget: Any, cls: str, on: bool) -> None:
    if on:
        widget.add_class(cls)
    else:
        widget.remove_class(cls)


def show(widget: Any, visible: bool) -> None:
    """Show or hide a widget created with its own layout."""
    if any(widget.layout is one for one in _SHARED.values()):
        # hiding it would hide every widget that shares the layout
        raise ValueError(f"{type(widget).__name__} shares its layout: make it hideable")
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


def _renderer(key: str | Msg | Callable[[str], str], *, tag: str | None = None, cls: str | None = None,
              **params: Any) -> Callable[[str], str]:
    """The text of *key* in a language (in a *tag* element if given, escaped)."""
    if callable(key) and not isinstance(key, (str, Msg)):
        return key
    msg = key if isinstance(key, Msg) else Msg(key, params)

    def render(lang: str) -> str:
        value = msg.page(lang)
        return _html.render("tag", tag=tag, cls=cls, text=value) if tag else value
    return render


class Message(widgets.HTML):  # type: ignore[misc]  # ipywidgets ships no type hints
    """An outcome message: status class plus the rendered messages.

    ``base_class`` is ``xm-message`` for a step's latest outcome and
    ``xm-field-message`` for the note beside one input.
    """

    def __init__(self, base_class: str = "xm-message", lang: str = "en", *classes: str, **kw: Any) -> None:
        kw.setdefault("layout", shared("layout"))
        kw.setdefault("style", shared("html_style"))
        super().__init__(_dom_classes=(base_class, *classes), **kw)
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
        self.lang: str = lang if lang in LANGUAGES else detect_language()
        # the Japanese font stack: xm-ja
        classes = ("xm-step", f"xm-step-{self.STEP}", *(("xm-ja",) if self.lang == "ja" else ()))
        super().__init__(_dom_classes=classes, **kw)
        self.standalone = standalone
        self._bindings: list[tuple[Any, str, Callable[[str], str]]] = []
        self._ui_lock = threading.RLock()
        self.title = self.bind(html(self._head_html(self.lang)), "value", self._head_html)
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
        render = _renderer(key, tag=tag, cls=cls, **params)
        self._bindings.append((widget, attr, render))
        setattr(widget, attr, render(self.lang))
        return widget

    def bound(self, factory: Callable[..., Any], attr: str, key: str, /, *args: Any, **kw: Any) -> Any:
        """``factory(*args, attr=<key's text>, **kw)``, bound to *key*: made
        with its text, so binding it changes (and sends) nothing more."""
        render = _renderer(key)
        return self.bind(factory(*args, **{attr: render(self.lang)}, **kw), attr, render)

    def label(self, key: str, *classes: str, tag: str = "div", **params: Any) -> widgets.HTML:
        """A text paragraph bound to a catalog entry."""
        render = _renderer(key, tag=tag, **params)
        # made with its text: binding it then changes (and sends) nothing
        return self.bind(html(render(self.lang), *classes), "value", render)

    def field_label(self, label_key: str, hint_key: str | None = None, optional: bool = False) -> widgets.HTML:
        """A label above an input, with guidance under it."""
        def render(lang: str) -> str:
            return _html.render("label", label=page_text(label_key, lang),
                                hint=page_text(hint_key, lang) if hint_key else "",
                                optional=page_text("ui.csr.optional", lang) if optional else "")
        return self.bind(html(render(self.lang)), "value", render)

    def new_message(self, base_class: str = "xm-message", *classes: str) -> Message:
        m = Message(base_class, self.lang, *classes)
        self._message_widgets.append(m)
        return m

    def field_message(self, name: str) -> Message:
        return self.new_message("xm-field-message", f"xm-field-{name}")

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
