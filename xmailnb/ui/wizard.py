"""The whole workbook in one widget: header, stepper, the step shown, Next.

The header says the server's state in one line; the stepper shows every
step's state as :func:`xmailnb.checks.progress.step_progress` reads it (the one rule
the command line and the notebooks share), refreshed after every change made
on this page, after a rollback, and after changes made elsewhere (the
command line, another page) while the page is open (:mod:`.watch`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import ipywidgets as widgets
import traitlets

from ..errors import XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language, page_text
from ..status import Status
from ..mailroot import MailRoot
from ..checks import progress as progressmod
from ..checks.progress import Progress, StepState, step_progress
from ..mailroot.sandbox import reset_sandbox
from ..steps import STEPS as ORDER, Step, Target
from . import _html
from ._base import (CSS, Message, StepView, as_mailroot, box, button, classed, error_msgs, html, set_flag_class, shared,
                    show, status_icon)
from .csr import CsrStep
from .diagnose import DiagnoseStep
from .install import InstallStep
from .notice import NoticeStep
from .probe import ProbeStep
from .reset_watch import watch_resets
from .classroom import class_controls
from .settings import SettingsStep
from .submit import SubmitStep
from .watch import MailRootWatch

__all__ = ["Wizard", "STEPS"]

log = logging.getLogger(__name__)

_VIEWS: dict[Step, type[StepView]] = {view.STEP: view for view in (
    DiagnoseStep, CsrStep, SubmitStep, InstallStep, SettingsStep, ProbeStep, NoticeStep)}
#: The workbook's steps in order (:data:`xmailnb.steps.STEPS`), and their views.
STEPS: tuple[tuple[Step, type[StepView]], ...] = tuple((step, _VIEWS[step]) for step in ORDER)
STATE_CLASSES = tuple(f"xm-state-{s}" for s in StepState)
_MARKS = {StepState.TODO: "○", StepState.DONE: "✔", StepState.ATTENTION: "⚠", StepState.BROKEN: "✖"}


class _Steps(Mapping[Step, StepView]):
    """Step name -> step widget, built on first access.

    Every widget costs a message to the browser and a model there: building
    only the step shown makes the dashboard interactive about as fast as an
    empty Voilà page; the others are built when first opened.
    """

    def __init__(self, build: Callable[[Step], StepView]) -> None:
        self._build = build
        self._built: dict[Step, StepView] = {}

    def __getitem__(self, name: Step | str) -> StepView:
        if name not in ORDER:
            raise KeyError(name)
        step = Step(name)
        if step not in self._built:
            self._built[step] = self._build(step)
        return self._built[step]

    def __contains__(self, name: object) -> bool:
        # Mapping's default would build the step just to answer.
        return name in ORDER

    def __iter__(self) -> Iterator[Step]:
        return iter(ORDER)

    def __len__(self) -> int:
        return len(ORDER)

    def built(self) -> dict[Step, StepView]:
        """The steps built so far, in order."""
        return {n: self._built[n] for n in ORDER if n in self._built}


class Wizard(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """The seven steps with their states; everything is read again after every change.

    Attributes:
        steps: step name -> step widget, in order; a step is built when it
            is first opened (or looked up).
        current: the step shown (a :class:`~xmailnb.steps.Step`).
        nav: step name -> its navigation button (``xm-nav-<step>``), which
            carries exactly one of ``xm-state-todo|done|attention|broken``.
        progress: the latest :class:`~xmailnb.checks.progress.Progress`.
        restarting: True while :meth:`start_afresh` moves the page to step 1
            (a change of ``current`` the trainee did not make).
    """

    current = traitlets.UseEnum(Step, default_value=Step.DIAGNOSE)
    lang = traitlets.Unicode("en")

    def __init__(self, mailroot: str | os.PathLike[str] | MailRoot | None = None,
                 lang: str | None = None, *, watch_interval: float | None = 2.0, **kw: Any) -> None:
        lang = lang if lang in LANGUAGES else detect_language()
        # made with its classes (one message, ui/_base.py); xm-ja: the Japanese font stack
        super().__init__(_dom_classes=("xm-app", *(("xm-ja",) if lang == "ja" else ())), **kw)
        self.lang = lang
        self._lock = threading.RLock()
        self.progress: Progress | None = None
        self._diagnosed = False
        self.restarting = False
        self.header = classed(widgets.HTML, "xm-header", value="", style=shared("html_style"),
                              layout=widgets.Layout(flex="1 1 auto"))
        self.lang_switch = classed(widgets.ToggleButtons, "xm-lang", options=self._lang_options(), value=self.lang,
                                   style={"button_width": "6em"},
                                   layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.steps: _Steps = _Steps(self._build_step)
        self.nav: dict[Step, widgets.Button] = {}
        self.mailroot: MailRoot | None
        try:
            self.mailroot = as_mailroot(mailroot)
        except XmailnbError as exc:
            self.mailroot = None
            self.error = Message(lang=self.lang)
            self.error.show_error(exc)
            self.children = [html(CSS), self.lang_switch, self.error]
            self.lang_switch.observe(lambda c: self.set_lang(c["new"]), "value")
            return
        # The seven buttons share one layout and one style (fewer models).
        nav_layout = widgets.Layout(width="auto")
        nav_style = widgets.ButtonStyle()
        for name in ORDER:
            nav_button = classed(widgets.Button, "xm-nav", f"xm-nav-{name}", layout=nav_layout, style=nav_style)
            nav_button.on_click(lambda _b, n=name: self.show(n))
            self.nav[name] = nav_button
        self.navbar = box(self.nav.values(), "xm-navbar", horizontal=True)
        self.orientation = html("", "xm-orientation-box")
        self.next_button = button("xm-next", hideable=True)
        self.next_button.on_click(lambda _b: self.next())
        footer = box([self.next_button], "xm-footer", horizontal=True)
        self.body = box([], "xm-body")
        top = box([self.header, self.lang_switch], "xm-top", horizontal=True)
        practice = self._practice_bar() if self.mailroot.is_sandbox else []
        # Banner after a sandbox reset (classroom board, `xmailnb sandbox --reset`): ui/reset_watch.py.
        self.reset_notice = watch_resets(self)
        # "I'm stuck" and the trainer's messages, in a class only: ui/classroom.py.
        self.class_controls = class_controls(self)
        self.children = [html(CSS), self.reset_notice, top, *practice,
                         *([self.class_controls] if self.class_controls else []), self.orientation, self.navbar,
                         self.body, footer]
        self.lang_switch.observe(lambda c: self.set_lang(c["new"]), "value")
        self.watch = MailRootWatch(self.mailroot, self._changed_elsewhere, interval=watch_interval)
        self._draw_orientation()
        # A reload opens the step the trainee was on.
        first = progressmod.last_step(self.mailroot)
        with self._lock:
            self.current = first if first is not None else Step.DIAGNOSE
            self._opened(self.current)
            self.body.children = [self.steps[self.current]]
            self.refresh_all()

    # -- building ----------------------------------------------------------------------
    def _build_step(self, name: Step) -> StepView:
        step = dict(STEPS)[name](self.mailroot, self.lang, standalone=False)
        step.observe(lambda _c: self.refresh_all(), "changes")
        if isinstance(step, DiagnoseStep):
            step.navigate = self.go_to
            step.refresh_hook = self._diagnose_again
            if self.progress is not None:
                step.show_report(self.progress.report)
        if self.progress is not None:
            step.set_progress_state(self.progress[name])
        return step

    def _lang_options(self) -> list[tuple[str, str]]:
        return [(page_text(f"ui.lang.{code}", code), code) for code in LANGUAGES]

    def _practice_bar(self) -> list[Any]:
        self.practice_text = html("", "xm-practice-text")
        self.start_over = button("xm-start-over")
        self.start_over.on_click(lambda _b: self._ask_start_over())
        bar = widgets.HBox([self.practice_text, self.start_over])
        bar.add_class("xm-practice-bar")
        bar.add_class("xm-practice-notice")
        bar.add_class("xm-sandbox")
        self.start_over_box = widgets.VBox([], layout=widgets.Layout(display="none"))
        self.start_over_box.add_class("xm-confirm")
        self.start_over_box.add_class("xm-start-over-confirm")
        self.start_over_message = Message(lang=self.lang)
        self.start_over_message.add_class("xm-start-over-result")
        self._draw_practice()
        return [bar, self.start_over_box, self.start_over_message]

    # -- reading the MailRoot again --------------------------------------------------------
    def refresh_all(self) -> None:
        """Read the MailRoot again: the progress of every step, the diagnosis,
        the header, and every step built so far."""
        if self.mailroot is None:
            return
        with self._lock:
            seen = self.watch.signature()
            progress = step_progress(self.mailroot)
            self.progress = progress
            with self.hold_trait_notifications():
                for name, step in self.steps.built().items():
                    if isinstance(step, DiagnoseStep):
                        step.show_report(progress.report)
                    else:
                        step.refresh()
                    step.set_progress_state(progress[name])
                self._draw_header()
                self._draw_nav()
            self.watch.mark_seen(seen)

    def _diagnose_again(self) -> None:
        if self.mailroot is not None:
            progressmod.record_diagnosis(self.mailroot)
        self.refresh_all()

    def _opened(self, name: Step) -> None:
        """Remember the step shown (a reload opens it again); opening step 1
        shows the diagnosis, which counts as run."""
        mr = self.mailroot
        if mr is None:
            return

        def write() -> None:
            progressmod.record_step(mr, name)
            if name is Step.DIAGNOSE and not self._diagnosed:
                progressmod.record_diagnosis(mr)
                self._diagnosed = True
        self.watch.own_write(write)

    def _changed_elsewhere(self) -> None:
        log.info("MailRoot %s changed outside this page: reading it again", getattr(self.mailroot, "path", "?"))
        self.refresh_all()

    # -- navigation ----------------------------------------------------------------------
    def show(self, name: Step | str) -> None:
        """Open step *name* (any step can be opened directly)."""
        if name not in self.steps:
            raise ValueError(f"unknown step {name!r}")
        name = Step(name)
        first_diagnosis = name is Step.DIAGNOSE and not self._diagnosed
        with self._lock, self.hold_trait_notifications():
            self._opened(name)
            self.current = name
            self.body.children = [self.steps[name]]
            self._draw_nav()
            for other, step in self.steps.built().items():
                if isinstance(step, NoticeStep):
                    step.on_screen = other == name
        # The step is shown from its title: focusing its button in the
        # stepper brings the stepper, and the title under it, into view.
        self.nav[name].focus()
        notice = self.steps.built().get(Step.NOTICE)
        if name is Step.NOTICE and isinstance(notice, NoticeStep):
            # On screen now: the notice counts as shown (the stepper follows).
            notice.shown()
            self.refresh_all()
        elif first_diagnosis:
            self.refresh_all()

    def go_to(self, target: Target) -> None:
        """Open the step of *target* and point at its control."""
        self.show(target.step)
        step = self.steps[target.step]
        for widget in _walk(step):
            set_flag_class(widget, "xm-highlight", target.control is not None
                           and target.control in getattr(widget, "_dom_classes", ()))

    def next(self) -> None:
        index = ORDER.index(self.current)
        if index + 1 < len(ORDER):
            self.show(ORDER[index + 1])

    def state(self, name: Step) -> StepState:
        """The state the stepper shows for step *name*."""
        return self.progress[name] if self.progress is not None else StepState.TODO

    def _draw_nav(self) -> None:
        if self.mailroot is None or not self.nav:
            return
        for name in ORDER:
            nav_button = self.nav[name]
            state = self.state(name)
            nav_button.description = page_text("ui.nav.button", self.lang, n=name.number, mark=_MARKS[state],
                                               name=Msg.of(f"ui.nav.{name}"))
            nav_button.tooltip = page_text(f"ui.state.{state}", self.lang)
            for cls in STATE_CLASSES:
                set_flag_class(nav_button, cls, cls == f"xm-state-{state}")
            set_flag_class(nav_button, "xm-nav-current", name == self.current)
        index = ORDER.index(self.current)
        has_next = index + 1 < len(ORDER)
        show(self.next_button, has_next)
        if has_next:
            following = ORDER[index + 1]
            self.next_button.description = page_text("ui.nav.next", self.lang, n=following.number,
                                                     name=Msg.of(f"ui.nav.{following}"))

    # -- start over (practice sandbox) ------------------------------------------------------
    def _ask_start_over(self) -> None:
        if self.mailroot is None or not self.mailroot.is_sandbox:
            return
        if not self.start_over_box.children:
            self.start_over_yes = button("xm-start-over-yes", button_style="danger")
            self.start_over_yes.on_click(lambda _b: self.start_over_now())
            self.start_over_cancel = button("xm-start-over-cancel")
            self.start_over_cancel.on_click(lambda _b: show(self.start_over_box, False))
            self.start_over_question = html("", "xm-start-over-question")
            actions = widgets.HBox([self.start_over_yes, self.start_over_cancel])
            actions.add_class("xm-actions")
            self.start_over_box.children = [self.start_over_question, actions]
        self._draw_practice()
        self.start_over_message.clear()
        show(self.start_over_box, True)

    def start_over_now(self) -> bool:
        """Replace the practice sandbox with a fresh one (the old one is
        archived whole) and start the workbook again on it.  Never touches a
        MailRoot that is not the sandbox.  True when it was reset."""
        if self.mailroot is None or not self.mailroot.is_sandbox:
            return False
        show(self.start_over_box, False)
        with self._lock:
            probe = self.steps.built().get(Step.PROBE)
            if isinstance(probe, ProbeStep):
                probe.stop_practice()
            try:
                reset_sandbox(self.mailroot.path)
            except XmailnbError as exc:
                self.start_over_message.show(Status.ERROR, *error_msgs(exc))
                return False
            except OSError as exc:
                self.start_over_message.show(Status.ERROR, *error_msgs(exc, "starting over with a fresh sandbox"))
                return False
            self.start_afresh()
            # The banner says the sandbox was reset (ui/reset_watch.py), and
            # everything is read again.
            if not self.reset_notice.check():
                self.refresh_all()
        return True

    def start_afresh(self) -> None:
        """Every step starts afresh at step 1 (forms, uploads, messages):
        the sandbox under the page was replaced (here or by the trainer)."""
        with self._lock:
            probe = self.steps.built().get(Step.PROBE)
            if isinstance(probe, ProbeStep):
                probe.stop_practice()
            self.steps = _Steps(self._build_step)
            self.progress = None
            self._diagnosed = False
            # Step 1 because the sandbox was replaced, not because the trainee
            # went there: the classroom's record does not count it as acting.
            self.restarting = True
            try:
                self.current = Step.DIAGNOSE
            finally:
                self.restarting = False
            self._opened(self.current)
            self.body.children = [self.steps[Step.DIAGNOSE]]

    # -- language --------------------------------------------------------------------------
    def set_lang(self, lang: str) -> None:
        """Re-render every label of the wizard and of every step in *lang*."""
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        with self._lock, self.hold_trait_notifications():
            self.lang = lang
            set_flag_class(self, "xm-ja", lang == "ja")
            if self.lang_switch.value != lang:
                self.lang_switch.value = lang
            if self.mailroot is None:
                self.error.set_lang(lang)
                return
            for step in self.steps.built().values():
                step.set_lang(lang)
            self._draw_header()
            self._draw_orientation()
            if self.mailroot.is_sandbox:
                self._draw_practice()
            self._draw_nav()

    def _draw_header(self) -> None:
        assert self.mailroot is not None
        if self.progress is None:
            return
        status, lines = self.progress.headline()
        self.header.value = _html.render(
            "header", title=page_text("ui.app.title", self.lang), status=status, icon=status_icon(status, self.lang),
            headline=" — ".join(m.page(self.lang) for m in lines),
            where=page_text("ui.app.mailroot", self.lang, path=str(self.mailroot.path)))

    def _draw_orientation(self) -> None:
        legend = [(_MARKS[s], f"xm-state-{s}", page_text(f"ui.legend.{s}", self.lang))
                  for s in StepState]
        self.orientation.value = _html.render("orientation", intro=page_text("ui.app.intro", self.lang),
                                              legend=legend)

    def _draw_practice(self) -> None:
        self.practice_text.value = page_text("ui.app.practice", self.lang)
        self.start_over.description = page_text("ui.start_over.button", self.lang)
        self.start_over_message.set_lang(self.lang)
        if self.start_over_box.children:
            self.start_over_question.value = _html.render("message", lines=[
                page_text("ui.start_over.question", self.lang), page_text("ui.start_over.detail", self.lang)])
            self.start_over_yes.description = page_text("ui.start_over.yes", self.lang)
            self.start_over_cancel.description = page_text("ui.common.cancel", self.lang)


def _walk(widget: Any) -> Iterator[Any]:
    stack = [widget]
    while stack:
        w = stack.pop()
        yield w
        stack.extend(getattr(w, "children", ()) or ())


# Kept for callers that name the message type.
_ = Msg
