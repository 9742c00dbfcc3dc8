"""The ACME path of the CA step: choose the CA and the challenge, watch each
authorization, see the result and the renewal status.

A thin view over :mod:`xmailnb.flows.acme`: the order runs in a worker thread
and reports through :class:`~xmailnb.flows.acme.Event` values; dns-01 records
are shown with a Continue button the worker waits for.

Stable CSS classes for browser tests: ``xm-acme`` (root),
``xm-acme-directory``, ``xm-acme-directory-url``, ``xm-acme-challenge``,
``xm-acme-email``, ``xm-acme-http-port``, ``xm-acme-tos``, ``xm-acme-run``,
``xm-acme-progress``, ``xm-acme-authz`` (one ``xm-acme-authz-row`` per name,
with ``xm-info`` pending / ``xm-ok`` / ``xm-error``), ``xm-acme-dns``,
``xm-acme-dns-records``, ``xm-acme-dns-continue``, ``xm-acme-dns-cancel``,
``xm-acme-message`` (with ``xm-ok``/``xm-error``) and ``xm-acme-renewal``.
"""

from __future__ import annotations

import os
import threading
from enum import StrEnum
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import traitlets

from ..flows import acme as acmeflow
from ..errors import XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language, page_text as text
from ..status import Status
from ..mailroot import MailRoot
from . import _html
from ._base import Message, as_mailroot, set_flag_class, set_status_class

__all__ = ["AcmePanel", "PanelState"]

_DIRECTORIES = {"letsencrypt": acmeflow.LETSENCRYPT, "staging": acmeflow.LETSENCRYPT_STAGING}
_AUTHZ_STATUS = {"pending": Status.INFO, "valid": Status.OK, "invalid": Status.ERROR}
DNS_CONFIRM_SECONDS = 3600



class PanelState(StrEnum):
    """What the ACME panel's order is doing."""

    INIT = "init"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"

class AcmePanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """Get a free certificate for the pending CSR through ACME, and install it.

    Attributes:
        state: a :class:`PanelState` (init, running, done or error): what
            the panel's order is doing, not the step's progress.
        changes: incremented each time the panel changed the MailRoot.
        result: the latest :class:`~xmailnb.flows.acme.IssueResult` (or ``None``).
    """

    state = traitlets.UseEnum(PanelState, default_value=PanelState.INIT)
    changes = traitlets.Int(0)

    def __init__(self, mailroot: str | os.PathLike[str] | MailRoot | None = None,
                 lang: str | None = None, *, flow: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.lang: str = lang if lang in LANGUAGES else detect_language()
        self.flow = flow or acmeflow
        self.result: Any = None
        self.error: BaseException | None = None
        self._bindings: list[tuple[Any, str, Callable[[str], str]]] = []
        self._thread: threading.Thread | None = None
        self._dns_event = threading.Event()
        self._dns_ok = False
        self._step: Msg | None = None
        self._authz: dict[str, tuple[str, Msg]] = {}
        self._records: list[acmeflow.TxtRecord] = []
        self.add_class("xm-acme")
        self.title = self._bind(widgets.HTML(), "value", "acme.ui.title", wrap="h4")
        self.message = Message(base_class="xm-acme-message", lang=self.lang)
        try:
            self.mailroot: MailRoot | None = as_mailroot(mailroot)
        except XmailnbError as exc:
            self.mailroot = None
            self.message.show_error(exc)
            self.children = [self.title, self.message]
            self.state = PanelState.ERROR
            return
        self._build()
        self.refresh()

    # -- building -------------------------------------------------------------------
    def _bind(self, widget: Any, attr: str, key: str, *, wrap: str | None = None) -> Any:
        def render(lang: str) -> str:
            value = text(key, lang)
            return _html.render("tag", tag=wrap, text=value) if wrap else value

        self._bindings.append((widget, attr, render))
        setattr(widget, attr, render(self.lang))
        return widget

    def _css(self, widget: Any, *classes: str) -> Any:
        for cls in classes:
            widget.add_class(cls)
        return widget

    def _build(self) -> None:
        self.intro = self._bind(widgets.HTML(), "value", "acme.ui.intro", wrap="div")
        # What ACME needs that a classroom machine does not have.
        self.needs = self._css(self._bind(widgets.HTML(), "value", "acme.ui.needs", wrap="div"), "xm-acme-needs",
                               "xm-field-message", "xm-warn" if self.mailroot is not None and self.mailroot.is_sandbox
                               else "xm-info")
        self.directory = self._css(widgets.Dropdown(), "xm-acme-directory")
        self.directory_url = self._css(widgets.Text(placeholder="https://.../directory"), "xm-acme-directory-url")
        self.challenge = self._css(widgets.ToggleButtons(), "xm-acme-challenge")
        self.email = self._css(widgets.Text(placeholder="admin@example.jp"), "xm-acme-email")
        self.http_port = self._css(widgets.BoundedIntText(value=80, min=1, max=65535), "xm-acme-http-port")
        self.tos = self._css(widgets.Checkbox(value=False, indent=False), "xm-acme-tos")
        self.run_button = self._css(widgets.Button(icon="certificate", button_style="primary"), "xm-acme-run")
        # Beside the button: why it is off (a public CA in the practice sandbox).
        self.blocked = self._css(widgets.HTML(), "xm-acme-blocked", "xm-field-message", "xm-error")
        self.run_row = self._css(widgets.HBox([self.run_button, self.blocked]), "xm-acme-run-row")
        self.progress = self._css(widgets.HTML(), "xm-acme-progress")
        self.authz = self._css(widgets.VBox(), "xm-acme-authz")
        self.dns_records = self._css(widgets.HTML(), "xm-acme-dns-records")
        self.dns_continue = self._css(widgets.Button(button_style="success"), "xm-acme-dns-continue")
        self.dns_cancel = self._css(widgets.Button(), "xm-acme-dns-cancel")
        self.dns_box = self._css(widgets.VBox([self.dns_records, widgets.HBox([self.dns_continue,
                                                                              self.dns_cancel])]),
                                 "xm-acme-dns")
        self.dns_box.layout.display = "none"
        self.renewal = self._css(widgets.HTML(), "xm-acme-renewal")
        for widget, key in ((self.directory, "acme.ui.directory"), (self.directory_url, "acme.ui.directory_url"),
                            (self.challenge, "acme.ui.challenge"), (self.email, "acme.ui.email"),
                            (self.http_port, "acme.ui.http_port"), (self.tos, "acme.ui.tos")):
            self._bind(widget, "description", key)
        for button, key in ((self.run_button, "acme.ui.run"), (self.dns_continue, "acme.ui.dns_continue"),
                            (self.dns_cancel, "acme.ui.dns_cancel")):
            self._bind(button, "description", key)
        self._set_options()
        self.directory.observe(lambda _c: self._show_fields(), names="value")
        self.challenge.observe(lambda _c: self._show_fields(), names="value")
        self.run_button.on_click(lambda _b: self.start())
        self.dns_continue.on_click(lambda _b: self._answer_dns(True))
        self.dns_cancel.on_click(lambda _b: self._answer_dns(False))
        for widget in (self.directory, self.directory_url, self.challenge, self.email, self.http_port):
            # Labels in full in either language (a fixed label width cuts Japanese ones).
            widget.style.description_width = "initial"
        self.children = [self.title, self.intro, self.needs, self.directory, self.directory_url, self.challenge,
                         self.http_port, self.email, self.tos, self.run_row, self.progress, self.authz,
                         self.dns_box, self.message, self.renewal]

    def _set_options(self) -> None:
        directory, challenge = self.directory.value, self.challenge.value
        self.directory.options = [(text(f"acme.ui.directory.{k}", self.lang), k)
                                  for k in ("letsencrypt", "staging", "custom")]
        self.challenge.options = [(text("acme.ui.challenge.http", self.lang), "http-01"),
                                  (text("acme.ui.challenge.dns", self.lang), "dns-01")]
        self.directory.value = directory or "letsencrypt"
        self.challenge.value = challenge or "http-01"

    def _show_fields(self) -> None:
        self.directory_url.layout.display = None if self.directory.value == "custom" else "none"
        self.http_port.layout.display = None if self.challenge.value == "http-01" else "none"
        blocked = self.sandbox_blocked()
        self.run_button.disabled = blocked or self.state is PanelState.RUNNING
        self.blocked.value = _html.render("tag", tag="div", text=text("acme.ui.sandbox_blocked", self.lang,
                                                                      sign=Msg.of("ui.submit.practice.sign"))) \
            if blocked else ""

    def sandbox_blocked(self) -> bool:
        """Whether the order is refused before it starts: a public CA (Let's
        Encrypt) in the practice sandbox, which no CA on the internet can
        reach.  A directory of one's own (a test server on this machine)
        stays open."""
        return (self.mailroot is not None and self.mailroot.is_sandbox
                and self.directory.value in _DIRECTORIES)

    # -- public ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the recorded settings (when ACME was used here) and the renewal status."""
        if self.mailroot is None:
            return
        try:
            recorded = self.flow.load_settings(self.mailroot)
        except Exception:  # a damaged record must not break the panel
            recorded = None
        if recorded is not None and self.state is PanelState.INIT:
            choice = next((k for k, url in _DIRECTORIES.items() if url == recorded.directory), "custom")
            self.directory.value = choice
            if choice == "custom":
                self.directory_url.value = recorded.directory
            self.challenge.value = recorded.challenge
            self.http_port.value = recorded.http_port
            self.email.value = recorded.email
        self._show_fields()
        self._draw_renewal()

    def settings(self) -> acmeflow.AcmeSettings:
        """The settings the form describes (recorded extras such as the
        directory's trust anchor kept when the directory is unchanged)."""
        assert self.mailroot is not None
        url = _DIRECTORIES.get(self.directory.value) or self.directory_url.value.strip()
        recorded = self.flow.load_settings(self.mailroot)
        settings = acmeflow.AcmeSettings(directory=url, email=self.email.value.strip(),
                                         challenge=self.challenge.value, http_port=int(self.http_port.value))
        if recorded is not None:
            settings.accounts = dict(recorded.accounts)
            settings.http_address = recorded.http_address
            if recorded.directory == url:
                settings.directory_ca = recorded.directory_ca
        return settings

    def start(self) -> threading.Thread | None:
        """Validate the form and run the order in a worker thread (returned)."""
        if self.mailroot is None or self.state is PanelState.RUNNING or self.sandbox_blocked():
            return None
        try:
            settings = self.settings().validate()
        except Exception as exc:
            self._fail(exc)
            return None
        self.error, self.result = None, None
        self._authz, self._records, self._step = {}, [], None
        self.state = PanelState.RUNNING
        self.run_button.disabled = True
        self.message.clear()
        self._draw_progress()
        self._thread = threading.Thread(target=self._work, args=(settings, bool(self.tos.value)),
                                        name="xmailnb-acme", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker (tests, notebooks)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def set_lang(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        with self.hold_trait_notifications():
            self.lang = lang
            for widget, attr, render in self._bindings:
                setattr(widget, attr, render(lang))
            self.message.set_lang(lang)
            if self.mailroot is not None:
                self._set_options()
                self._show_fields()
                self._draw_progress()
                self._draw_renewal()

    # -- the worker -------------------------------------------------------------------------
    def _work(self, settings: acmeflow.AcmeSettings, agree_tos: bool) -> None:
        assert self.mailroot is not None
        try:
            result = self.flow.issue(self.mailroot, settings, agree_tos=agree_tos, on_event=self._on_event,
                                     confirm_dns=self._confirm_dns)
        except BaseException as exc:  # shown to the user, never a traceback
            self._fail(exc)
        else:
            self.result = result
            msgs = [Msg.of("acme.ui.done", names=", ".join(result.names),
                           not_after=result.not_after), *result.plan.warnings]
            self.message.show(Status.OK, *msgs)
            self.changes += 1
            self.state = PanelState.DONE
        finally:
            self._step = None
            self.dns_box.layout.display = "none"
            self.run_button.disabled = self.sandbox_blocked()
            self._draw_progress()
            self._draw_renewal()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.message.show_error(exc)
        self.state = PanelState.ERROR

    def _on_event(self, event: acmeflow.Event) -> None:
        if event.kind == "authz" and event.name:
            self._authz[event.name] = (event.status or "pending", event.msg)
        elif event.kind == "dns":
            self._records = list(event.records)
        else:
            self._step = event.msg
        self._draw_progress()

    def _confirm_dns(self, records: Sequence[acmeflow.TxtRecord]) -> bool:
        self._records = list(records)
        self._dns_event.clear()
        self._dns_ok = False
        self._draw_progress()
        self.dns_box.layout.display = None
        answered = self._dns_event.wait(DNS_CONFIRM_SECONDS)
        self.dns_box.layout.display = "none"
        return answered and self._dns_ok

    def _answer_dns(self, ok: bool) -> None:
        self._dns_ok = ok
        self._dns_event.set()

    # -- drawing ------------------------------------------------------------------------------
    def _draw_progress(self) -> None:
        running = self.state is PanelState.RUNNING
        step = self._step.page(self.lang) if self._step is not None else ""
        if running and not step:
            step = text("acme.ui.running", self.lang)
        self.progress.value = _html.render("tag", tag="div", text=step) if step else ""
        set_flag_class(self.progress, "xm-progress", running)
        rows = []
        for _name, (status, msg) in self._authz.items():
            row = widgets.HTML(_html.render("tag", tag="div", text=msg.page(self.lang)))
            row.add_class("xm-acme-authz-row")
            set_status_class(row, _AUTHZ_STATUS.get(status, Status.INFO))
            rows.append(row)
        self.authz.children = rows
        if self._records:
            self.dns_records.value = _html.render("txt_records", intro=text("acme.ui.dns_intro", self.lang),
                                                  records=self._records)
        else:
            self.dns_records.value = ""

    def _draw_renewal(self) -> None:
        assert self.mailroot is not None
        try:
            finding = acmeflow.renewal_finding(self.mailroot)
        except Exception:
            finding = None
        if finding is None:
            self.renewal.value = _html.render("tag", tag="div", text=text("acme.ui.renewal_none", self.lang))
            set_status_class(self.renewal, None)
            return
        lines = [finding.message.page(self.lang)] + ([finding.fix.page(self.lang)] if finding.fix is not None else [])
        self.renewal.value = _html.render("message", lines=lines)
        set_status_class(self.renewal, finding.status)
