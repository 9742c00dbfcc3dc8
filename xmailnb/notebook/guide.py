"""What a teaching notebook says before its step: which MailRoot it works on,
which earlier steps it needs, and where the whole workbook stands.

The notebooks in ``notebooks/`` reach these through the names the package
exports (``xmailnb.open_mailroot``, ``xmailnb.require_steps``,
``xmailnb.progress_overview``), so that they keep working when modules move.
Every state comes from :func:`xmailnb.checks.progress.step_progress`, the rule the
dashboard's stepper, the command line and the classroom board share; step
names are the dashboard's own (``ui.nav.<step>``), so a trainee who switches
between a notebook and the dashboard reads the same words.

>>> need = require_steps("install", mr, lang="en")          # doctest: +SKIP
>>> need.ready                                              # doctest: +SKIP
False
>>> print(need)                                             # doctest: +SKIP
✖ Do step 2 (Key and CSR) first: open 02_csr.ipynb, go through it, then come back to this notebook.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checks.progress import STEPS, StepState, step_progress
from ..errors import XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language
from ..logs import log_unexpected
from ..mailroot.layout import MailRoot
from ..mailroot.resolve import resolve
from ..steps import Step

__all__ = [
    "NOTEBOOKS",
    "START_NOTEBOOK",
    "REQUIRES",
    "RECOMMENDS",
    "Requirement",
    "Prerequisites",
    "Overview",
    "open_mailroot",
    "require_steps",
    "progress_overview",
    "step_ref",
    "language",
]

log = logging.getLogger(__name__)

#: The teaching notebook of each step (in ``notebooks/``).
NOTEBOOKS: Mapping[Step, str] = {
    Step.DIAGNOSE: "01_diagnose.ipynb",
    Step.CSR: "02_csr.ipynb",
    Step.SUBMIT: "03_submit.ipynb",
    Step.INSTALL: "04_install.ipynb",
    Step.SETTINGS: "05_settings.ipynb",
    Step.PROBE: "06_probe.ipynb",
    Step.NOTICE: "07_notice.ipynb",
}
START_NOTEBOOK = "00_start_here.ipynb"

#: Steps that must be done before a step can do its work.  The diagnosis is
#: never required: it stays "not done" while there is no certificate, which
#: is the very thing the steps after it fix.
REQUIRES: Mapping[Step, tuple[Step, ...]] = {
    Step.DIAGNOSE: (),
    Step.CSR: (),
    Step.SUBMIT: (Step.CSR,),
    Step.INSTALL: (Step.CSR, Step.SUBMIT),
    Step.SETTINGS: (Step.INSTALL,),
    Step.PROBE: (Step.INSTALL,),
    Step.NOTICE: (Step.INSTALL,),
}
#: Steps worth doing first, without which the step still works.
RECOMMENDS: Mapping[Step, tuple[Step, ...]] = {
    Step.NOTICE: (Step.PROBE,),
}

_MET = frozenset({StepState.DONE, StepState.ATTENTION})


def language(lang: str | None) -> str:
    """*lang* when it is one the catalogs have, else the user's language."""
    return lang if lang in LANGUAGES else detect_language()


def _check_step(step: str | Step) -> Step:
    try:
        return Step(str(step).strip().lower())
    except ValueError:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}") from None


def step_ref(step: str | Step) -> Msg:
    """The step as the dashboard names it: ``手順 4「インストール」`` /
    ``step 4 (Install)``."""
    step = _check_step(step)
    return Msg.of("guide.step", n=step.number, name=Msg.of(f"ui.nav.{step}"))


def as_mailroot(mailroot: MailRoot | str | os.PathLike[str] | None) -> MailRoot:
    if isinstance(mailroot, MailRoot):
        return mailroot

    return resolve(mailroot)


def _problem_lines(exc: XmailnbError) -> list[Msg]:
    return [exc.msg] + ([exc.fix] if exc.fix is not None else [])


def _unexpected(what: str, exc: Exception) -> Msg:

    path = log_unexpected(log, what, exc)
    return Msg.of("guide.internal", error=type(exc).__name__, log=str(path) if path else "-")


class _Shown:
    """Displays as its text in a notebook (and in ``print``)."""

    lang: str

    def render(self, lang: str | None = None) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.render())


# -- which MailRoot ------------------------------------------------------------------

def open_mailroot(path: str | os.PathLike[str] | None = None, *, lang: str | None = None,
                  quiet: bool = False) -> MailRoot | None:
    """The MailRoot a notebook works on, saying which one it is.

    *path*, else ``MAIL_ROOT``, else the practice sandbox (created on first
    use).  Prints one line naming it (unless *quiet*); when it cannot be
    used, prints what is wrong and how to fix it, and returns ``None``
    (the helpers below then say the same instead of failing).
    """
    lang = language(lang)
    try:
        mr = as_mailroot(path)
    except XmailnbError as exc:
        print("\n".join(m.render(lang) for m in _problem_lines(exc)))
        return None
    if not quiet:
        key = "guide.using.sandbox" if mr.is_sandbox else "guide.using"
        print(Msg.of(key, path=str(mr.path)).render(lang))
    return mr


# -- prerequisites -------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    """One earlier step and where it stands.

    Attributes:
        step: the earlier step (``"csr"``, ...).
        state: its state now (``todo``, ``done``, ``attention``, ``broken``).
        required: needed (else only recommended).
    """

    step: Step
    state: StepState
    required: bool = True

    @property
    def met(self) -> bool:
        """Done, with or without warnings."""
        return self.state in _MET

    def message(self) -> Msg:
        """What to do about it (only meaningful when not met)."""
        params = {"step": step_ref(self.step), "notebook": NOTEBOOKS[self.step]}
        kind = "requires" if self.required else "recommends"
        state = StepState.BROKEN if self.state is StepState.BROKEN else StepState.TODO
        return Msg.of(f"guide.{kind}.{state}", **params)


@dataclass(repr=False)  # shown as its text (IPython prefers a class's own __repr__)
class Prerequisites(_Shown):
    """What a step needs first, as a notebook shows it.

    Attributes:
        step: the step the notebook teaches.
        items: its required and recommended earlier steps, in workbook order.
        problem: why the MailRoot could not be looked at (then ``items`` is empty).
        lang: the language it is shown in.
    """

    step: Step
    items: list[Requirement] = field(default_factory=list)
    problem: list[Msg] = field(default_factory=list)
    lang: str = "en"

    @property
    def ready(self) -> bool:
        """Every required step is done (recommendations aside)."""
        return not self.problem and all(r.met for r in self.items if r.required)

    @property
    def missing(self) -> list[Requirement]:
        """The earlier steps not done (required first, then recommended)."""
        left = [r for r in self.items if not r.met]
        return [r for r in left if r.required] + [r for r in left if not r.required]

    def messages(self) -> list[Msg]:
        if self.problem:
            return list(self.problem)
        out: list[Msg] = []
        for r in self.missing:
            out.append(r.message())
            if r.step is Step.SUBMIT and r.state is StepState.TODO:
                out.append(Msg.of("guide.hint.submit", item=Msg.of("ui.submit.item.receive"),
                                  sign=Msg.of("ui.submit.practice.sign")))
        done = [step_ref(r.step) for r in self.items if r.met]
        if not self.missing:
            if not REQUIRES.get(self.step) and not RECOMMENDS.get(self.step):
                out.append(Msg.of("guide.requires.none"))
            else:
                out.append(Msg.of("guide.requires.met", steps=done))
        elif done:
            out.append(Msg.of("guide.requires.met", steps=done))
        return out

    def render(self, lang: str | None = None) -> str:
        lang = language(lang or self.lang)
        return "\n".join(m.render(lang) for m in self.messages())


def require_steps(step: str | Step, mailroot: MailRoot | str | os.PathLike[str] | None = None, *,
                  lang: str | None = None) -> Prerequisites:
    """Whether the steps before *step* are done, for the notebook of *step*.

    Shown in a notebook (or printed), it says plainly which earlier step is
    missing and which notebook to open, or that everything needed is done.
    It never raises for a MailRoot problem: the message says what is wrong.

    Args:
        step: the notebook's step (``"diagnose"``, ``"csr"``, ``"submit"``,
            ``"install"``, ``"settings"``, ``"probe"``, ``"notice"``).
        mailroot: a :class:`~xmailnb.mailroot.layout.MailRoot` or folder; default
            ``MAIL_ROOT``, else the practice sandbox.
        lang: ``"ja"`` or ``"en"`` (default: the user's language).

    Raises:
        ValueError: *step* is not a step of the workbook (a typo in a notebook).
    """
    wanted_for = _check_step(step)
    lang = language(lang)
    result = Prerequisites(step=wanted_for, lang=lang)
    try:
        mr = as_mailroot(mailroot)

        states = step_progress(mr).states
    except XmailnbError as exc:
        result.problem = _problem_lines(exc)
        return result
    except Exception as exc:  # shown, never a traceback in the notebook
        result.problem = [_unexpected("checking the steps a notebook needs", exc)]
        return result
    wanted = set(REQUIRES[wanted_for]) | set(RECOMMENDS.get(wanted_for, ()))
    for name in STEPS:
        if name in wanted:
            result.items.append(Requirement(step=name, state=states[name],
                                            required=name in REQUIRES[wanted_for]))
    return result


# -- where the workbook stands -------------------------------------------------------

@dataclass(repr=False)
class Overview(_Shown):
    """Every step's state, with its notebook, and the notebook to open next.

    Attributes:
        states: step -> state (``todo``, ``done``, ``attention``, ``broken``).
        problem: why the MailRoot could not be looked at.
    """

    states: dict[Step, StepState] = field(default_factory=dict)
    problem: list[Msg] = field(default_factory=list)
    lang: str = "en"

    @property
    def next_step(self) -> Step | None:
        """The step to work on next: the diagnosis until one was run, else
        the first broken step, else the first one not done."""
        if not self.states:
            return None
        if self.states.get(Step.DIAGNOSE) is StepState.TODO:
            return Step.DIAGNOSE
        for wanted in (StepState.BROKEN, StepState.TODO):
            for step, state in self.states.items():
                if state == wanted:
                    return step
        return None

    def messages(self) -> list[Msg]:
        if self.problem:
            return list(self.problem)
        out = [Msg.of("guide.overview.title")]
        for step, state in self.states.items():
            out.append(Msg.of("guide.overview.line", n=step.number, name=Msg.of(f"ui.nav.{step}"),
                              state=Msg.of(f"guide.state.{state}"), notebook=NOTEBOOKS[step]))
        out.append(Msg.of("guide.overview.legend",
                          done=Msg.of("guide.state.done"), attention=Msg.of("guide.state.attention"),
                          broken=Msg.of("guide.state.broken"), todo=Msg.of("guide.state.todo")))
        nxt = self.next_step
        if nxt is None:
            out.append(Msg.of("guide.overview.all_done"))
        else:
            out.append(Msg.of("guide.overview.next", step=step_ref(nxt), notebook=NOTEBOOKS[nxt]))
        return out

    def render(self, lang: str | None = None) -> str:
        lang = language(lang or self.lang)
        return "\n".join(m.render(lang) for m in self.messages())


def progress_overview(mailroot: MailRoot | str | os.PathLike[str] | None = None, *,
                      lang: str | None = None) -> Overview:
    """Where every step of the workbook stands, for the start notebook.

    Never raises for a MailRoot problem: the overview says what is wrong.
    """
    lang = language(lang)
    result = Overview(lang=lang)
    try:
        mr = as_mailroot(mailroot)

        result.states = dict(step_progress(mr).states)
    except XmailnbError as exc:
        result.problem = _problem_lines(exc)
    except Exception as exc:  # shown, never a traceback in the notebook
        result.problem = [_unexpected("showing the workbook's progress", exc)]
    return result

