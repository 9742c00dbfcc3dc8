"""The guided workbook as ipywidgets: one widget per step and the wizard.

Every step is an ``ipywidgets.VBox`` that a notebook cell can simply show::

    from xmailnb.ui import Wizard
    Wizard()                      # MAIL_ROOT, else the practice sandbox

Each step takes ``(mailroot=None, lang=None)``, has ``set_lang(lang)``,
``refresh()``, a ``state`` trait (a :class:`xmailnb.checks.progress.StepState`:
todo, done, attention or broken, from :func:`xmailnb.checks.progress.step_progress`,
the one rule the command line and the notebooks share) and an ``activity``
trait (idle, busy, failed).  Every step view derives from ``_base.StepView``
and names its :class:`xmailnb.steps.Step` in ``STEP``; :data:`STEPS` pairs
the steps of :data:`xmailnb.steps.STEPS`, in that order, with their views,
and the look is one stylesheet, ``ui/workbook.css``.  The widgets only call the core
(:mod:`xmailnb.flows.actions`, :mod:`xmailnb.flows.notice`, ...); stable CSS classes
(``xm-...``) let browser tests find them in any language.

Besides the classes of DESIGN.md section 4, the widgets carry: ``xm-next``
(the wizard's Next button), ``xm-nav-current`` on the navigation button of
the step shown, ``xm-headline`` (the server's state in one line),
``xm-legend`` (what the marks mean), ``xm-practice-port-smtp|pop3s``,
``xm-practice-running``, ``xm-acme-needs``, ``xm-goto-<step>`` (the
diagnosis's "go to" buttons), ``xm-start-over`` (practice banner), ``xm-rollback-result``, ``xm-field-message xm-field-<input>`` (the note beside an input,
plus ``xm-ok|xm-warn|xm-error|xm-info``), ``xm-csr-curve``, ``xm-csr-text``,
``xm-csr-result``, ``xm-csr-download``, ``xm-csr-confirm``/``xm-csr-cancel``
(replacing a pending CSR), ``xm-submit-mode``, ``xm-checklist-<item>``,
``xm-install-passphrase``, ``xm-install-ca``, ``xm-install-hostname``,
``xm-install-preview``, ``xm-rollback-select``, ``xm-rollback-confirm``/
``xm-rollback-cancel``, ``xm-setting-<Variable>``, ``xm-settings-save``,
``xm-probe-host``, ``xm-probe-ports``, ``xm-endpoint-<name>`` (result rows),
``xm-practice-start``/``xm-practice-stop``, ``xm-notice-hostname``,
``xm-notice-download``.
"""

from __future__ import annotations

from .. import i18n
from ..pki import csr as pki_csr
from . import _html
from .csr import CsrStep
from .diagnose import DiagnoseStep
from .install import InstallStep
from .notice import NoticeStep
from .probe import ProbeStep
from .settings import SettingsStep
from .submit import SubmitStep
from .wizard import STEPS, Wizard

__all__ = ["Wizard", "STEPS", "DiagnoseStep", "CsrStep", "SubmitStep", "InstallStep", "SettingsStep",
           "ProbeStep", "NoticeStep", "preload"]


def preload() -> None:
    """Do now what the first page would otherwise do while its visitor
    waits: compile the page's templates, read every catalog, load the
    country tables of step 2's form.  The dashboard notebook calls it in a
    preheated kernel, before the page is asked for (nothing here reads the
    MailRoot: the page still shows the MailRoot as it is when asked for)."""
    _html.preload()
    i18n.preload()
    pki_csr.preload()
