"""Step 4: install the certificate, chain and key; roll back to an archived state."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from typing import Any

import ipywidgets as widgets

from ..flows import actions, practice
from ..pki import chain as chainmod
from .. import clock
from ..errors import XmailnbError
from ..i18n import Msg
from ..status import Status
from ..steps import Step
from ..mailroot.store import ArchiveEntry, Store
from . import _html
from ._base import Activity, StepView, box, button, classed, error_msgs, html, shared, show

__all__ = ["InstallStep", "upload_value", "HISTORY_SHOWN"]

_UPLOADS = ("cert", "chain", "key", "ca")
_FIELDS = ("cert", "chain", "key", "passphrase", "ca", "hostname")
_MORE = ("key", "passphrase", "ca", "hostname")

# The rollback list shows the newest changes; older ones stay reachable from
# the command line, and the list stays fast however long the archive.
HISTORY_SHOWN = 50


def _in_kernel() -> bool:
    """Whether the page runs in a Jupyter kernel (Voilà, JupyterLab), where
    work on the kernel's main thread would freeze every widget."""
    # A running kernel has imported its application class; nothing else to load.
    app = sys.modules.get("ipykernel.kernelapp")
    return app is not None and bool(app.IPKernelApp.initialized())


def upload_value(data: bytes, name: str) -> tuple[dict[str, Any], ...]:
    """A FileUpload ``value`` holding *data*, as the browser would send it."""
    return ({"name": name, "type": "application/x-pem-file", "size": len(data),
             "content": memoryview(data), "last_modified": clock.now()},)


class InstallStep(StepView):
    """Uploads, a preview of what will be written, Install, and Roll back.

    ``plan`` is the :class:`~xmailnb.flows.actions.InstallPlan` of the current
    inputs (``None`` when nothing valid is given).  Upload file names are only
    ever shown, never used as paths.  The rollback confirmation
    (``xm-rollback-confirm``) lists the files that would be removed or
    replaced and what that means for the server.
    """

    STEP = Step.INSTALL

    def _build(self) -> list[Any]:
        self.plan: actions.InstallPlan | None = None
        self._loading = False
        # In a kernel the check of the inputs runs in a worker thread that
        # the Stop button cancels; ``future`` is the running check's.
        self.threaded = _in_kernel()
        self.future: concurrent.futures.Future[Any] | None = None
        self._cancel: threading.Event | None = None
        self._applying = False
        self.uploads: dict[str, widgets.FileUpload] = {}
        self.names: dict[str, widgets.HTML] = {}
        self.notes = {name: self.field_message(name) for name in _FIELDS}
        rows: dict[str, Any] = {}
        # Widgets are made with their classes, labels and layouts: the step's
        # first opening is one message per widget (ui/_base.py, classed).
        for name in _UPLOADS:
            choose = "ui.install.choose_files" if name == "chain" else "ui.install.choose_file"
            up = self.bound(classed, "description", choose, widgets.FileUpload, f"xm-install-{name}",
                            multiple=(name == "chain"), layout=shared("upload"))
            up.observe(self.safe(lambda _c: self._inputs_changed()), "value")
            self.uploads[name] = up
            self.names[name] = html("", f"xm-install-{name}-names", "xm-hint")
            rows[name] = self._row(name, box([up, self.names[name]], "xm-actions", horizontal=True))
        self.passphrase = classed(widgets.Password, "xm-install-passphrase", layout=shared("layout"),
                                  style=shared("input_style"))
        self.passphrase.observe(self.safe(lambda _c: self._inputs_changed()), "value")
        rows["passphrase"] = self._row("passphrase", self.passphrase)
        self.hostname = classed(widgets.Text, "xm-install-hostname", placeholder="mail.example.jp",
                                layout=shared("layout"), style=shared("input_style"))
        self.hostname.observe(self.safe(lambda _c: self._inputs_changed()), "value")
        rows["hostname"] = self._row("hostname", self.hostname)
        self.allow_incomplete = self.bound(classed, "description", "ui.install.allow_incomplete", widgets.Checkbox,
                                           "xm-install-allow-incomplete", value=False, indent=False,
                                           layout=shared("auto"))
        self.allow_incomplete.observe(self.safe(lambda _c: self._inputs_changed()), "value")

        self.use_practice = self.bound(button, "description", "ui.install.use_practice", "xm-install-use-practice",
                                       button_style="info",
                                       layout=widgets.Layout(width="auto", align_self="flex-start", display="none"))
        self.use_practice.on_click(self.safe(lambda _b: self.load_practice()))

        # Key, passphrase, CA certificate, host name: rarely needed.
        self.more_toggle = self.bound(classed, "description", "ui.install.more", widgets.ToggleButton,
                                      "xm-install-more", value=False, layout=shared("auto"))
        # The grid is inside: its "display: grid" would override the hidden box's display.
        grid = box([rows[n] for n in _MORE], "xm-fields")
        self.more = box([grid], "xm-install-more-fields", hidden=True)
        self.more_toggle.observe(lambda c: show(self.more, bool(c["new"])), "value")

        self.progress = html(self.t("ui.install.checking"), "xm-progress", "xm-install-progress", hideable=True)
        self.bind(self.progress, "value", "ui.install.checking")
        self.stop_button = self.bound(button, "description", "ui.install.stop", "xm-install-stop", hideable=True)
        self.stop_button.on_click(self.safe(lambda _b: self.stop()))
        self.progress_row = box([self.progress, self.stop_button], "xm-actions", horizontal=True, hidden=True)
        self.preview_html = html("", "xm-install-preview", hideable=True)
        self.apply_button = self.bound(button, "description", "ui.install.apply", "xm-install-apply",
                                       button_style="primary", disabled=True)
        self.apply_button.on_click(self.safe(lambda _b: self.apply()))
        inputs = box([self.label("ui.install.section.files", "xm-section-title"), self.use_practice,
                      rows["cert"], rows["chain"], self.allow_incomplete, self.more_toggle, self.more,
                      self.progress_row], "xm-section")
        self.preview_box = box([self.preview_html, self.apply_button], "xm-section", "xm-install-preview-box",
                               hidden=True)

        # Rollback
        self.history: list[ArchiveEntry] = []
        self._labels: dict[str, Msg] = {}
        self.rollback_select = classed(widgets.Dropdown, "xm-rollback-select", options=[],
                                       layout=widgets.Layout(width="auto", flex="1 1 auto"))
        self.rollback_select.observe(lambda _c: self._hide_rollback_confirm(), "value")
        self.rollback_button = self.bound(button, "description", "ui.rollback.button", "xm-rollback")
        self.rollback_button.on_click(self.safe(lambda _b: self.ask_rollback()))
        self.rollback_note = self.field_message("rollback")
        self.rollback_result = self.new_message("xm-rollback-result", "xm-message-like")
        self.rollback_warning = html("", "xm-rollback-warning")
        self.rollback_yes = self.bound(button, "description", "ui.rollback.confirm", "xm-rollback-yes",
                                       button_style="danger")
        self.rollback_yes.on_click(self.safe(lambda _b: self.rollback()))
        self.rollback_cancel = self.bound(button, "description", "ui.common.cancel", "xm-rollback-cancel")
        self.rollback_cancel.on_click(self.safe(lambda _b: self._hide_rollback_confirm()))
        confirm_actions = box([self.rollback_yes, self.rollback_cancel], "xm-actions", horizontal=True)
        self.rollback_box = box([self.rollback_warning, confirm_actions], "xm-confirm", "xm-rollback-confirm",
                                hidden=True)
        self._confirming: actions.RollbackEffects | None = None
        chooser = box([self.rollback_select, self.rollback_button], "xm-actions", horizontal=True)
        rollback = box([self.label("ui.rollback.title", "xm-section-title"),
                        self.label("ui.rollback.intro", "xm-hint"), chooser, self.rollback_note,
                        self.rollback_box, self.rollback_result], "xm-section", "xm-rollback-section")
        return [inputs, self.preview_box, self.message, rollback]

    def _row(self, name: str, widget: Any) -> widgets.Box:
        label = self.field_label(f"ui.install.label.{name}", f"ui.install.hint.{name}")
        return box([label, widget, self.notes[name]], "xm-row", f"xm-install-row-{name}")

    # -- inputs -------------------------------------------------------------------------
    def _files(self, name: str) -> list[actions.Upload]:
        out = []
        for entry in self.uploads[name].value or ():
            display = str(entry.get("name") or "upload")
            content = entry.get("content")
            # Its size is checked where it is read (pki.certfiles), as a file's is.
            out.append(actions.Upload(bytes(content) if content is not None else b"", display))
        return out

    def _inputs_changed(self) -> None:
        if self._loading:
            return
        if self.threaded:
            self.check()
        else:
            self.preview()

    def _gather(self) -> dict[str, Any] | None:
        """The arguments of :func:`~xmailnb.flows.actions.plan_install` from
        the widgets (``None`` when no server certificate is given).  An
        oversized upload is refused where it is read, as a file is.
        """
        certs = self._files("cert")
        chain = self._files("chain")
        key = self._files("key")
        ca = self._files("ca")
        if not certs:
            return None
        return {"cert": certs[0], "chain": chain, "key": key[0] if key else None, "ca": ca[0] if ca else None,
                "passphrase": self.passphrase.value.encode("utf-8") or None,
                "hostname": self.hostname.value.strip() or None,
                "allow_incomplete": self.allow_incomplete.value}

    def check(self) -> concurrent.futures.Future[Any] | None:
        """Check the current inputs in a worker thread (the kernel stays free
        for the page), showing progress and a Stop button; a newer check
        cancels an older one.  Returns the check's future, or ``None`` when
        there is nothing to check."""
        assert self.mailroot is not None
        with self._ui_lock, self.hold_trait_notifications():
            args = self._fresh_inputs()
            if args is None:
                return None
            cancel = threading.Event()
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self._cancel, self.future = cancel, future
            self.message.clear()
            self._draw_preview()
            show(self.progress_row, True)
            self.activity = Activity.BUSY
        threading.Thread(target=self._work, args=(args, cancel, future), name="xmailnb-install-check",
                         daemon=True).start()
        return future

    def stop(self) -> None:
        """Stop the running check (nothing is installed)."""
        with self._ui_lock:
            if self._cancel is not None:
                self._cancel.set()

    def _work(self, args: dict[str, Any], cancel: threading.Event,
              future: concurrent.futures.Future[Any]) -> None:
        assert self.mailroot is not None
        plan: actions.InstallPlan | None = None
        error: BaseException | None = None
        try:
            plan = actions.plan_install(self.mailroot, cancel=cancel, **args)
        except BaseException as exc:  # shown below; never lost in a thread
            error = exc
        try:
            with self._ui_lock, self.hold_trait_notifications():
                if self._cancel is not cancel:
                    return  # superseded by newer inputs, which show their own result
                self._cancel = None
                show(self.progress_row, False)
                if isinstance(error, chainmod.Cancelled):
                    self.message.show(Status.INFO, Msg.of("ui.install.stopped"))
                    self.activity = Activity.IDLE
                elif isinstance(error, XmailnbError):
                    self._show_error(error, key_given=bool(self.uploads["key"].value))
                elif error is not None:
                    self.message.show_error(error, "checking the certificate files")
                    self.activity = Activity.FAILED
                else:
                    self._show_plan(plan)
                self._draw_preview()
        finally:
            if error is not None and not isinstance(error, chainmod.Cancelled):
                future.set_exception(error)
            else:
                future.set_result(plan)

    def _fresh_inputs(self) -> dict[str, Any] | None:
        """Under the UI lock: supersede a running check, clear the last
        result and read the inputs; ``None`` (the reason shown) when there
        is nothing to check."""
        if self._cancel is not None:  # a check in a thread is superseded
            self._cancel.set()
            self._cancel = None
            show(self.progress_row, False)
        self.plan = None
        self.apply_button.disabled = True
        for note in self.notes.values():
            note.clear()
        self._show_names()
        try:
            args = self._gather()
        except XmailnbError as exc:
            self._show_error(exc, key_given=bool(self.uploads["key"].value))
            self._draw_preview()
            return None
        if args is None:
            self.message.clear()
            self._draw_preview()
        return args

    def _show_plan(self, plan: actions.InstallPlan | None) -> None:
        self.plan = plan
        self.apply_button.disabled = plan is None
        if plan is not None:
            self.activity = Activity.IDLE
            self.message.show(Status.OK, Msg.of("ui.install.checked"))

    def _show_names(self) -> None:
        for name, up in self.uploads.items():
            shown = [str(e.get("name") or "") for e in (up.value or ())]
            self.names[name].value = _html.render("tag", tag="span", text=", ".join(shown))

    def preview(self) -> actions.InstallPlan | None:
        """Check the current inputs and show what would be written (nothing is written)."""
        assert self.mailroot is not None
        with self._ui_lock, self.hold_trait_notifications():
            args = self._fresh_inputs()
            if args is None:
                return None
            try:
                plan = actions.plan_install(self.mailroot, **args)
            except XmailnbError as exc:
                self._show_error(exc, key_given=bool(self.uploads["key"].value))
                self._draw_preview()
                return None
            self._show_plan(plan)
            self._draw_preview()
            return plan

    def _show_error(self, exc: XmailnbError, *, key_given: bool) -> None:
        field = exc.field
        # "No key matches" is about the certificate when no key file was given.
        if field == "key" and not key_given:
            field = "cert"
        if field in self.notes:
            # The fix is shown beside the input; the outcome line says what failed.
            self.notes[field].show(Status.ERROR, *error_msgs(exc))
            self.message.show(Status.ERROR, exc.msg)
            if field in _MORE:
                self.more_toggle.value = True
        else:
            self.message.show_error(exc)
        self.activity = Activity.FAILED

    def _draw_preview(self) -> None:
        plan = self.plan
        show(self.preview_box, plan is not None)
        if plan is None:
            self.preview_html.value = ""
            return
        items = [{"text": self.m(line)} for line in plan.preview()]
        items += [{"text": self.m(w), "cls": "xm-warn"} for w in plan.warnings]
        self.preview_html.value = _html.render("list", title=self.t("ui.install.preview.title"), items=items,
                                               cls="xm-preview")

    def apply(self) -> Any:
        """Check the inputs again and write server.cert/server.key through the store.

        A second click while installing, or after the install emptied the
        form (a double-click), does nothing: the install happens once and
        its result stays shown.
        """
        assert self.mailroot is not None
        with self._ui_lock:
            if self._applying or not self.uploads["cert"].value:
                return None
            self._applying = True
            self.apply_button.disabled = True
        try:
            return self._apply()
        finally:
            self._applying = False

    def _apply(self) -> Any:
        assert self.mailroot is not None
        plan = self.preview()
        if plan is None:
            return None
        try:
            entry = actions.apply_install(self.mailroot, plan)
        except XmailnbError as exc:
            self.message.show_error(exc)
            self.activity = Activity.FAILED
            return None
        # Installed: the preview's heading no longer applies, and nothing of
        # the key (or its passphrase) stays in the widgets' state.
        self._loading = True
        try:
            for up in self.uploads.values():
                up.value = ()
            self.passphrase.value = ""
        finally:
            self._loading = False
        self.plan = None
        self._show_names()
        self._draw_preview()
        self.rollback_result.clear()
        if entry is None:
            self.message.show(Status.OK, Msg.of("cli.install.unchanged"))
        else:
            self.message.show(Status.OK, Msg.of("ui.install.done"), Msg.of("ui.install.next"))
        self._refresh_history()
        self.mark_changed()
        return entry

    # -- practice ---------------------------------------------------------------------------
    def _practice_issue(self) -> practice.PracticeIssue | None:
        assert self.mailroot is not None
        return practice.issued(self.mailroot) if self.mailroot.is_sandbox else None

    def load_practice(self) -> None:
        """Use the practice CA's certificate and intermediate as the inputs."""
        issue = self._practice_issue()
        if issue is None:
            return
        try:
            cert = issue.server.read_bytes()
            inter = issue.intermediate.read_bytes()
        except OSError as exc:
            self.message.show(Status.ERROR, *error_msgs(exc, "reading the practice certificate"))
            return
        self._loading = True
        try:
            self.uploads["cert"].value = upload_value(cert, issue.server.name)
            self.uploads["chain"].value = upload_value(inter, issue.intermediate.name)
        finally:
            self._loading = False
        self.preview()

    # -- rollback ------------------------------------------------------------------------------
    def _refresh_history(self) -> None:
        assert self.mailroot is not None
        known = [e.id for e in self.history]
        self.history = Store(self.mailroot).history(limit=HISTORY_SHOWN, bookkeeping=False)
        choices, default = actions.rollback_choices(self.history)
        self._labels = {e.id: label for label, e in choices}
        current = self.rollback_select.value
        ids = [e.id for e in self.history]
        self._draw_options()
        # Undoing the last install first; the user's choice stays while the history does.
        self.rollback_select.value = current if current in ids and ids == known else default
        self.rollback_select.disabled = not ids
        self.rollback_button.disabled = not ids
        if not ids:
            self.rollback_note.show(Status.INFO, Msg.of("store.history.empty"), Msg.of("store.history.empty.fix"))
            self._hide_rollback_confirm()
        elif self.rollback_note.status is Status.INFO:
            self.rollback_note.clear()

    def _draw_options(self) -> None:
        value = self.rollback_select.value
        self.rollback_select.options = [(self.m(self._labels[e.id]), e.id) for e in self.history]
        if value in self._labels:
            self.rollback_select.value = value

    def _selected(self) -> ArchiveEntry | None:
        return next((e for e in self.history if e.id == self.rollback_select.value), None)

    def ask_rollback(self) -> actions.RollbackEffects | None:
        """Show what the chosen rollback would do (the files it removes or
        replaces, and what that means) and ask to confirm."""
        assert self.mailroot is not None
        entry = self._selected()
        if entry is None:
            return None
        self._confirming = actions.rollback_preview(self.mailroot, entry)
        self.rollback_result.clear()
        self._draw_confirm()
        show(self.rollback_box, True)
        return self._confirming

    def _draw_confirm(self) -> None:
        effects = self._confirming
        if effects is None:
            return
        if effects.changes_anything:
            lines = [effects.question(), *effects.consequences(), *effects.file_lines(),
                     Msg.of("rollback.effect.undoable")]
        else:
            lines = [effects.question(), Msg.of("rollback.nothing")]
        self.rollback_warning.value = _html.render("message", lines=[self.m(m) for m in lines])

    def _hide_rollback_confirm(self) -> None:
        show(self.rollback_box, False)
        self._confirming = None

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
            self.rollback_result.show_error(exc)
            return None
        outcome = actions.rollback_outcome(target, new)
        # Said once, where the rollback was asked for; the install's own
        # outcome above no longer holds.
        self.message.clear()
        self.rollback_result.show(Status.OK, outcome.outcome(), *outcome.consequences(done=True),
                                  *outcome.file_lines(done=True))
        self._refresh_history()
        self.mark_changed()
        return target

    # -- refresh ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        assert self.mailroot is not None
        self._refresh_history()
        show(self.use_practice, self._practice_issue() is not None)

    def _relabel(self) -> None:
        self._draw_preview()
        if self.history:
            self._draw_options()
        self._draw_confirm()
