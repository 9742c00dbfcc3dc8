"""Shared pieces of the step widgets: the step base class, messages, labels.

Every visible word comes from the catalogs (domain ``ui`` plus the core's own
keys): a step keeps a list of label bindings and re-renders them all when the
language changes, and outcome messages are kept as :class:`~xmailnb.i18n.Msg`
values so they too follow the language.
"""

from __future__ import annotations

import base64
import concurrent.futures
import html
import os
import threading
from typing import Any, Callable, ClassVar, Iterable, Sequence

import ipywidgets as widgets
import traitlets

from ..errors import XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language, text
from ..mailroot.layout import MailRoot
from ..mailroot.resolve import resolve

__all__ = [
    "STATES",
    "Step",
    "Message",
    "as_mailroot",
    "escape",
    "set_status_class",
    "set_flag_class",
    "data_uri_link",
    "button",
    "error_msgs",
]

STATES = ("init", "ready", "done", "error")
STATUS_CLASSES = ("xm-ok", "xm-warn", "xm-error", "xm-info")

# One stylesheet for every step; repeated <style> blocks are harmless, and
# each step then looks right on its own in a notebook cell.
_CSS = """
<style>
.xm-step { padding: 4px 0; }
.xm-finding { padding: 4px 8px; margin: 2px 0; border-left: 4px solid #9e9e9e; }
.xm-finding.xm-ok { border-color: #2e7d32; }
.xm-finding.xm-warn { border-color: #ef6c00; background: #fff8e1; }
.xm-finding.xm-error { border-color: #c62828; background: #ffebee; }
.xm-finding.xm-info { border-color: #1565c0; }
.xm-message.xm-ok, .xm-field-message.xm-ok { color: #2e7d32; }
.xm-message.xm-error, .xm-field-message.xm-error { color: #c62828; }
.xm-message.xm-warn, .xm-field-message.xm-warn { color: #ef6c00; }
.xm-invalid input, .xm-invalid textarea, input.xm-invalid, textarea.xm-invalid,
.xm-invalid { outline: 2px solid #c62828; }
.xm-fix { color: #555; font-size: 90%; }
.xm-practice-notice { background: #e3f2fd; padding: 4px 8px; border-left: 4px solid #1565c0; }
.xm-progress::before { content: ""; display: inline-block; width: 0.8em; height: 0.8em;
  margin-right: 0.5em; border: 2px solid #1565c0; border-right-color: transparent;
  border-radius: 50%; animation: xm-spin 0.8s linear infinite; }
@keyframes xm-spin { to { transform: rotate(360deg); } }
.xm-nav-current { font-weight: bold; }
</style>
"""


def escape(value: str) -> str:
    return html.escape(value, quote=True)


def as_mailroot(mailroot: str | os.PathLike[str] | MailRoot | None) -> MailRoot:
    """The MailRoot a widget works on; resolved when the widget is created."""
    if isinstance(mailroot, MailRoot):
        return mailroot
    return resolve(mailroot)


def set_status_class(widget: Any, status: str | None) -> None:
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


def button(**kw: Any) -> widgets.Button:
    """A button as wide as its label (the default width cuts longer labels)."""
    # align_self: in a VBox a button would otherwise stretch to full width.
    kw.setdefault("layout", widgets.Layout(width="auto", min_width="9em", align_self="flex-start"))
    return widgets.Button(**kw)


def data_uri_link(data: bytes, filename: str, mime: str, label: str, css_class: str) -> str:
    """An anchor that downloads *data* from a data: URI (no server round trip)."""
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (f'<a class="{escape(css_class)}" download="{escape(filename)}" href="{uri}">'
            f"{escape(label)}</a>")


def error_msgs(exc: BaseException) -> list[Msg]:
    """What to show for *exc*: the error and its fix, never a traceback."""
    if isinstance(exc, XmailnbError):
        return [exc.msg] + ([exc.fix] if exc.fix is not None else [])
    return [Msg.of("ui.internal", error=type(exc).__name__)]


def _render_lines(msgs: Sequence[Msg], lang: str) -> str:
    parts = []
    for i, msg in enumerate(msgs):
        body = escape(msg.render(lang)).replace("\n", "<br>")
        parts.append(f'<div class="{"xm-fix" if i else "xm-text"}">{body}</div>')
    return "".join(parts)


class Message(widgets.HTML):
    """An outcome message: status class plus the rendered messages.

    ``base_class`` is ``xm-message`` for a step's latest outcome and
    ``xm-field-message`` for the note beside one input.
    """

    def __init__(self, base_class: str = "xm-message", lang: str = "en", **kw: Any) -> None:
        super().__init__(**kw)
        self.add_class(base_class)
        self._lang = lang
        self.status: str | None = None
        self.msgs: list[Msg] = []

    def show(self, status: str, *msgs: Msg) -> None:
        self.status, self.msgs = status, list(msgs)
        self._draw()

    def show_error(self, exc: BaseException) -> None:
        self.show("error", *error_msgs(exc))

    def clear(self) -> None:
        self.status, self.msgs = None, []
        self._draw()

    def set_lang(self, lang: str) -> None:
        self._lang = lang
        self._draw()

    def _draw(self) -> None:
        with self.hold_trait_notifications():
            self.value = _render_lines(self.msgs, self._lang) if self.msgs else ""
            set_status_class(self, self.status)


class Step(widgets.VBox):
    """Base of every step: a VBox with a state the wizard can observe.

    Attributes:
        state: ``"init"``, ``"ready"``, ``"done"`` or ``"error"``.
        changes: incremented each time the step changed the MailRoot, so the
            wizard can run the diagnosis again.
        mailroot: the :class:`~xmailnb.mailroot.layout.MailRoot` (``None`` when it
            could not be used; the step then shows why and nothing else).
    """

    STEP: ClassVar[str] = ""

    state = traitlets.Enum(STATES, default_value="init")
    changes = traitlets.Int(0)

    def __init__(self, mailroot: str | os.PathLike[str] | MailRoot | None = None,
                 lang: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.lang: str = lang if lang in LANGUAGES else detect_language()
        self._bindings: list[tuple[Any, str, Callable[[str], str]]] = []
        self._ui_lock = threading.RLock()
        self.add_class("xm-step")
        self.add_class(f"xm-step-{self.STEP}")
        self.title = widgets.HTML()
        self.bind(self.title, "value", f"ui.{self.STEP}.title", wrap="h3")
        self._message_widgets: list[Message] = []
        self.message = self.new_message()
        self.mailroot: MailRoot | None
        try:
            self.mailroot = as_mailroot(mailroot)
        except XmailnbError as exc:
            self.mailroot = None
            self.message.show_error(exc)
            self.children = [widgets.HTML(_CSS), self.title, self.message]
            self.state = "error"
            return
        body = self._build()
        tail = [] if any(w is self.message for w in body) else [self.message]
        self.children = [widgets.HTML(_CSS), self.title, *body, *tail]
        self.refresh()

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
        """Re-read the MailRoot and show its current state."""
        if self.mailroot is None:
            return
        with self._ui_lock:
            try:
                self._refresh()
            except Exception as exc:  # shown to the user, never a traceback
                self.message.show_error(exc)
                self.state = "error"

    def set_lang(self, lang: str) -> None:
        """Re-render every label in *lang* (``"ja"`` or ``"en"``)."""
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        with self._ui_lock, self.hold_trait_notifications():
            self.lang = lang
            for widget, attr, render in self._bindings:
                setattr(widget, attr, render(lang))
            for child in self._messages():
                child.set_lang(lang)
            if self.mailroot is not None:
                self._relabel()

    # -- helpers for subclasses ------------------------------------------------------
    def t(self, key: str, /, **params: Any) -> str:
        return text(key, self.lang, **params)

    def bind(self, widget: Any, attr: str, key: str | Msg | Callable[[str], str], *,
             wrap: str | None = None, html_text: bool = False, **params: Any) -> Any:
        """Set ``widget.attr`` from a catalog entry now and on each language change.

        *wrap* puts the (escaped) text in that HTML element; *html_text*
        escapes it for an HTML widget without a wrapping element.
        """
        if callable(key) and not isinstance(key, (str, Msg)):
            render = key
        else:
            msg = key if isinstance(key, Msg) else Msg(key, params)

            def render(lang: str) -> str:
                value = msg.render(lang)
                if wrap:
                    return f"<{wrap}>{escape(value)}</{wrap}>"
                return escape(value) if html_text else value
        self._bindings.append((widget, attr, render))
        setattr(widget, attr, render(self.lang))
        return widget

    def label(self, key: str, *, css: str | None = None, **params: Any) -> widgets.HTML:
        """A text paragraph bound to a catalog entry."""
        w = widgets.HTML()
        if css:
            w.add_class(css)
        return self.bind(w, "value", key, wrap="div", **params)

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
        message instead of a traceback in the page."""
        def run(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:
                self.message.show_error(exc)
                self.state = "error"
        return run

    def mark_changed(self) -> None:
        self.changes += 1

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the step's background work (key generation, probe) and
        its display to finish; True when done (or when none is running)."""
        future: concurrent.futures.Future[Any] | None = getattr(self, "future", None)
        if future is None:
            return True
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        except Exception:
            pass  # the step has shown the error
        return True


def css_id(value: str) -> str:
    return value.replace(".", "-")
