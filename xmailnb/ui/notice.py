"""Step 7: the announcement for mail-client users."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..flows import notice as noticemod
from ..i18n import Msg
from ._base import Step, data_uri_link

__all__ = ["NoticeStep"]


class NoticeStep(Step):
    """The notice text (read-only, to copy or download) in the wizard's language."""

    STEP = "notice"

    def _build(self) -> list[Any]:
        self.hostname = widgets.Text(layout=widgets.Layout(width="30em"))
        self.hostname.add_class("xm-notice-hostname")
        self.hostname.observe(self.safe(lambda _c: self.refresh()), "value")
        host_label = widgets.HTML()
        self.bind(host_label, "value", lambda lang: (
            f"<b>{Msg.of('ui.notice.hostname').render(lang)}</b>"))
        self.hostname_note = self.field_message("hostname")
        self.text = widgets.Textarea(rows=18, layout=widgets.Layout(width="100%"))
        self.text.add_class("xm-notice-text")
        self._text = ""
        self.text.observe(self._keep_text, "value")
        self.download = widgets.HTML()
        self.download.add_class("xm-notice-download")
        return [self.label("ui.notice.intro"), host_label, self.hostname, self.hostname_note,
                self.text, self.download, self.message]

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
        self.hostname_note.clear()
        try:
            value = self.notice()
        except Exception as exc:
            field = getattr(exc, "field", None)
            if field == "hostname":
                self.hostname_note.show_error(exc)
            self.message.show_error(exc)
            self.state = "error"
            return
        self._text = value
        self.text.value = value
        self.download.value = data_uri_link(value.encode("utf-8"), self.t("ui.notice.filename"),
                                            "text/plain;charset=utf-8", self.t("ui.notice.download"),
                                            "xm-notice-download-link")
        self.message.clear()
        # Complete once there is an installed certificate to announce.
        assert self.mailroot is not None
        if self.mailroot.server_cert.is_file():
            # Shown for this certificate: the step progress counts it once.
            noticemod.record_shown(self.mailroot, once=True)
            self.state = "done"
        else:
            self.state = "ready"

    def _relabel(self) -> None:
        self.refresh()
