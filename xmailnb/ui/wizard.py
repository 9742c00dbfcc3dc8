"""The whole workbook in one widget: header, language switch, navigation, steps."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import ipywidgets as widgets
import traitlets

from ..errors import XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language, text
from ..mailroot.layout import MailRoot
from ._base import Message, Step, _CSS, as_mailroot, button, escape, set_flag_class
from .csr import CsrStep
from .diagnose import DiagnoseStep
from .install import InstallStep
from .notice import NoticeStep
from .probe import ProbeStep
from .reset_watch import watch_resets
from .settings import SettingsStep
from .submit import SubmitStep

__all__ = ["Wizard", "STEPS"]

#: Step names in order, and their classes.
STEPS: tuple[tuple[str, type[Step]], ...] = (
    ("diagnose", DiagnoseStep), ("csr", CsrStep), ("submit", SubmitStep), ("install", InstallStep),
    ("settings", SettingsStep), ("probe", ProbeStep), ("notice", NoticeStep),
)


def _quick_done(name: str, mr: MailRoot) -> bool:
    """Whether a step not built yet would show as complete.

    The same rules the steps apply, read straight from the MailRoot, so the
    navigation can mark progress without building every step's widgets.
    """
    if name == "csr":
        return mr.pending_csr.is_file()
    if name == "submit":
        if mr.file("sslconf/practice-ca/issued/server.crt").is_file():
            return True
        from ..flows.actions import CHECKLIST, read_checklist

        return set(CHECKLIST) <= set(read_checklist(mr))
    if name == "install":
        return mr.server_cert.is_file() and mr.server_key.is_file()
    if name == "settings":
        from ..mailroot.servertab import ServerTab, tls_inconsistencies

        try:
            return not any(i.severity == "error" for i in tls_inconsistencies(ServerTab.read(mr.server_tab)))
        except OSError:
            return False
    if name == "notice":
        return mr.server_cert.is_file()
    return False


class _Steps(Mapping[str, Step]):
    """Step name -> step widget, built on first access.

    Every widget costs a message to the browser and a model there: building
    only the step shown makes the dashboard interactive about as fast as an
    empty Voilà page; the others are built when first opened.
    """

    def __init__(self, build: Callable[[str], Step]) -> None:
        self._build = build
        self._built: dict[str, Step] = {}

    def __getitem__(self, name: str) -> Step:
        if name not in _STEP_NAMES:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        # Mapping's default would build the step just to answer.
        return name in _STEP_NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(_STEP_NAMES)

    def __len__(self) -> int:
        return len(_STEP_NAMES)

    def built(self) -> dict[str, Step]:
        """The steps built so far, in order."""
        return {n: self._built[n] for n in _STEP_NAMES if n in self._built}


_STEP_NAMES = tuple(name for name, _cls in STEPS)


class Wizard(widgets.VBox):
    """The seven steps with navigation; the diagnosis re-runs after every change.

    Attributes:
        steps: step name -> step widget, in order; a step is built when it
            is first opened (or looked up).
        current: the name of the step shown.
        nav: step name -> its navigation button (``xm-nav-<step>``).
    """

    current = traitlets.Unicode("diagnose")
    lang = traitlets.Unicode("en")

    def __init__(self, mailroot: str | os.PathLike[str] | MailRoot | None = None,
                 lang: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.add_class("xm-app")
        self.lang = lang if lang in LANGUAGES else detect_language()
        self.header = widgets.HTML()
        self.header.add_class("xm-header")
        self.lang_switch = widgets.ToggleButtons(options=self._lang_options(), value=self.lang,
                                                 style={"button_width": "6em"},
                                                 layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.lang_switch.add_class("xm-lang")
        self.steps: _Steps = _Steps(self._build_step)
        self.nav: dict[str, widgets.Button] = {}
        self.mailroot: MailRoot | None
        try:
            self.mailroot = as_mailroot(mailroot)
        except XmailnbError as exc:
            self.mailroot = None
            self.error = Message(lang=self.lang)
            self.error.show_error(exc)
            self.children = [widgets.HTML(_CSS), self.lang_switch, self.error]
            self.lang_switch.observe(lambda c: self.set_lang(c["new"]), "value")
            return
        for name, _cls in STEPS:
            nav_button = button()
            nav_button.add_class(f"xm-nav-{name}")
            nav_button.add_class("xm-nav")
            nav_button.on_click(lambda _b, n=name: self.show(n))
            self.nav[name] = nav_button
        self.next_button = button(button_style="success", icon="arrow-right")
        self.next_button.add_class("xm-next")
        self.next_button.on_click(lambda _b: self.next())
        self.body = widgets.VBox()
        self.body.add_class("xm-body")
        navbar = widgets.HBox(list(self.nav.values()), layout=widgets.Layout(flex_flow="row wrap"))
        navbar.add_class("xm-navbar")
        self.header.layout = widgets.Layout(flex="1 1 auto")
        top = widgets.HBox([self.header, self.lang_switch],
                           layout=widgets.Layout(justify_content="space-between"))
        # Banner after a sandbox reset (classroom board, `xmailnb sandbox --reset`): ui/reset_watch.py.
        self.reset_notice = watch_resets(self)
        self.children = [widgets.HTML(_CSS), self.reset_notice, top, navbar, self.body, self.next_button]
        self.lang_switch.observe(lambda c: self.set_lang(c["new"]), "value")
        self._draw_header()
        self.show("diagnose")

    def _build_step(self, name: str) -> Step:
        step = dict(STEPS)[name](self.mailroot, self.lang)
        step.observe(lambda _c: self._draw_nav(), "state")
        step.observe(lambda _c, n=name: self._step_changed(n), "changes")
        return step

    def _lang_options(self) -> list[tuple[str, str]]:
        return [(text(f"ui.lang.{code}", code), code) for code in LANGUAGES]

    # -- navigation ----------------------------------------------------------------------
    def show(self, name: str) -> None:
        """Open step *name* (any step can be opened directly)."""
        if name not in self.steps:
            raise ValueError(f"unknown step {name!r}")
        with self.hold_trait_notifications():
            self.current = name
            self.body.children = [self.steps[name]]
            self._draw_nav()

    def next(self) -> None:
        names = list(self.steps)
        index = names.index(self.current)
        if index + 1 < len(names):
            self.show(names[index + 1])

    def _draw_nav(self) -> None:
        if self.mailroot is None or not self.nav:
            return
        names = list(self.steps)
        built = self.steps.built()
        for index, name in enumerate(names, 1):
            nav_button = self.nav[name]
            step = built.get(name)
            state = step.state if step is not None else ("done" if _quick_done(name, self.mailroot) else "init")
            done = state == "done"
            mark = text("ui.nav.done_mark", self.lang) if done else ""
            nav_button.description = text("ui.nav.button", self.lang, n=index,
                                      name=text(f"ui.nav.{name}", self.lang), mark=mark)
            nav_button.button_style = "primary" if name == self.current else ("success" if done else "")
            set_flag_class(nav_button, "xm-nav-current", name == self.current)
            set_flag_class(nav_button, "xm-done", done)
            set_flag_class(nav_button, "xm-error", state == "error")
        index = names.index(self.current)
        has_next = index + 1 < len(names)
        current = built.get(self.current)
        offer = has_next and current is not None and current.state == "done"
        self.next_button.layout.display = None if offer else "none"
        self.next_button.disabled = not offer
        if has_next:
            self.next_button.description = text("ui.nav.next", self.lang,
                                                name=text(f"ui.nav.{names[index + 1]}", self.lang))

    def _step_changed(self, name: str) -> None:
        # Anything that changed the MailRoot may change every finding, the
        # archive list, the settings shown and the notice's host name.
        for other, step in self.steps.built().items():
            if other != name:
                step.refresh()
        self._draw_nav()

    # -- language --------------------------------------------------------------------------
    def set_lang(self, lang: str) -> None:
        """Re-render every label of the wizard and of every step in *lang*."""
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        with self.hold_trait_notifications():
            self.lang = lang
            if self.lang_switch.value != lang:
                self.lang_switch.value = lang
            if self.mailroot is None:
                self.error.set_lang(lang)
                return
            for step in self.steps.built().values():
                step.set_lang(lang)
            self._draw_header()
            self._draw_nav()

    def _draw_header(self) -> None:
        assert self.mailroot is not None
        title = escape(text("ui.app.title", self.lang))
        where = escape(text("mailroot.using", self.lang, path=str(self.mailroot.path)))
        practice = ""
        if self.mailroot.is_sandbox:
            practice = (f'<div class="xm-practice-notice xm-sandbox">'
                        f'{escape(Msg.of("ui.app.practice").render(self.lang))}</div>')
        self.header.value = f'<h2>{title}</h2><div class="xm-mailroot">{where}</div>{practice}'
