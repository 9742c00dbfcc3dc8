"""Step 2: the CSR form; the key is made in a worker thread."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
from typing import Any

import ipywidgets as widgets

from ..flows import actions
from ..pki import certfiles, keys
from ..pki import csr as csrmod
from ..errors import InputError, XmailnbError
from ..i18n import Msg
from ..status import Status
from ..steps import Step
from . import _html
from ._base import (Activity, Message, StepView, box, button, classed, error_msgs, html, set_flag_class, shared,
                    show)

__all__ = ["CsrStep"]

_TEXT_NOTES = ("state", "locality", "org", "unit")
_SUBJECT = ("country", "state", "locality", "org", "unit", "cn", "email")
# Fields across both columns of the form.
_WIDE = ("aliases", "memo")


class CsrStep(StepView):
    """Every CSR field with validation as you type; Create makes the key and CSR.

    ``inputs[name]`` is the input widget of each field of
    :data:`xmailnb.pki.csr.FIELDS` (it carries ``xm-csr-<name>``, and
    ``xm-invalid`` while its value is invalid).  :meth:`generate` returns as
    soon as the worker thread has started; :meth:`wait` waits for it.
    """

    STEP = Step.CSR

    # -- building ----------------------------------------------------------------
    def _build(self) -> list[Any]:
        self.future: concurrent.futures.Future[Any] | None = None
        self.inputs: dict[str, Any] = {}
        self.notes: dict[str, Message] = {}
        self.rows: dict[str, widgets.VBox] = {}
        self.touched: set[str] = set()
        self.errors: dict[str, InputError] = {}
        self._loading = False
        self._prefilled = False
        self._csr_text = ""
        self._pem = b""
        self.has_csr = False

        for name in csrmod.FIELDS:
            widget = self._make_input(name)
            self.inputs[name] = widget
            self.notes[name] = self.field_message(name)
            optional = name not in csrmod.REQUIRED_FIELDS and name not in ("keytype", "keysize", "curve")
            label = self.field_label(f"csr.label.{name}", f"ui.csr.hint.{name}", optional=optional)
            row = box([label, widget, self.notes[name]], "xm-row", f"xm-csr-row-{name}",
                      *(("xm-wide",) if name in _WIDE else ()),
                      hideable=name in ("keytype", "keysize", "curve"))
            self.rows[name] = row
            widget.observe(self.safe(lambda change, n=name: self._changed(n)), "value")

        self.keyinfo = html("", "xm-csr-keyinfo", "xm-hint")

        # Renewal: a new CSR from the installed key (offered when it can be kept).
        self.renew = classed(widgets.ToggleButtons, "xm-csr-renew", options=self._renew_options(), value="new")
        self.renew.observe(self.safe(lambda _c: self._validate()), "value")
        self.renew_hint = html("", "xm-csr-renew-hint", "xm-hint")
        self.renew_row = box([self.field_label("csr.renew.choice.label"), self.renew, self.renew_hint],
                             "xm-row", "xm-csr-row-renew", hidden=True)
        self.renew_unavailable = self.new_message("xm-csr-renew-unavailable")
        self._renewal: Any = None
        self._renewal_reason: Msg | None = None
        #: server.key and server.cert as they were when the renewal was last judged.
        self._renewal_files: tuple[bytes | None, bytes | None] | None = None

        self.generate_button = self.bound(button, "description", "ui.csr.generate", "xm-csr-generate",
                                          button_style="primary", disabled=True)
        self.generate_button.on_click(self.safe(lambda _b: self.generate()))

        self.replace_warning = self.new_message("xm-csr-replace-warning")
        self.confirm_button = self.bound(button, "description", "ui.csr.replace.confirm", "xm-csr-confirm",
                                         button_style="warning")
        self.confirm_button.on_click(self.safe(lambda _b: self.generate(confirmed=True)))
        self.cancel_button = self.bound(button, "description", "ui.common.cancel", "xm-csr-cancel")
        self.cancel_button.on_click(self.safe(lambda _b: self._hide_confirm()))
        confirm_actions = box([self.confirm_button, self.cancel_button], "xm-actions", horizontal=True)
        self.confirm_box = box([self.replace_warning, confirm_actions], "xm-confirm", "xm-csr-confirm-box",
                               hidden=True)

        self.progress = html(self.t("ui.csr.progress"), "xm-progress", hidden=True)
        self.bind(self.progress, "value", "ui.csr.progress")

        self.result_title = html("", "xm-section-title")
        self.csr_text = classed(widgets.Textarea, "xm-csr-text", "xm-mono", rows=10,
                                layout=widgets.Layout(width="100%"))
        self.csr_text.observe(self._keep_csr_text, "value")
        self.download = html("", "xm-csr-download")
        self.info = html("", "xm-csr-info")
        self.result = box([self.result_title, self.download, self.csr_text, self.info],
                          "xm-section", "xm-csr-result", hidden=True)
        self._description: dict[str, Any] | None = None
        self._result_key = "ui.csr.result.new"

        r = self.rows
        subject = box([self.label("ui.csr.section.subject", "xm-section-title"),
                       self._grid(r["country"], r["state"], r["locality"], r["org"], r["unit"],
                                  r["email"], r["cn"], r["aliases"])], "xm-section")
        keybox = box([self.label("ui.csr.section.key", "xm-section-title"), self.renew_row,
                      self.renew_unavailable, self._grid(r["keytype"], r["keysize"], r["curve"]),
                      self.keyinfo, self._grid(r["memo"])], "xm-section")
        actions_row = box([self.generate_button, self.progress], "xm-actions", horizontal=True)
        return [subject, keybox, actions_row, self.confirm_box, self.message, self.result]

    @staticmethod
    def _grid(*rows: Any) -> widgets.Box:
        return box(rows, "xm-fields")

    def _make_input(self, name: str) -> Any:
        # inputs never change their own layout or style: shared (fewer models)
        cls, layout = f"xm-csr-{name}", shared("layout")
        if name == "keytype":
            return classed(widgets.ToggleButtons, cls, options=self._keytype_options(), value=keys.DEFAULT_KEY_TYPE,
                           layout=layout)
        if name == "keysize":
            return classed(widgets.Dropdown, cls, options=self._keysize_options(), value=keys.DEFAULT_RSA_SIZE,
                           layout=layout)
        if name == "curve":
            return classed(widgets.Dropdown, cls, options=list(keys.EC_CURVES), value=keys.DEFAULT_CURVE,
                           layout=layout)
        placeholder = self.t(f"ui.csr.example.{name}") if name in _SUBJECT or name == "aliases" else ""
        kind = widgets.Textarea if name in ("aliases", "memo") else widgets.Text
        extra = {"rows": 2} if kind is widgets.Textarea else {}
        return classed(kind, cls, continuous_update=True, placeholder=placeholder, layout=layout,
                       style=shared("input_style"), **extra)

    def _keytype_options(self) -> list[tuple[str, str]]:
        return [(self.t(f"ui.csr.keytype.{k}"), k) for k in keys.KEY_TYPES]

    def _renew_options(self) -> list[tuple[str, str]]:
        return [(self.t("csr.renew.choice.renew"), "renew"), (self.t("csr.renew.choice.new"), "new")]

    def _keysize_options(self) -> list[tuple[str, int]]:
        return [(self.t("ui.csr.keysize.option", size=s), s) for s in keys.RSA_SIZES]

    @property
    def renewing(self) -> bool:
        """The CSR will be made from the installed key."""
        return self._renewal is not None and self.renew.value == "renew"

    def _check_renewal(self) -> None:
        """Offer the renewal choice when the installed key can be kept; it is
        the default when it first becomes possible (a certificate is
        installed: the admin is renewing)."""
        assert self.mailroot is not None
        mr = self.mailroot
        try:
            files: tuple[bytes | None, bytes | None] | None = (mr.read(mr.rel_server_key),
                                                               mr.read(mr.rel_server_cert))
        except OSError:
            files = None
        if files is not None and files == self._renewal_files:
            # The same key and certificate: the same answer, without loading
            # the key again (a full RSA check costs about 0.1 s, and every
            # refresh of the page asks).
            return
        self._renewal_files = files
        before = self._renewal
        try:
            self._renewal = actions.renewal_key(self.mailroot)
            self._renewal_reason = None
        except XmailnbError as exc:
            self._renewal = None
            installed = self.mailroot.server_cert.is_file() and self.mailroot.server_key.exists()
            self._renewal_reason = exc.msg if installed else None
        if self._renewal is not None and before is None:
            self.renew.value = "renew"
        self._draw_renewal()

    def _draw_renewal(self) -> None:
        if self._renewal is None:
            show(self.renew_row, False)
            if self._renewal_reason is not None:
                self.renew_unavailable.show(Status.INFO, Msg.of("csr.renew.choice.unavailable",
                                                           reason=self._renewal_reason))
            else:
                self.renew_unavailable.clear()
            return
        self.renew_unavailable.clear()
        show(self.renew_row, True)
        self.renew_hint.value = _html.render("tag", tag="div", text=self.t("csr.renew.choice.hint",
                                                                           key=self._renewal.summary))

    # -- form --------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The form's current values by field name."""
        return {name: w.value for name, w in self.inputs.items()}

    def _changed(self, name: str) -> None:
        if self._loading:
            return
        self.touched.add(name)
        if self.activity is Activity.FAILED:
            self.activity = Activity.IDLE
        self._validate()

    def _validate(self) -> None:
        with self._ui_lock, self.hold_trait_notifications():
            values = self.values()
            _request, errors = csrmod.validate_form(values)
            self.errors = errors
            for name, widget in self.inputs.items():
                err = errors.get(name)
                shown = err is not None and name in self.touched
                set_flag_class(widget, "xm-invalid", shown)
                note = self.notes[name]
                if err is not None and shown:
                    note.show(Status.ERROR, *error_msgs(err))
                elif err is None and name in _TEXT_NOTES and (warn := csrmod.field_note(name, values[name])):
                    note.show(Status.WARN, warn)
                else:
                    note.clear()
            ec = values["keytype"] == "ec"
            renewing = self.renewing
            # The installed key is kept as it is: no key choices then.
            show(self.rows["keytype"], not renewing)
            show(self.rows["keysize"], not ec and not renewing)
            show(self.rows["curve"], ec and not renewing)
            self._show_keyinfo()
            busy = self.future is not None and not self.future.done()
            self.generate_button.disabled = bool(errors) or busy

    def _show_keyinfo(self) -> None:
        if self.renewing:
            self.keyinfo.value = ""
            return
        v = self.values()
        try:
            spec = keys.KeySpec.from_strings(v["keytype"], v["keysize"], v["curve"])
        except XmailnbError:
            self.keyinfo.value = ""
            return
        self.keyinfo.value = _html.render("tag", tag="div", text=self.m(spec.describe()))

    def _prefill(self) -> None:
        """Start from the pending CSR's values, else server.tab's host name."""
        assert self.mailroot is not None
        values: dict[str, Any] = dict(actions.pending_form_values(self.mailroot, hostname_fallback=True))
        if "keysize" in values:
            values["keysize"] = int(values["keysize"])  # the size list's values are numbers
        self._loading = True
        try:
            for name, value in values.items():
                if name in self.inputs:
                    self.inputs[name].value = value
        finally:
            self._loading = False

    # -- refresh / relabel -------------------------------------------------------------------
    def _refresh(self) -> None:
        assert self.mailroot is not None
        if self.future is not None and not self.future.done():
            return
        if not self._prefilled:
            self._prefilled = True
            self._prefill()
        self._check_renewal()
        mr = self.mailroot
        described = None
        if mr.pending_csr.is_file():
            try:
                data = mr.read(mr.rel_pending_csr) or b""
                described = (data, csrmod.describe_csr(certfiles.csr_from(data, name=mr.rel_pending_csr)))
            except (OSError, XmailnbError, ValueError):
                described = None  # the diagnosis says what is wrong with it
        if described is not None:
            if self._description is None or self._description.get("sha256") != described[1]["sha256"]:
                self._result_key = "ui.csr.result.pending"
            self._show_csr(*described)
        else:
            self.has_csr = False
            self._description = None
            show(self.result, False)
        self._validate()

    def _relabel(self) -> None:
        for name, make in (("keytype", self._keytype_options), ("keysize", self._keysize_options),
                           ("renew", self._renew_options)):
            widget = self.renew if name == "renew" else self.inputs[name]
            value = widget.value
            self._loading = True
            try:
                widget.options = make()
                widget.value = value
            finally:
                self._loading = False
        for name, widget in self.inputs.items():
            if name in _SUBJECT or name == "aliases":
                widget.placeholder = self.t(f"ui.csr.example.{name}")
        self._show_keyinfo()
        self._draw_renewal()
        if self._description is not None:
            self._draw_result()
        if self.confirm_box.layout.display != "none":
            self._show_confirm()

    # -- generating ------------------------------------------------------------------------
    def generate(self, confirmed: bool = False) -> concurrent.futures.Future[Any] | None:
        """Make the key and CSR in a worker thread; return its future.

        Returns ``None`` without starting when the form is invalid, or when a
        pending key and CSR exist and *confirmed* is false (the warning and a
        confirm button are shown instead).
        """
        assert self.mailroot is not None
        with self._ui_lock:
            if self.future is not None and not self.future.done():
                return self.future
            request, errors = csrmod.validate_form(self.values())
            if request is None:
                self.touched.update(errors)
                self._validate()
                self.message.show(Status.ERROR, Msg.of("ui.csr.form_invalid"))
                return None
            if not confirmed and actions.pending_csr_exists(self.mailroot):
                self._show_confirm()
                return None
            self._hide_confirm()
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self.future = future
            self.generate_button.disabled = True
            show(self.progress, True)
            self.message.clear()
            self.activity = Activity.BUSY
        threading.Thread(target=self._work, args=(request, future, self.renewing), name="xmailnb-csr",
                         daemon=True).start()
        return future

    def _work(self, request: csrmod.CsrRequest, future: concurrent.futures.Future[Any],
              reuse_key: bool = False) -> None:
        assert self.mailroot is not None
        try:
            result = actions.create_csr(self.mailroot, request, reuse_key=reuse_key)
        except BaseException as exc:
            try:
                self._finish_error(exc)
            finally:
                future.set_exception(exc)
            return
        try:
            self._finish(result)
        except BaseException as exc:  # the display failed: the files are written anyway
            error_msgs(exc, "showing the new CSR")
            future.set_exception(exc)
            return
        future.set_result(result)

    def _finish(self, result: actions.CsrResult) -> None:
        assert self.mailroot is not None
        mr = self.mailroot
        with self._ui_lock, self.hold_trait_notifications():
            show(self.progress, False)
            self._result_key = "ui.csr.result.new"
            self._show_csr(result.pem, result.description)
            msgs = [Msg.of("ui.csr.done", key=mr.rel_pending_key, csr=mr.rel_pending_csr)]
            if result.reused_key:
                msgs.append(Msg.of("csr.renew.kept", key=result.description.get("key", ""),
                                   pending=mr.rel_pending_key))
            if result.entry is not None and result.replaced_pending:
                msgs.append(Msg.of("ui.csr.archived"))
            msgs.append(Msg.of("ui.csr.next"))
            self.message.show(Status.OK, *msgs)
            self.generate_button.disabled = bool(self.errors)
            self.activity = Activity.IDLE
        # Outside the lock: the wizard reads the MailRoot again on this.
        self.mark_changed()

    def _finish_error(self, exc: BaseException) -> None:
        with self._ui_lock, self.hold_trait_notifications():
            show(self.progress, False)
            field = getattr(exc, "field", None)
            shown = error_msgs(exc, "creating the key and CSR")
            if field == "renew":
                self.renew_unavailable.show(Status.ERROR, *shown)
            if field in self.notes:
                # The fix beside the input; the outcome line says what failed.
                self.touched.add(field)
                self.notes[field].show(Status.ERROR, *shown)
                set_flag_class(self.inputs[field], "xm-invalid", True)
                self.message.show(Status.ERROR, shown[0])
            else:
                self.message.show(Status.ERROR, *shown)
            self.generate_button.disabled = bool(self.errors)
            self.activity = Activity.FAILED

    # -- confirmation and result -----------------------------------------------------------
    def _show_confirm(self) -> None:
        assert self.mailroot is not None
        values = actions.pending_form_values(self.mailroot)
        meta = actions.read_pending_meta(self.mailroot)
        created = meta.created if meta is not None else None
        self.replace_warning.show(Status.WARN, Msg.of("ui.csr.replace.warning", created=_when(created),
                                                 cn=values.get("cn") or "-"))
        show(self.confirm_box, True)

    def _hide_confirm(self) -> None:
        show(self.confirm_box, False)
        self.replace_warning.clear()

    def _keep_csr_text(self, change: dict[str, Any]) -> None:
        # Read-only: a Textarea keeps the text easy to select and copy, but
        # an accidental edit must not change what is shown as "the CSR".
        if change["new"] != self._csr_text:
            self.csr_text.value = self._csr_text

    def _show_csr(self, pem: bytes, description: dict[str, Any]) -> None:
        self._csr_text = pem.decode("ascii", "replace")
        self._pem = pem
        self._description = description
        self.csr_text.value = self._csr_text
        self.has_csr = True
        show(self.result, True)
        self._draw_result()

    def _draw_result(self) -> None:
        d = self._description
        assert d is not None
        self.result_title.value = _html.render("tag", tag="div", text=self.t(self._result_key))
        self.download.value = _html.render("download", cls="xm-csr-download-link", filename="server.csr",
                                           uri=_html.data_uri(self._pem, "application/pkcs10"),
                                           label=self.t("ui.csr.download"))
        items = [{"text": f"{self.t(f'csr.label.{name}')}: {d[name]}"} for name in _SUBJECT if d.get(name)]
        names = ", ".join(d.get("sans_display") or d.get("sans") or []) or "-"
        items.append({"text": self.t("ui.csr.names", names=names, key=d.get("key", ""))})
        items.append({"text": self.t("ui.csr.fingerprint", sha256=d.get("sha256", ""))})
        self.info.value = _html.render("list", items=items, title="", cls="")


def _when(value: Any) -> Any:
    """The creation time recorded with a CSR, as a time (shown in local time)."""
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return "-"
