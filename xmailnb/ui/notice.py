"""Step 7: the announcement for mail-client users."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..flows import notice as noticemod
from ..errors import XmailnbError
from ..i18n import Msg
from ..status import Status
from ..steps import Step
from . import _html
from ._base import Activity, StepView, box, classed, error_msgs, html, shared

__all__ = ["NoticeStep"]


class NoticeStep(StepView):
    """The notice text (read-only, to copy or download) in the wizard's language.

    The text and the host rule are the core's (:func:`xmailnb.flows.notice.notice_text`,
    :func:`xmailnb.flows.notice.notice_host`); this view only shows them.  The
    notice counts as shown (for the step progress) when the step is on
    screen with a certificate installed: :attr:`on_screen` is set by the
    wizard when it opens the step (a step shown on its own is on screen).
    """

    STEP = Step.NOTICE

    def _build(self) -> list[Any]:
        self.on_screen = self.standalone
        self.hostname = classed(widgets.Text, "xm-notice-hostname", placeholder="mail.example.jp",
                                layout=widgets.Layout(width="100%", max_width="32em"))
        self.hostname.observe(self.safe(lambda _c: self.refresh()), "value")
        host_label = self.field_label("ui.notice.hostname", "ui.notice.hostname.hint")
        self.hostname_note = self.field_message("hostname")
        self.warnings = html("", "xm-notice-warnings")
        self.text = classed(widgets.Textarea, "xm-notice-text", "xm-mono", rows=16, layout=shared("wide"))
        self._text = ""
        self.text.observe(self._keep_text, "value")
        self.download = html("", "xm-notice-download")
        return [box([host_label, self.hostname, self.hostname_note, self.warnings, self.text, self.download],
                    "xm-section"), self.message]

    def _keep_text(self, change: dict[str, Any]) -> None:
        # Read-only: selectable and copyable, but not editable by accident.
        if change["new"] != self._text:
            self.text.value = self._text

    def notice(self) -> str:
        """The notice text for the current MailRoot, language and host name
        (the core's: :func:`xmailnb.flows.notice.notice_text`)."""
        assert self.mailroot is not None
        hostname = self.hostname.value.strip() or None
        return noticemod.notice_text(self.mailroot, self.lang, hostname=hostname)

    def _refresh(self) -> None:
        assert self.mailroot is not None
        self.hostname_note.clear()
        self.message.clear()
        hostname = self.hostname.value.strip() or None
        try:
            _name, warnings = noticemod.notice_host(self.mailroot, hostname)
            value = self.notice()
        except XmailnbError as exc:
            # Said once: beside the host name when it is about the host name.
            if exc.field == "hostname":
                self.hostname_note.show(Status.ERROR, *error_msgs(exc))
                self.message.show(Status.ERROR, Msg.of("ui.common.see_field"))
            else:
                self.message.show_error(exc)
            self._text = ""
            self.text.value = ""
            self.download.value = ""
            self.warnings.value = ""
            self.activity = Activity.FAILED
            return
        self._text = value
        self.text.value = value
        self.warnings.value = _html.render("list", title="", cls="xm-notice-warning-list",
                                           items=[{"text": self.m(w), "cls": "xm-warn"} for w in warnings])
        self.download.value = _html.render("download", cls="xm-notice-download-link",
                                           filename=self.t("ui.notice.filename"),
                                           uri=_html.data_uri(value.encode("utf-8"), "text/plain;charset=utf-8"),
                                           label=self.t("ui.notice.download"))
        self.activity = Activity.IDLE
        if self.on_screen and self.mailroot.server_cert.is_file():
            # Shown for this certificate: the step progress counts it once.
            noticemod.record_shown(self.mailroot, once=True)

    def shown(self) -> None:
        """The wizard opened this step: the notice is on screen now."""
        self.on_screen = True
        self.refresh()

    def _relabel(self) -> None:
        self.refresh()
