"""Step 6: check what the running server actually serves."""

from __future__ import annotations

import concurrent.futures
import importlib
import threading
from typing import Any

import ipywidgets as widgets

from ..errors import XmailnbError
from ..i18n import Msg
from ._base import Step, button, css_id, escape, set_status_class

__all__ = ["ProbeStep"]

DEFAULT_TIMEOUT = 5.0


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class ProbeStep(Step):
    """Host, ports, Run (in a worker thread) and one result row per endpoint.

    The host and ports are the workbook's settings for the MailRoot
    (:mod:`xmailnb.mailroot.workbook`): shown as remembered, and remembered again on
    Run (an empty ports field means XMail's stock listeners).  Every run is
    recorded for the step progress.  On a sandbox MailRoot it can also start
    and stop the practice server (its ports are used, not remembered).
    ``results`` holds the latest endpoint results; :meth:`wait` waits for a
    running probe.
    """

    STEP = "probe"

    def _build(self) -> list[Any]:
        self.future: concurrent.futures.Future[Any] | None = None
        self.results: list[Any] = []
        self.server: Any = None
        self._loaded = False
        self.host = widgets.Text(value="127.0.0.1", layout=widgets.Layout(width="20em"))
        self.host.add_class("xm-probe-host")
        self.ports = widgets.Text(value="", layout=widgets.Layout(width="30em"))
        self.ports.add_class("xm-probe-ports")
        self.host_note = self.field_message("host")
        self.ports_note = self.field_message("ports")
        host_label, ports_label = widgets.HTML(), widgets.HTML()
        self.bind(host_label, "value", "ui.probe.host", wrap="b")
        self.bind(ports_label, "value", lambda lang: (
            f"<b>{escape(Msg.of('ui.probe.ports').render(lang))}</b>"
            f'<div class="xm-fix">{escape(Msg.of("ui.probe.ports.hint").render(lang))}</div>'))
        self.run_button = button(button_style="primary", icon="plug")
        self.run_button.add_class("xm-probe-run")
        self.bind(self.run_button, "description", "ui.probe.run")
        self.run_button.on_click(self.safe(lambda _b: self.run()))
        self.progress = widgets.HTML()
        self.progress.add_class("xm-progress")
        self.bind(self.progress, "value", "ui.probe.progress", html_text=True)
        self.progress.layout.display = "none"
        self.rows = widgets.VBox()
        self.rows.add_class("xm-probe-results")
        self.form = widgets.VBox([host_label, self.host, self.host_note, ports_label, self.ports,
                                  self.ports_note, self.run_button, self.progress, self.rows])
        self.unavailable = self.label("ui.probe.unavailable", css="xm-probe-unavailable")

        self.start_button = button(icon="play")
        self.start_button.add_class("xm-practice-start")
        self.bind(self.start_button, "description", "ui.probe.practice.start")
        self.start_button.on_click(self.safe(lambda _b: self.start_practice()))
        self.stop_button = button(icon="stop")
        self.stop_button.add_class("xm-practice-stop")
        self.bind(self.stop_button, "description", "ui.probe.practice.stop")
        self.stop_button.on_click(self.safe(lambda _b: self.stop_practice()))
        self.practice_box = widgets.VBox([self.label("ui.probe.practice.intro", css="xm-practice-notice"),
                                          widgets.HBox([self.start_button, self.stop_button])])
        self.practice_box.add_class("xm-practice")
        return [self.label("ui.probe.intro"), self.practice_box, self.unavailable, self.form, self.message]

    # -- practice server ------------------------------------------------------------------
    def start_practice(self) -> dict[str, int] | None:
        """Start the practice server on free ports and put them in the ports field."""
        practice = _module("xmailnb.flows.practice")
        if practice is None or self.mailroot is None or not self.mailroot.is_sandbox:
            return None
        try:
            if self.server is None or not getattr(self.server, "running", False):
                # A classroom gives each trainee their own ports (xmailnb.mailroot.sandbox.practice_ports).
                from ..mailroot.sandbox import practice_ports

                ports = practice_ports()
                self.server = practice.PracticeServer(self.mailroot, smtp_port=ports["smtp"],
                                                      pop3s_port=ports["pop3s"])
            ports = self.server.start()
        except Exception as exc:
            self.message.show_error(exc)
            return None
        self.host.value = "127.0.0.1"
        self.ports.value = ",".join(f"{name}={port}" for name, port in ports.items())
        self.message.show("ok", Msg.of("ui.probe.practice.started", ports=self.ports.value))
        self._buttons()
        return dict(ports)

    def stop_practice(self) -> None:
        if self.server is not None:
            try:
                self.server.stop()
            except Exception as exc:
                self.message.show_error(exc)
                return
            self.message.show("ok", Msg.of("ui.probe.practice.stopped"))
        self._buttons()

    def _buttons(self) -> None:
        running = bool(self.server is not None and getattr(self.server, "running", False))
        self.start_button.disabled = running
        self.stop_button.disabled = not running

    # -- probing -------------------------------------------------------------------------
    def run(self) -> concurrent.futures.Future[Any] | None:
        """Probe the endpoints in a worker thread; return its future."""
        probe = _module("xmailnb.checks.probe")
        if probe is None or self.mailroot is None:
            return None
        with self._ui_lock:
            if self.future is not None and not self.future.done():
                return self.future
            self.host_note.clear()
            self.ports_note.clear()
            host = self.host.value.strip()
            if not host:
                self.host_note.show("error", Msg.of("ui.probe.host.required"))
                self.message.show("error", Msg.of("ui.probe.host.required"))
                return None
            try:
                host = probe.check_host(host)
            except XmailnbError as exc:
                self.host_note.show_error(exc)
                self.message.show_error(exc)
                self.state = "error"
                return None
            try:
                # Empty: XMail's stock listeners (those server.tab leaves on).
                ports = probe.parse_ports(self.ports.value) if self.ports.value.strip() else None
            except XmailnbError as exc:
                self.ports_note.show_error(exc)
                self.message.show_error(exc)
                self.state = "error"
                return None
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self.future = future
            self.run_button.disabled = True
            self.progress.layout.display = None
            self.message.clear()
        threading.Thread(target=self._work, args=(probe, host, ports, future), name="xmailnb-probe",
                         daemon=True).start()
        return future

    def _practice_ports(self) -> dict[str, int] | None:
        if self.server is not None and getattr(self.server, "running", False):
            return dict(self.server.ports)
        return None

    def _remember(self, host: str, ports: dict[str, int] | None) -> Msg | None:
        """Keep the fields as the workbook's settings (not the practice server's
        temporary ports); a message when that failed."""
        assert self.mailroot is not None
        from ..mailroot.workbook import save_probe_settings

        practice = self._practice_ports()
        if practice is not None and ports == practice:
            return None
        try:
            save_probe_settings(self.mailroot, host=None if host == "127.0.0.1" else host, ports=ports)
        except XmailnbError as exc:
            return exc.msg
        return None

    def _work(self, probe: Any, host: str, ports: dict[str, int] | None,
              future: concurrent.futures.Future[Any]) -> None:
        assert self.mailroot is not None
        warning: Msg | None = None
        try:
            warning = self._remember(host, ports)
            results = list(probe.probe(host, ports=ports, mailroot=self.mailroot, timeout=DEFAULT_TIMEOUT))
            probe.record(self.mailroot, results)
        except BaseException as exc:
            with self._ui_lock:
                self.progress.layout.display = "none"
                self.run_button.disabled = False
                field = getattr(exc, "field", None)
                if field in ("host", "ports"):
                    (self.host_note if field == "host" else self.ports_note).show_error(exc)
                self.message.show_error(exc)
                self.state = "error"
            future.set_exception(exc)
            return
        with self._ui_lock, self.hold_trait_notifications():
            self.progress.layout.display = "none"
            self.run_button.disabled = False
            self.results = results
            self._draw_results()
            statuses = [self._status(r) for r in results]
            bad = sum(1 for s in statuses if s == "error")
            extra = [Msg.of("cli.warning", text=warning)] if warning is not None else []
            if not results:
                self.message.show("error", Msg.of("probe.nothing"), *extra)
            elif bad:
                self.message.show("error", Msg.of("ui.probe.summary.errors", count=bad, total=len(results)),
                                  *extra)
            else:
                self.message.show("ok", Msg.of("ui.probe.summary.ok", count=len(results)), *extra)
            self.state = "done" if results and not bad else "ready"
        future.set_result(results)

    def _status(self, result: Any) -> str:
        status = str(result.to_json(self.lang).get("status") or "info")
        return status if status in ("ok", "warn", "error", "info") else "info"

    def _draw_results(self) -> None:
        rows = []
        for result in self.results:
            d = result.to_json(self.lang)
            status = self._status(result)
            w = widgets.HTML()
            w.add_class("xm-finding")
            w.add_class("xm-endpoint")
            w.add_class(f"xm-endpoint-{css_id(str(d.get('name', '')))}")
            set_status_class(w, status)
            # The core's message already says version, cipher, trust and match.
            facts = [str(d["fix"])] if d.get("fix") else []
            head = self.t("ui.probe.endpoint", name=d.get("name", ""), host=d.get("host", ""),
                          port=d.get("port", ""))
            w.value = (f'<span class="xm-icon">{escape(self.t(f"ui.icon.{status}"))}</span> '
                       f"<b>{escape(head)}</b> "
                       f'<span class="xm-text">{escape(str(d.get("message") or ""))}</span>'
                       + "".join(f'<div class="xm-fix">{escape(f)}</div>' for f in facts))
            rows.append(w)
        self.rows.children = rows

    # -- refresh ------------------------------------------------------------------------------
    def _load_settings(self) -> None:
        # Once: later the fields hold what the user typed.
        assert self.mailroot is not None
        if self._loaded:
            return
        self._loaded = True
        from ..mailroot.workbook import probe_settings

        saved = probe_settings(self.mailroot)
        if saved.host:
            self.host.value = saved.host
        if saved.ports:
            self.ports.value = ",".join(f"{name}={port}" for name, port in saved.ports.items())

    def _refresh(self) -> None:
        assert self.mailroot is not None
        self._load_settings()
        has_probe = _module("xmailnb.checks.probe") is not None
        self.form.layout.display = None if has_probe else "none"
        self.unavailable.layout.display = "none" if has_probe else None
        practice = _module("xmailnb.flows.practice")
        show_practice = (practice is not None and hasattr(practice, "PracticeServer")
                         and self.mailroot.is_sandbox and has_probe)
        self.practice_box.layout.display = None if show_practice else "none"
        self._buttons()
        if self.state == "init":
            self.state = "ready"

    def _relabel(self) -> None:
        if self.results:
            self._draw_results()
