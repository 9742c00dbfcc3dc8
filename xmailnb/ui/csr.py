"""Step 2: the CSR form; the key is made in a worker thread."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from typing import Any

import ipywidgets as widgets

from ..flows import actions
from ..pki import certfiles, keys
from ..pki import csr as csrmod
from ..i18n import Msg
from ._base import Step, button, data_uri_link, error_msgs, escape, set_flag_class

__all__ = ["CsrStep"]

# The command line's help texts double as the hint under each field.
_HINTS = {"country": "cli.help.country", "state": "cli.help.state", "locality": "cli.help.locality",
          "org": "cli.help.org", "unit": "cli.help.unit", "cn": "cli.help.cn",
          "aliases": "ui.csr.hint.aliases", "email": "cli.help.email", "keytype": "cli.help.key_type",
          "keysize": "cli.help.key_size", "curve": "cli.help.curve", "memo": "ui.csr.hint.memo"}
_TEXT_NOTES = ("state", "locality", "org", "unit")
_SUBJECT = ("country", "state", "locality", "org", "unit", "cn", "email")


class CsrStep(Step):
    """Every CSR field with validation as you type; Generate makes the key and CSR.

    ``inputs[name]`` is the input widget of each field of
    :data:`xmailnb.pki.csr.FIELDS` (it carries ``xm-csr-<name>``, and
    ``xm-invalid`` while its value is invalid).  :meth:`generate` returns as
    soon as the worker thread has started; :meth:`wait` waits for it.
    """

    STEP = "csr"

    # -- building ----------------------------------------------------------------
    def _build(self) -> list[Any]:
        self.future: concurrent.futures.Future[Any] | None = None
        self.inputs: dict[str, Any] = {}
        self.notes: dict[str, Any] = {}
        self.rows: dict[str, widgets.VBox] = {}
        self.touched: set[str] = set()
        self.errors: dict[str, Msg] = {}
        self._loading = False
        self._prefilled = False
        self._failed = False
        self._csr_text = ""
        self.has_csr = False

        for name in csrmod.FIELDS:
            widget = self._make_input(name)
            widget.add_class(f"xm-csr-{name}")
            self.inputs[name] = widget
            self.notes[name] = self.field_message(name)
            label = widgets.HTML()
            required = name in csrmod.REQUIRED_FIELDS
            self.bind(label, "value", functools.partial(self._label_html, name, required))
            row = widgets.VBox([label, widget, self.notes[name]])
            row.add_class("xm-csr-row")
            row.add_class(f"xm-csr-row-{name}")
            self.rows[name] = row
            widget.observe(self.safe(lambda change, n=name: self._changed(n)), "value")

        self.keyinfo = widgets.HTML()
        self.keyinfo.add_class("xm-csr-keyinfo")

        # Renewal: a new CSR from the installed key (offered when it can be kept).
        self.renew = widgets.ToggleButtons(options=self._renew_options(), value="new")
        self.renew.add_class("xm-csr-renew")
        self.renew.observe(self.safe(lambda _c: self._validate()), "value")
        self.renew_hint = widgets.HTML()
        self.renew_hint.add_class("xm-csr-renew-hint")
        renew_label = widgets.HTML()
        self.bind(renew_label, "value", "csr.renew.choice.label", wrap="b")
        self.renew_row = widgets.VBox([renew_label, self.renew, self.renew_hint])
        self.renew_row.add_class("xm-csr-row")
        self.renew_row.add_class("xm-csr-row-renew")
        self.renew_row.layout.display = "none"
        self.renew_unavailable = self.new_message("xm-csr-renew-unavailable")
        self._renewal: Any = None
        self._renewal_reason: Msg | None = None

        self.generate_button = button(button_style="primary", icon="key", disabled=True)
        self.generate_button.add_class("xm-csr-generate")
        self.bind(self.generate_button, "description", "ui.csr.generate")
        self.generate_button.on_click(self.safe(lambda _b: self.generate()))

        self.replace_warning = self.new_message("xm-csr-replace-warning")
        self.confirm_button = button(button_style="warning")
        self.confirm_button.add_class("xm-csr-confirm")
        self.bind(self.confirm_button, "description", "ui.csr.replace.confirm")
        self.confirm_button.on_click(self.safe(lambda _b: self.generate(confirmed=True)))
        self.cancel_button = button()
        self.cancel_button.add_class("xm-csr-cancel")
        self.bind(self.cancel_button, "description", "ui.common.cancel")
        self.cancel_button.on_click(self.safe(lambda _b: self._hide_confirm()))
        self.confirm_box = widgets.VBox([self.replace_warning,
                                         widgets.HBox([self.confirm_button, self.cancel_button])])
        self.confirm_box.add_class("xm-csr-confirm-box")
        self.confirm_box.layout.display = "none"

        self.progress = widgets.HTML()
        self.progress.add_class("xm-progress")
        self.bind(self.progress, "value", "ui.csr.progress", html_text=True)
        self.progress.layout.display = "none"

        self.result_title = widgets.HTML()
        self.csr_text = widgets.Textarea(rows=12, layout=widgets.Layout(width="100%"))
        self.csr_text.add_class("xm-csr-text")
        self.csr_text.observe(self._keep_csr_text, "value")
        self.download = widgets.HTML()
        self.download.add_class("xm-csr-download")
        self.info = widgets.HTML()
        self.info.add_class("xm-csr-info")
        self.result = widgets.VBox([self.result_title, self.csr_text, self.download, self.info])
        self.result.add_class("xm-csr-result")
        self.result.layout.display = "none"
        self._description: dict[str, Any] | None = None
        self._result_key = "ui.csr.result.new"

        r = self.rows
        subject = widgets.VBox([r["country"], r["state"], r["locality"], r["org"], r["unit"],
                                r["cn"], r["aliases"], r["email"]])
        keybox = widgets.VBox([self.renew_row, self.renew_unavailable, r["keytype"], r["keysize"], r["curve"],
                               self.keyinfo])
        return [self.label("ui.csr.intro"), subject, keybox, r["memo"], self.generate_button,
                self.confirm_box, self.progress, self.message, self.result]

    def _make_input(self, name: str) -> Any:
        if name == "keytype":
            return widgets.ToggleButtons(options=self._keytype_options(), value=keys.DEFAULT_KEY_TYPE)
        if name == "keysize":
            return widgets.Dropdown(options=self._keysize_options(), value=keys.DEFAULT_RSA_SIZE)
        if name == "curve":
            return widgets.Dropdown(options=list(keys.EC_CURVES), value=keys.DEFAULT_CURVE)
        if name in ("aliases", "memo"):
            return widgets.Textarea(rows=2 if name == "aliases" else 3, continuous_update=True,
                                    layout=widgets.Layout(width="60%"))
        return widgets.Text(continuous_update=True, layout=widgets.Layout(width="60%"))

    def _keytype_options(self) -> list[tuple[str, str]]:
        return [(self.t(f"ui.csr.keytype.{k}"), k) for k in keys.KEY_TYPES]

    def _renew_options(self) -> list[tuple[str, str]]:
        return [(self.t("csr.renew.choice.renew"), "renew"), (self.t("csr.renew.choice.new"), "new")]

    @property
    def renewing(self) -> bool:
        """The CSR will be made from the installed key."""
        return self._renewal is not None and self.renew.value == "renew"

    def _check_renewal(self) -> None:
        """Offer the renewal choice when the installed key can be kept; it is
        the default when it first becomes possible (a certificate is
        installed: the admin is renewing)."""
        assert self.mailroot is not None
        before = self._renewal
        try:
            self._renewal = actions.renewal_key(self.mailroot)
            self._renewal_reason = None
        except Exception as exc:
            self._renewal = None
            installed = self.mailroot.server_cert.is_file() and self.mailroot.server_key.exists()
            self._renewal_reason = getattr(exc, "msg", None) if installed else None
        if self._renewal is not None and before is None:
            self.renew.value = "renew"
        self._draw_renewal()

    def _draw_renewal(self) -> None:
        if self._renewal is None:
            self.renew_row.layout.display = "none"
            if self._renewal_reason is not None:
                self.renew_unavailable.show("info", Msg.of("csr.renew.choice.unavailable",
                                                           reason=self._renewal_reason))
            else:
                self.renew_unavailable.clear()
            return
        self.renew_unavailable.clear()
        self.renew_row.layout.display = None
        self.renew_hint.value = (f'<div class="xm-fix">'
                                 f'{escape(self.t("csr.renew.choice.hint", key=self._renewal.summary))}</div>')

    def _keysize_options(self) -> list[tuple[str, int]]:
        return [(self.t("ui.csr.keysize.option", size=s), s) for s in keys.RSA_SIZES]

    def _label_html(self, name: str, required: bool, lang: str) -> str:
        from ..i18n import text

        label = escape(text(f"csr.label.{name}", lang))
        extra = "" if required or name in ("keytype", "keysize", "curve") else \
            f' <span class="xm-optional">{escape(text("ui.csr.optional", lang))}</span>'
        hint = escape(text(_HINTS[name], lang))
        return f'<b>{label}</b>{extra}<div class="xm-fix">{hint}</div>'

    # -- form --------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The form's current values by field name."""
        return {name: w.value for name, w in self.inputs.items()}

    def _changed(self, name: str) -> None:
        if self._loading:
            return
        self.touched.add(name)
        self._failed = False
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
                if shown:
                    note.show("error", err, Msg.of(f"csr.{name}.fix") if name not in
                              ("keytype", "keysize", "curve") else Msg.of(f"keys.{_KEYFIX[name]}.fix"))
                elif err is None and name in _TEXT_NOTES and csrmod.field_note(name, values[name]):
                    note.show("warn", csrmod.field_note(name, values[name]))  # type: ignore[arg-type]
                else:
                    note.clear()
            ec = values["keytype"] == "ec"
            renewing = self.renewing
            # The installed key is kept as it is: no key choices then.
            self.rows["keytype"].layout.display = "none" if renewing else None
            self.rows["keysize"].layout.display = "none" if ec or renewing else None
            self.rows["curve"].layout.display = None if ec and not renewing else "none"
            self._show_keyinfo()
            busy = self.future is not None and not self.future.done()
            self.generate_button.disabled = bool(errors) or busy
            self._update_state()

    def _show_keyinfo(self) -> None:
        if self.renewing:
            self.keyinfo.value = ""
            return
        v = self.values()
        try:
            spec = keys.KeySpec.from_strings(v["keytype"], v["keysize"], v["curve"])
        except Exception:
            self.keyinfo.value = ""
            return
        self.keyinfo.value = f'<div class="xm-fix">{escape(spec.describe().render(self.lang))}</div>'

    def _update_state(self) -> None:
        if self.future is not None and not self.future.done():
            return
        if self._failed:
            self.state = "error"
        elif self.has_csr:
            self.state = "done"
        else:
            self.state = "init" if self.errors else "ready"

    def _prefill(self) -> None:
        """Start from the pending CSR's subject, else from server.tab's host name."""
        assert self.mailroot is not None
        meta = actions.read_pending_meta(self.mailroot)
        values: dict[str, Any] = {}
        subject = meta.get("subject") if isinstance(meta.get("subject"), dict) else {}
        for name in _SUBJECT:
            if subject and isinstance(subject.get(name), str):
                values[name] = subject[name]
        cn = values.get("cn", "")
        sans = meta.get("sans")
        aliases = [s for s in sans if isinstance(s, str) and s != cn] if isinstance(sans, list) else []
        if aliases:
            values["aliases"] = " ".join(aliases)
        if isinstance(meta.get("memo"), str):
            values["memo"] = meta["memo"]
        key = str(meta.get("key") or "").split()
        if len(key) == 2 and key[0] == "RSA" and key[1].isdigit() and int(key[1]) in keys.RSA_SIZES:
            values["keytype"], values["keysize"] = "rsa", int(key[1])
        elif len(key) == 2 and key[0] == "EC" and key[1] in keys.EC_CURVES:
            values["keytype"], values["curve"] = "ec", key[1]
        if not values.get("cn"):
            from ..mailroot.servertab import ServerTab, mail_hostname

            try:
                host = mail_hostname(ServerTab.read(self.mailroot.server_tab))
            except OSError:
                host = None
            if host:
                values["cn"] = host
        self._loading = True
        try:
            for name, value in values.items():
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
            except Exception:
                described = None
        if described is not None:
            if self._description is None or self._description.get("sha256") != described[1]["sha256"]:
                self._result_key = "ui.csr.result.pending"
            self._show_csr(*described)
        else:
            self.has_csr = False
            self._description = None
            self.result.layout.display = "none"
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
                self.message.show("error", Msg.of("ui.csr.form_invalid"))
                return None
            if not confirmed and actions.pending_csr_exists(self.mailroot):
                self._show_confirm()
                return None
            self._hide_confirm()
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self.future = future
            self.generate_button.disabled = True
            self.progress.layout.display = None
            self.message.clear()
            self.state = "init"
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
            future.set_exception(exc)
            return
        future.set_result(result)

    def _finish(self, result: actions.CsrResult) -> None:
        assert self.mailroot is not None
        mr = self.mailroot
        with self._ui_lock, self.hold_trait_notifications():
            self.progress.layout.display = "none"
            self._failed = False
            self._result_key = "ui.csr.result.new"
            self._show_csr(result.pem, result.description)
            msgs = [Msg.of("ui.csr.done", key=mr.rel_pending_key, csr=mr.rel_pending_csr)]
            if result.reused_key:
                msgs.append(Msg.of("csr.renew.kept", key=result.description.get("key", ""),
                                   pending=mr.rel_pending_key))
            if result.entry is not None and result.replaced_pending:
                msgs.append(Msg.of("ui.csr.archived", id=result.entry.id))
            msgs.append(Msg.of("ui.csr.next"))
            self.message.show("ok", *msgs)
        # Outside the lock: the wizard re-runs the diagnosis on this.
        self._after_generation()

    def _after_generation(self) -> None:
        # The future is still pending here, so state must be set explicitly.
        self.generate_button.disabled = bool(self.errors)
        self.state = "done"
        self.mark_changed()

    def _finish_error(self, exc: BaseException) -> None:
        with self._ui_lock, self.hold_trait_notifications():
            self.progress.layout.display = "none"
            self._failed = True
            field = getattr(exc, "field", None)
            if field == "renew":
                self.renew_unavailable.show_error(exc)
            if field in self.notes:
                self.touched.add(field)
                self.notes[field].show("error", *error_msgs(exc))
                set_flag_class(self.inputs[field], "xm-invalid", True)
            self.message.show_error(exc)
            self.generate_button.disabled = bool(self.errors)
            self.state = "error"

    # -- confirmation and result -----------------------------------------------------------
    def _show_confirm(self) -> None:
        assert self.mailroot is not None
        meta = actions.read_pending_meta(self.mailroot)
        subject = meta.get("subject")
        cn = subject.get("cn") if isinstance(subject, dict) else None
        self.replace_warning.show("warn", Msg.of("ui.csr.replace.warning",
                                                 created=str(meta.get("created") or "-"),
                                                 cn=str(cn or "-")))
        self.confirm_box.layout.display = None

    def _hide_confirm(self) -> None:
        self.confirm_box.layout.display = "none"
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
        self.result.layout.display = None
        self._draw_result()

    def _draw_result(self) -> None:
        d = self._description
        assert d is not None
        self.result_title.value = f"<b>{escape(self.t(self._result_key))}</b>"
        self.download.value = data_uri_link(self._pem, "server.csr", "application/pkcs10",
                                            self.t("ui.csr.download"), "xm-csr-download-link")
        rows = []
        for name in _SUBJECT:
            if d.get(name):
                rows.append(f"<li>{escape(self.t(f'csr.label.{name}'))}: {escape(str(d[name]))}</li>")
        names = ", ".join(d.get("sans_display") or d.get("sans") or []) or "-"
        rows.append(f"<li>{escape(self.t('cli.csr.names', names=names, key=d.get('key', '')))}</li>")
        rows.append(f"<li>{escape(self.t('cli.csr.fingerprint', sha256=d.get('sha256', '')))}</li>")
        self.info.value = "<ul>" + "".join(rows) + "</ul>"


_KEYFIX = {"keytype": "type", "keysize": "size", "curve": "curve"}
