"""Step 4: install the certificate, chain and key; roll back to an archived state."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from typing import Any

import ipywidgets as widgets

from ..flows import actions
from ..pki import certfiles
from .. import clock
from ..errors import InputError, XmailnbError
from ..i18n import Msg, has
from ..mailroot.store import ArchiveEntry, Store
from ._base import Step, button, error_msgs, escape

__all__ = ["InstallStep", "upload_value"]

_UPLOADS = ("cert", "chain", "key", "ca")
_FIELDS = ("cert", "chain", "key", "passphrase", "ca", "hostname")


def upload_value(data: bytes, name: str) -> tuple[dict[str, Any], ...]:
    """A FileUpload ``value`` holding *data*, as the browser would send it."""
    return ({"name": name, "type": "application/x-pem-file", "size": len(data),
             "content": memoryview(data), "last_modified": clock.now()},)


def _practice() -> Any:
    try:
        return importlib.import_module("xmailnb.flows.practice")
    except ImportError:
        return None


def _when(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


# The rollback list shows the newest changes; older ones stay reachable with
# `xmailnb rollback --to ID`, and the list stays fast however long the archive.
HISTORY_SHOWN = 50


class InstallStep(Step):
    """Uploads, a preview of what will be written, Apply and Rollback.

    ``plan`` is the :class:`~xmailnb.flows.actions.InstallPlan` of the current
    inputs (``None`` when nothing valid is given).  Upload file names are only
    ever shown, never used as paths.
    """

    STEP = "install"

    def _build(self) -> list[Any]:
        self.plan: actions.InstallPlan | None = None
        self._loading = False
        self._installed = False
        self.uploads: dict[str, widgets.FileUpload] = {}
        self.names: dict[str, widgets.HTML] = {}
        self.notes = {name: self.field_message(name) for name in _FIELDS}
        rows: dict[str, Any] = {}
        for name in _UPLOADS:
            up = widgets.FileUpload(multiple=(name == "chain"), icon="upload",
                                    layout=widgets.Layout(width="auto", min_width="12em"))
            up.add_class(f"xm-install-{name}")
            self.bind(up, "description", "ui.install.choose_files" if name == "chain"
                      else "ui.install.choose_file")
            up.observe(self.safe(lambda _c: self._inputs_changed()), "value")
            self.uploads[name] = up
            shown = widgets.HTML()
            shown.add_class(f"xm-install-{name}-names")
            self.names[name] = shown
            rows[name] = self._row(name, widgets.HBox([up, shown]))
        self.passphrase = widgets.Password(layout=widgets.Layout(width="40%"))
        self.passphrase.add_class("xm-install-passphrase")
        self.passphrase.observe(self.safe(lambda _c: self._inputs_changed()), "value")
        rows["passphrase"] = self._row("passphrase", self.passphrase)
        self.hostname = widgets.Text(layout=widgets.Layout(width="40%"))
        self.hostname.add_class("xm-install-hostname")
        self.hostname.observe(self.safe(lambda _c: self._inputs_changed()), "value")
        rows["hostname"] = self._row("hostname", self.hostname)
        self.allow_incomplete = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="auto"))
        self.allow_incomplete.add_class("xm-install-allow-incomplete")
        self.bind(self.allow_incomplete, "description", "ui.install.allow_incomplete")
        self.allow_incomplete.observe(self.safe(lambda _c: self._inputs_changed()), "value")

        self.use_practice = button(button_style="info", icon="certificate")
        self.use_practice.add_class("xm-install-use-practice")
        self.bind(self.use_practice, "description", "ui.install.use_practice")
        self.use_practice.on_click(self.safe(lambda _b: self.load_practice()))
        self.use_practice.layout.display = "none"

        self.preview_html = widgets.HTML()
        self.preview_html.add_class("xm-install-preview")
        self.apply_button = button(button_style="primary", icon="check", disabled=True)
        self.apply_button.add_class("xm-install-apply")
        self.bind(self.apply_button, "description", "ui.install.apply")
        self.apply_button.on_click(self.safe(lambda _b: self.apply()))

        # Rollback
        self.history: list[ArchiveEntry] = []
        self.rollback_select = widgets.Dropdown(options=[], layout=widgets.Layout(width="70%"))
        self.rollback_select.add_class("xm-rollback-select")
        self.rollback_button = button(icon="undo")
        self.rollback_button.add_class("xm-rollback")
        self.bind(self.rollback_button, "description", "ui.rollback.button")
        self.rollback_button.on_click(self.safe(lambda _b: self.ask_rollback()))
        self.rollback_note = self.field_message("rollback")
        self.rollback_warning = self.new_message("xm-rollback-warning")
        self.rollback_confirm = button(button_style="warning")
        self.rollback_confirm.add_class("xm-rollback-confirm")
        self.bind(self.rollback_confirm, "description", "ui.rollback.confirm")
        self.rollback_confirm.on_click(self.safe(lambda _b: self.rollback()))
        self.rollback_cancel = button()
        self.rollback_cancel.add_class("xm-rollback-cancel")
        self.bind(self.rollback_cancel, "description", "ui.common.cancel")
        self.rollback_cancel.on_click(self.safe(lambda _b: self._hide_rollback_confirm()))
        self.rollback_box = widgets.VBox([self.rollback_warning,
                                          widgets.HBox([self.rollback_confirm, self.rollback_cancel])])
        self.rollback_box.add_class("xm-rollback-confirm-box")
        self.rollback_box.layout.display = "none"
        rollback = widgets.VBox([self.bind(widgets.HTML(), "value", "ui.rollback.title", wrap="h4"),
                                 self.label("ui.rollback.intro"),
                                 widgets.HBox([self.rollback_select, self.rollback_button]),
                                 self.rollback_box, self.rollback_note])
        rollback.add_class("xm-rollback-section")

        return [self.label("ui.install.intro"), self.use_practice, rows["cert"], rows["chain"],
                rows["key"], rows["passphrase"], rows["ca"], rows["hostname"], self.allow_incomplete,
                self.preview_html, self.apply_button, self.message, rollback]

    def _row(self, name: str, widget: Any) -> widgets.VBox:
        label = widgets.HTML()
        self.bind(label, "value", functools.partial(self._label_html, name))
        row = widgets.VBox([label, widget, self.notes[name]])
        row.add_class(f"xm-install-row-{name}")
        return row

    @staticmethod
    def _label_html(name: str, lang: str) -> str:
        from ..i18n import text

        return (f"<b>{escape(text(f'ui.install.label.{name}', lang))}</b>"
                f'<div class="xm-fix">{escape(text(f"ui.install.hint.{name}", lang))}</div>')

    # -- inputs -------------------------------------------------------------------------
    def _files(self, name: str) -> list[actions.Upload]:
        out = []
        for entry in self.uploads[name].value or ():
            display = str(entry.get("name") or "upload")
            content = entry.get("content")
            size = len(content) if content is not None else 0
            if size > certfiles.MAX_INPUT_BYTES:
                raise InputError.of("certfiles.too_large", "certfiles.too_large.fix", field=name,
                                    name=display, size=size, limit=certfiles.MAX_INPUT_BYTES)
            out.append(actions.Upload(bytes(content) if content is not None else b"", display))
        return out

    def _inputs_changed(self) -> None:
        if self._loading:
            return
        self.preview()

    def _show_names(self) -> None:
        for name, up in self.uploads.items():
            shown = [str(e.get("name") or "") for e in (up.value or ())]
            self.names[name].value = escape(", ".join(shown))

    def preview(self) -> actions.InstallPlan | None:
        """Check the current inputs and show what would be written (nothing is written)."""
        assert self.mailroot is not None
        with self._ui_lock, self.hold_trait_notifications():
            self.plan = None
            self.apply_button.disabled = True
            self.preview_html.value = ""
            for note in self.notes.values():
                note.clear()
            self._show_names()
            try:
                certs = self._files("cert")
                chain = self._files("chain")
                key = self._files("key")
                ca = self._files("ca")
                if not certs:
                    self.message.clear()
                    self._update_state()
                    return None
                passphrase = self.passphrase.value.encode("utf-8") or None
                plan = actions.plan_install(
                    self.mailroot, certs[0], chain, key=key[0] if key else None,
                    ca=ca[0] if ca else None, passphrase=passphrase,
                    hostname=self.hostname.value.strip() or None,
                    allow_incomplete=self.allow_incomplete.value)
            except Exception as exc:
                self._show_error(exc, key_given=bool(self.uploads["key"].value))
                return None
            self.plan = plan
            self.apply_button.disabled = False
            self.message.show("ok", Msg.of("ui.install.checked"))
            self._draw_preview()
            self._update_state()
            return plan

    def _show_error(self, exc: BaseException, *, key_given: bool) -> None:
        field = getattr(exc, "field", None)
        # "No key matches" is about the certificate when no key file was given.
        if field == "key" and not key_given:
            field = "cert"
        if field in self.notes:
            # The fix is shown beside the input; the outcome line just says what failed.
            self.notes[field].show("error", *error_msgs(exc))
            self.message.show("error", error_msgs(exc)[0])
        else:
            self.message.show_error(exc)
        self.state = "error"

    def _draw_preview(self) -> None:
        plan = self.plan
        if plan is None:
            self.preview_html.value = ""
            return
        d = plan.describe(self.lang)
        t = self.t
        leaf = d["leaf"]
        items = [
            t("cli.preview.leaf", subject=leaf["subject"], names=", ".join(leaf["sans"]) or "-",
              not_after=leaf["not_after"]),
            t("ui.install.preview.issuer", issuer=leaf["issuer"]),
            t("ui.install.preview.validity", not_before=leaf["not_before"], not_after=leaf["not_after"]),
        ]
        for n, inter in enumerate(d["intermediates"], 1):
            items.append(t("cli.preview.intermediate", n=n, subject=inter["subject"]))
        if d["root_left_out"]:
            items.append(t("cli.preview.root", subject=d["root_left_out"]["subject"]))
        for c in d.get("left_out", ()):
            items.append(t("cli.preview.left_out", subject=c["subject"]))
        items.append(t("cli.preview.key", type=d["key"]["type"],
                       source=t(f"cli.preview.key_source.{d['key']['source']}")))
        if d["hostname"]:
            items.append(t("ui.install.preview.hostname", hostname=d["hostname"]))
        if d["trusted"]:
            items.append(t("ui.install.preview.trusted", anchor=d["trust_anchor"] or "-"))
        for ca in d["ca_added"]:
            items.append(t("ui.install.preview.ca_added", subject=ca["subject"]))
        items.append(t("ui.install.preview.written", count=len(d["intermediates"])))
        body = "".join(f"<li>{escape(i)}</li>" for i in items)
        warnings = "".join(f'<li class="xm-warn">{escape(w)}</li>' for w in d["warnings"])
        self.preview_html.value = (f"<b>{escape(t('ui.install.preview.title'))}</b><ul>{body}</ul>"
                                   + (f"<ul>{warnings}</ul>" if warnings else ""))

    def apply(self) -> Any:
        """Check the inputs again and write server.cert/server.key through the store."""
        assert self.mailroot is not None
        plan = self.preview()
        if plan is None:
            return None
        try:
            entry = actions.apply_install(self.mailroot, plan)
        except Exception as exc:
            self.message.show_error(exc)
            self.state = "error"
            return None
        if entry is None:
            self.message.show("ok", Msg.of("cli.install.unchanged"))
        else:
            self.message.show("ok", Msg.of("ui.install.done", id=entry.id), Msg.of("ui.install.next"))
        self._installed = True
        # The key is installed now: keep no copy of it (or its passphrase) in
        # the widgets' state.
        self._loading = True
        try:
            self.uploads["key"].value = ()
            self.passphrase.value = ""
        finally:
            self._loading = False
        self._show_names()
        self._refresh_history()
        self.state = "done"
        self.mark_changed()
        return entry

    # -- practice ---------------------------------------------------------------------------
    def _practice_issue(self) -> Any:
        assert self.mailroot is not None
        practice = _practice()
        if practice is None or not self.mailroot.is_sandbox or not hasattr(practice, "issued"):
            return None
        try:
            return practice.issued(self.mailroot)
        except Exception:
            return None

    def load_practice(self) -> None:
        """Use the practice CA's certificate and intermediate as the inputs."""
        issue = self._practice_issue()
        if issue is None:
            return
        try:
            cert = issue.server.read_bytes()
            inter = issue.intermediate.read_bytes()
        except OSError as exc:
            self.message.show_error(exc)
            return
        self._loading = True
        try:
            self.uploads["cert"].value = upload_value(cert, issue.server.name)
            self.uploads["chain"].value = upload_value(inter, issue.intermediate.name)
        finally:
            self._loading = False
        self.preview()

    # -- rollback ------------------------------------------------------------------------------
    def _entry_label(self, entry: ArchiveEntry) -> str:
        key = f"ui.action.{entry.action}"
        action = self.t(key) if has(key, self.lang) else entry.action
        files = ", ".join(sorted(entry.files))
        return self.t("ui.rollback.option", time=_when(entry.time), action=action, files=files)

    def _refresh_history(self) -> None:
        assert self.mailroot is not None
        known = [e.id for e in self.history]
        self.history = Store(self.mailroot).history(limit=HISTORY_SHOWN, bookkeeping=False)
        current = self.rollback_select.value
        self.rollback_select.options = [(self._entry_label(e), e.id) for e in self.history]
        ids = [e.id for e in self.history]
        # Newest first; keep the user's choice until the history changes.
        self.rollback_select.value = current if current in ids and ids == known else (ids[0] if ids else None)
        self.rollback_select.disabled = not ids
        self.rollback_button.disabled = not ids
        if not ids:
            self.rollback_note.show("info", Msg.of("store.history.empty"))
        elif self.rollback_note.status == "info":
            self.rollback_note.clear()

    def _selected(self) -> ArchiveEntry | None:
        return next((e for e in self.history if e.id == self.rollback_select.value), None)

    def ask_rollback(self) -> None:
        """Show what the chosen rollback would restore and ask to confirm."""
        entry = self._selected()
        if entry is None:
            return
        self.rollback_warning.show("warn", Msg.of("ui.rollback.question", time=_when(entry.time),
                                                  action=self._entry_label(entry)))
        self.rollback_box.layout.display = None

    def _hide_rollback_confirm(self) -> None:
        self.rollback_box.layout.display = "none"
        self.rollback_warning.clear()

    def rollback(self) -> Any:
        """Restore the chosen archived state (after :meth:`ask_rollback`)."""
        assert self.mailroot is not None
        entry = self._selected()
        self._hide_rollback_confirm()
        if entry is None:
            return None
        try:
            target, new = actions.rollback(self.mailroot, entry.id)
        except XmailnbError as exc:
            self.rollback_note.show_error(exc)
            self.message.show_error(exc)
            return None
        if new is None:
            msg = Msg.of("ui.rollback.unchanged", time=_when(target.time))
            self.rollback_note.show("ok", msg)
            self.message.show("ok", msg)
        else:
            msg = Msg.of("ui.rollback.done", time=_when(target.time), id=new.id)
            self.rollback_note.show("ok", msg)
            self.message.show("ok", msg)
        self._refresh_history()
        self.mark_changed()
        return target

    # -- refresh ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        assert self.mailroot is not None
        self._refresh_history()
        self.use_practice.layout.display = None if self._practice_issue() is not None else "none"
        self._update_state()

    def _update_state(self) -> None:
        assert self.mailroot is not None
        if self._installed or (self.mailroot.server_cert.is_file() and self.mailroot.server_key.is_file()):
            self.state = "done"
        else:
            self.state = "ready"

    def _relabel(self) -> None:
        self._draw_preview()
        if self.history:
            current = self.rollback_select.value
            self.rollback_select.options = [(self._entry_label(e), e.id) for e in self.history]
            self.rollback_select.value = current
        entry = self._selected()
        if entry is not None and self.rollback_box.layout.display != "none":
            self.ask_rollback()
