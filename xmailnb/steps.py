"""The workbook's steps, and where in them a problem is fixed.

A finding's fix says in words what to do; its :class:`Target` says it for a
machine: the step (and the control of that step) where it is done, so the
dashboard can offer "open step 4" beside the problem and the command line
can ignore it.  Controls are named by the CSS classes of DESIGN.md section 4
(``xm-install-chain``), which the page already uses to find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Step", "STEPS", "Target"]


class Step(StrEnum):
    """The workbook's steps, in order."""

    DIAGNOSE = "diagnose"
    CSR = "csr"
    SUBMIT = "submit"
    INSTALL = "install"
    SETTINGS = "settings"
    PROBE = "probe"
    NOTICE = "notice"

    @property
    def number(self) -> int:
        """1 for the first step."""
        return STEPS.index(self) + 1


STEPS: tuple[Step, ...] = tuple(Step)


@dataclass(frozen=True)
class Target:
    """Where a problem is fixed in the workbook.

    Attributes:
        step: the step.
        control: the CSS class of the control in that step (e.g.
            ``"xm-install-chain"``), or ``None`` for the step as a whole.

    >>> Target(Step.INSTALL, "xm-install-chain").step.number
    4
    """

    step: Step
    control: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"step": str(self.step), "control": self.control}
