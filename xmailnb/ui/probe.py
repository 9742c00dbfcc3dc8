"""Step 6: check what the running server actually serves."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import ipywidgets as widgets

from ..checks import probe as probemod
from ..errors import XmailnbError
from ..flows.practice import PracticeServer
from ..i18n import Msg
from ..mailroot.sandbox import suggested_practice_ports
from ..mailroot.workbook import probe_settings, save_probe_settings
from ..status import Status
from ..steps import Step
from . import _html
from ._base import Activity, StepView, box, button, classed, css_id, html, set_status_class, shared, show, status_icon

__all__ = ["ProbeStep"]

DEFAULT_TIMEOUT = 5.0
_PRACTICE_PORTS = ("smtp", "pop3s")


def _ports_text(ports: dict[str, int]) -> str:
    return ",".join(f"{name}={port}" for name, port in ports.items())


class ProbeStep(StepView):
    """Host, ports, Run (in a worker thread) and one result row per endpoint.

    The host and ports are the workbook's settings for the MailRoot
    (:mod:`xmailnb.mailroot.workbook`): shown as remembered, and remembered
    again after a run that reached a server, whatever they are (the practice
    server's included: the user notice offers the ports the check used; an
    empty ports field means XMail's stock listeners, from that run on).
    Every run is recorded for the step progress.  On a sandbox MailRoot it
    can also start and stop the practice server on ports the page shows and
    the trainee may change (``xm-practice-ports``; free ones by default);
    once it runs, the check's host and ports are the practice server's.
    ``results`` holds the latest endpoint results; :meth:`wait` waits for a
    running probe.
    """

    STEP = Step.PROBE

    def _build(self) -> list[Any]:
        self.future: concurrent.futures.Future[Any] | None = None
        self.results: list[Any] = []
        self.server: Any = None  # the practice server (xmailnb.flows.practice.PracticeServer)
        self._loaded = False
        # Widgets are made with their classes and labels (one message each, ui/_base.py).
        self.host = classed(widgets.Text, "xm-probe-host", value="127.0.0.1",
                            layout=widgets.Layout(width="100%", max_width="24em"))
        self.ports = classed(widgets.Text, "xm-probe-ports", value="", placeholder="smtps=465,pop3s=995",
                             layout=widgets.Layout(width="100%", max_width="40em"))
        self.host_note = self.field_message("host")
        self.ports_note = self.field_message("ports")
        self.run_button = self.bound(button, "description", "ui.probe.run", "xm-probe-run", button_style="primary")
        self.run_button.on_click(self.safe(lambda _b: self.run()))
        self.progress = html(self.t("ui.probe.progress"), "xm-progress", hidden=True)
        self.bind(self.progress, "value", "ui.probe.progress")
        self.rows = box([], "xm-probe-results")
        actions = box([self.run_button, self.progress], "xm-actions", horizontal=True)
        self.form = box([self.label("ui.probe.section.check", "xm-section-title"),
                         self.field_label("ui.probe.host"), self.host, self.host_note,
                         self.field_label("ui.probe.ports", "ui.probe.ports.hint"), self.ports,
                         self.ports_note, actions, self.rows], "xm-section")

        # The practice server (sandbox only): its ports, shown before it starts.
        self.practice_port: dict[str, widgets.BoundedIntText] = {}
        port_rows = []
        for name in _PRACTICE_PORTS:
            field = classed(widgets.BoundedIntText, f"xm-practice-port-{name}", value=0, min=0, max=65535,
                            layout=shared("port"))
            self.practice_port[name] = field
            port_rows.append(box([self.field_label(f"ui.probe.practice.port.{name}"), field], "xm-row"))
        self.practice_ports = box(port_rows, "xm-practice-ports", "xm-actions", horizontal=True)
        self.practice_ports_note = self.field_message("practice-ports")
        self.practice_status = html("", "xm-practice-status")
        self.start_button = self.bound(button, "description", "ui.probe.practice.start", "xm-practice-start",
                                       button_style="primary")
        self.start_button.on_click(self.safe(lambda _b: self.start_practice()))
        self.stop_button = self.bound(button, "description", "ui.probe.practice.stop", "xm-practice-stop")
        self.stop_button.on_click(self.safe(lambda _b: self.stop_practice()))
        practice_actions = box([self.start_button, self.stop_button], "xm-actions", horizontal=True)
        self.practice_box = box([
            self.label("ui.probe.section.practice", "xm-section-title"),
            self.label("ui.probe.practice.intro", "xm-hint"), self.practice_ports, self.practice_ports_note,
            practice_actions, self.practice_status], "xm-section", "xm-practice", hidden=True)
        return [self.practice_box, self.form, self.message]

    # -- practice server ------------------------------------------------------------------
    def _suggest_ports(self) -> None:
        if all(f.value for f in self.practice_port.values()):
            return
        for name, port in suggested_practice_ports().items():
            if name in self.practice_port and port:
                self.practice_port[name].value = port

    def start_practice(self) -> dict[str, int] | None:
        """Start the practice server on the ports shown, and point the check at it."""
        if self.mailroot is None or not self.mailroot.is_sandbox:
            return None
        with self._ui_lock:
            self.practice_ports_note.clear()
            if self.server is None or not self.server.running:
                wanted = {name: int(f.value or 0) for name, f in self.practice_port.items()}
                try:
                    server = PracticeServer(self.mailroot, smtp_port=wanted["smtp"], pop3s_port=wanted["pop3s"])
                    ports = server.start()
                except XmailnbError as exc:
                    self.practice_ports_note.show_error(exc)
                    self.activity = Activity.FAILED
                    return None
                self.server = server
            ports = dict(self.server.ports)
            for name, port in ports.items():
                if name in self.practice_port:
                    self.practice_port[name].value = port
            # The check goes where the practice server listens.
            self.host.value = "127.0.0.1"
            self.ports.value = _ports_text(ports)
            self.host_note.clear()
            self.ports_note.clear()
            self.message.clear()
            self.activity = Activity.IDLE
            self._buttons()
        return ports

    def stop_practice(self) -> None:
        with self._ui_lock:
            if self.server is not None:
                try:
                    self.server.stop()
                except Exception as exc:
                    self.practice_ports_note.show_error(exc, "stopping the practice server")
                    return
            self._buttons()

    def _buttons(self) -> None:
        running = bool(self.server is not None and self.server.running)
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        for field in self.practice_port.values():
            field.disabled = running
        if running and self.server is not None:
            self.practice_status.value = _html.render(
                "tag", tag="div", cls="xm-practice-running",
                text=self.t("ui.probe.practice.running", ports=", ".join(
                    f"{name} {port}" for name, port in self.server.ports.items())))
        elif self.server is not None:
            self.practice_status.value = _html.render("tag", tag="div", text=self.t("ui.probe.practice.stopped"))
        else:
            self.practice_status.value = ""

    # -- probing -------------------------------------------------------------------------
    def run(self) -> concurrent.futures.Future[Any] | None:
        """Probe the endpoints in a worker thread; return its future."""
        if self.mailroot is None:
            return None
        with self._ui_lock:
            if self.future is not None and not self.future.done():
                return self.future
            self.host_note.clear()
            self.ports_note.clear()
            self.message.clear()
            host = self.host.value.strip()
            if not host:
                self.host_note.show(Status.ERROR, Msg.of("ui.probe.host.required"))
                self.message.show(Status.ERROR, Msg.of("ui.common.see_field"))
                self.activity = Activity.FAILED
                return None
            try:
                host = probemod.check_host(host)
            except XmailnbError as exc:
                self.host_note.show_error(exc)
                self.message.show(Status.ERROR, Msg.of("ui.common.see_field"))
                self.activity = Activity.FAILED
                return None
            try:
                # Empty: XMail's stock listeners (those server.tab leaves on).
                ports = probemod.parse_ports(self.ports.value) if self.ports.value.strip() else None
            except XmailnbError as exc:
                self.ports_note.show_error(exc)
                self.message.show(Status.ERROR, Msg.of("ui.common.see_field"))
                self.activity = Activity.FAILED
                return None
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self.future = future
            self.run_button.disabled = True
            show(self.progress, True)
            self.activity = Activity.BUSY
        threading.Thread(target=self._work, args=(probemod, host, ports, future), name="xmailnb-probe",
                         daemon=True).start()
        return future

    def _remember(self, host: str, ports: dict[str, int] | None) -> Msg | None:
        """Keep the fields as the workbook's settings; a message when that failed."""
        assert self.mailroot is not None
        try:
            save_probe_settings(self.mailroot, host=None if host == "127.0.0.1" else host, ports=ports)
        except XmailnbError as exc:
            return exc.msg
        return None

    def _work(self, probemod: Any, host: str, ports: dict[str, int] | None,
              future: concurrent.futures.Future[Any]) -> None:
        assert self.mailroot is not None
        warning: Msg | None = None
        try:
            # An empty field means the stock listeners in this very run.
            results = list(probemod.probe(host, ports=ports, mailroot=self.mailroot, timeout=DEFAULT_TIMEOUT,
                                          remembered=False))
            if probemod.reached_server(results):
                # Only a run that reached a server changes the settings.
                warning = self._remember(host, ports)
            probemod.record(self.mailroot, results)
        except BaseException as exc:
            with self._ui_lock:
                show(self.progress, False)
                self.run_button.disabled = False
                field = getattr(exc, "field", None)
                if field in ("host", "ports"):
                    # Said beside the field; the outcome line points there.
                    (self.host_note if field == "host" else self.ports_note).show_error(exc)
                    self.message.show(Status.ERROR, Msg.of("ui.common.see_field"))
                else:
                    self.message.show_error(exc, "checking the running server")
                self.activity = Activity.FAILED
            future.set_exception(exc)
            return
        with self._ui_lock, self.hold_trait_notifications():
            show(self.progress, False)
            self.run_button.disabled = False
            self.results = results
            self._draw_results()
            ok = probemod.passed(results)
            bad = sum(1 for r in results if r.status is Status.ERROR)
            extra = [Msg.of("cli.warning", text=warning)] if warning is not None else []
            if ok:
                self.message.show(Status.OK, Msg.of("ui.probe.summary.ok", count=len(results)), *extra)
            elif bad:
                self.message.show(Status.ERROR, Msg.of("ui.probe.summary.errors", count=bad, total=len(results)),
                                  *extra)
            else:  # nothing was probed (every endpoint left out)
                self.message.show(Status.ERROR, Msg.of("probe.nothing"), *extra)
            self.activity = Activity.IDLE if ok else Activity.FAILED
        future.set_result(results)
        # The run is in the progress log: the stepper reads it again.
        self.mark_changed()

    def _draw_results(self) -> None:
        rows = []
        for result in self.results:
            status = result.status
            w = html("", "xm-finding", "xm-endpoint", f"xm-endpoint-{css_id(result.name)}")
            set_status_class(w, status)
            # The core's message already says version, cipher, trust and
            # match; both are rendered for the page (its controls, never an
            # option of the command line).
            fixes = [result.fix.page(self.lang)] if result.fix is not None else []
            head = self.t("ui.probe.endpoint", name=result.name, host=result.host, port=result.port)
            w.value = _html.render("endpoint", icon=status_icon(status, self.lang), head=head,
                                   text=result.message.page(self.lang), fixes=fixes)
            rows.append(w)
        self.rows.children = rows

    # -- refresh ------------------------------------------------------------------------------
    def _load_settings(self) -> None:
        # Once: later the fields hold what the user typed.
        assert self.mailroot is not None
        if self._loaded:
            return
        self._loaded = True
        saved = probe_settings(self.mailroot)
        if saved.host:
            self.host.value = saved.host
        if saved.ports:
            self.ports.value = _ports_text(dict(saved.ports))

    def _refresh(self) -> None:
        assert self.mailroot is not None
        self._load_settings()
        sandbox = self.mailroot.is_sandbox
        show(self.practice_box, sandbox)
        if sandbox and not (self.server is not None and self.server.running):
            self._suggest_ports()
        self._buttons()

    def _relabel(self) -> None:
        if self.results:
            self._draw_results()
        self._buttons()
