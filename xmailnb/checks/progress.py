"""Step progress: is each step of the workbook done, and is it still true?

One rule for everyone who shows progress: the dashboard's stepper, the
command line, the notebooks and the classroom board all call
:func:`step_progress`.  States come from the diagnosis of the MailRoot as it
is now, plus two kinds of facts the files alone cannot tell, kept in an
append-only log (``sslconf/progress.jsonl``): when a live check ran and
whether it passed, and for which certificate the user notice was shown.
"Was done before" is read from the store's audit log, so a step that was done
and no longer holds (an install rolled back, a key removed) shows as
:attr:`StepState.BROKEN` instead of quietly going back to "not started".

The rules (one function each below):

- diagnose: done when the diagnosis has no errors, attention with warnings
  only, todo otherwise (broken when an install had been done);
- csr: done when a key and CSR wait in sslconf or a certificate is installed;
- submit: done when a certificate for the pending CSR is at hand (practice
  CA, ACME, or the checklist's "received" tick) or a certificate is installed;
- install: done when server.cert and server.key are installed, belong
  together and the chain is complete (attention with warnings);
- settings: todo until a certificate is installed; then done, or attention
  from the settings findings;
- probe: done when the last live check ran after the current certificate was
  installed and passed;
- notice: done when the notice was shown or downloaded for the installed
  certificate.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..pki import certfiles, keys
from .. import clock
from .. import boundedjson
from ..files import read_regular
from .diagnose import diagnose
from .findings import Finding, Report
from ..errors import XmailnbError
from ..i18n import Msg
from ..mailroot.layout import MailRoot
from ..mailroot.store import Store
from ..status import Status
from ..steps import STEPS, Step

__all__ = [
    "Step",
    "StepState",
    "STEPS",
    "Progress",
    "step_progress",
    "progress_of",
    "record_probe",
    "record_notice",
    "events",
    "REL_PROGRESS_LOG",
]

log = logging.getLogger(__name__)

REL_PROGRESS_LOG = "sslconf/progress.jsonl"
_MAX_LOG_BYTES = 4 * 1024 * 1024


class StepState(StrEnum):
    """Where a step stands (the stepper shows exactly one of these)."""

    TODO = "todo"            #: not started (or nothing to show yet)
    DONE = "done"            #: done, and still true
    ATTENTION = "attention"  #: done, with warnings
    BROKEN = "broken"        #: was done, no longer true


# The checks that say whether the installed pair is usable.
_INSTALL_CHECKS = ("key.present", "key.usable", "key.permissions", "cert.present", "cert.pair",
                   "cert.validity", "cert.hostname", "cert.chain", "cert.trust")
_SETTINGS_CHECKS = ("settings.tls", "ca.files")
# Audit-log actions that count as "this step was done once".
_INSTALL_ACTIONS = frozenset({"install"})
_CSR_ACTIONS = frozenset({"csr", "install"})
# A tick in the checklist is a note, not a certificate: it never makes the step "was done".
_SUBMIT_ACTIONS = frozenset({"practice-ca", "acme", "install"})


@dataclass(frozen=True)
class Progress:
    """Every step's state for one MailRoot at one moment.

    Attributes:
        states: step -> state, in workbook order.
        report: the diagnosis the states were read from.
        last_change: when the MailRoot last changed through xmailnb (the
            newest audit record), or ``None``.
    """

    states: Mapping[Step, StepState]
    report: Report
    last_change: dt.datetime | None = None

    def __getitem__(self, step: Step | str) -> StepState:
        return self.states[Step(step)]

    @property
    def problems(self) -> list[Finding]:
        """The diagnosis' errors, then its warnings."""
        errors = [f for f in self.report.findings if f.status is Status.ERROR]
        return errors + [f for f in self.report.findings if f.status is Status.WARN]

    def headline(self) -> tuple[Status, list[Msg]]:
        """The server's TLS in one line, and its status (ok, warn, error):
        "TLS does not work yet: 2 problems", "TLS works; the certificate is
        valid 89 more days" (plus "1 warning to look at")."""
        errors, warnings = self.report.count(Status.ERROR), self.report.count(Status.WARN)
        if errors:
            stopped = self.states[Step.INSTALL] is StepState.BROKEN
            return Status.ERROR, [Msg.of("progress.headline.stopped" if stopped else "progress.headline.no_tls",
                                         count=errors)]
        days = next((f.details.get("days_left") for f in self.report.findings if f.check == "cert.validity"), None)
        msgs = [Msg.of("progress.headline.works", count=days) if isinstance(days, int)
                else Msg.of("progress.headline.works.undated")]
        if warnings:
            msgs.append(Msg.of("progress.headline.warnings", count=warnings))
        return (Status.WARN if warnings else Status.OK), msgs

    def to_json(self) -> dict[str, Any]:
        return {"steps": {str(k): str(v) for k, v in self.states.items()},
                "last_change": self.last_change.isoformat() if self.last_change else None}


@dataclass
class _Facts:
    """What the rules need, read once."""

    mr: MailRoot
    report: Report
    leaf_sha256: str | None
    audit: Sequence[Mapping[str, Any]]
    events: Sequence[Mapping[str, Any]] = field(default_factory=list)

    def status(self, check: str) -> Status | None:
        for f in self.report.findings:
            if f.check == check:
                return f.status
        return None

    def ever(self, actions: Iterable[str]) -> bool:
        wanted = set(actions)
        return any(r.get("result") == "ok" and r.get("action") in wanted for r in self.audit)

    def installed_at(self) -> dt.datetime | None:
        """Time of the newest successful change that wrote server.cert."""
        for record in reversed(self.audit):
            if record.get("result") == "ok" and "server.cert" in (record.get("files") or {}):
                return _time(record)
        return None


def _was(done: bool, ever: bool) -> StepState:
    if done:
        return StepState.DONE
    return StepState.BROKEN if ever else StepState.TODO


def _diagnose_state(f: _Facts) -> StepState:
    if f.report.count(Status.ERROR):
        return StepState.BROKEN if f.ever(_INSTALL_ACTIONS) else StepState.TODO
    return StepState.ATTENTION if f.report.count(Status.WARN) else StepState.DONE


def _cert_installed(f: _Facts) -> bool:
    return f.status("cert.present") is Status.OK


def _csr_state(f: _Facts) -> StepState:
    pending = f.mr.pending_key.is_file() and f.mr.pending_csr.is_file()
    state = _was(pending or _cert_installed(f), f.ever(_CSR_ACTIONS))
    if state is StepState.DONE and pending and f.status("csr.pending") is Status.WARN:
        return StepState.ATTENTION
    return state


def _pending_public_key(mr: MailRoot) -> Any:
    try:
        data = read_regular(mr.pending_csr)
        return certfiles.csr_from(data, name=mr.rel_pending_csr).public_key()
    except (OSError, XmailnbError, ValueError):
        return None


def _certificate_at_hand(f: _Facts) -> bool:
    public = _pending_public_key(f.mr)
    if public is None:
        return False
    # The practice CA's output, or (ACME, a real CA) anything installed
    # that was issued for the pending key.
    for rel in ("sslconf/practice-ca/issued/server.crt", f.mr.rel_server_cert):
        try:
            certs = certfiles.certificates_from(read_regular(f.mr.file(rel)), name=rel)
        except (OSError, XmailnbError, ValueError):
            continue
        if certs and keys.public_key_matches(public, certs[0]):
            return True
    return _checklist_received(f.mr)


def _checklist_received(mr: MailRoot) -> bool:
    try:
        doc = boundedjson.loads(read_regular(mr.file(mr.rel_checklist)), name=mr.rel_checklist)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    ticked = doc.get("ticked") if isinstance(doc, dict) else None
    return isinstance(ticked, list) and "receive" in ticked


def _submit_state(f: _Facts) -> StepState:
    return _was(_cert_installed(f) or _certificate_at_hand(f), f.ever(_SUBMIT_ACTIONS))


def _install_state(f: _Facts) -> StepState:
    statuses = [f.status(c) for c in _INSTALL_CHECKS]
    paired = (f.status("key.present") is Status.OK and _cert_installed(f) and f.status("cert.pair") is Status.OK)
    complete = f.status("cert.chain") in (Status.OK, Status.INFO)
    if not paired or not complete or Status.ERROR in statuses:
        return _was(False, f.ever(_INSTALL_ACTIONS))
    return StepState.ATTENTION if Status.WARN in statuses else StepState.DONE


def _settings_state(f: _Facts, install: StepState) -> StepState:
    if install not in (StepState.DONE, StepState.ATTENTION):
        return StepState.BROKEN if install is StepState.BROKEN else StepState.TODO
    statuses = [f.status(c) for c in _SETTINGS_CHECKS]
    return StepState.ATTENTION if (Status.WARN in statuses or Status.ERROR in statuses) else StepState.DONE


def _probe_state(f: _Facts, install: StepState) -> StepState:
    probes = [e for e in f.events if e.get("event") == "probe"]
    if not probes:
        return StepState.TODO
    ever_passed = any(e.get("passed") for e in probes)
    if install not in (StepState.DONE, StepState.ATTENTION) or f.leaf_sha256 is None:
        return StepState.BROKEN if ever_passed else StepState.TODO
    installed_at = f.installed_at()
    # Audit times are kept to the second: a check in the same second as the
    # install counts as after it.
    since = installed_at.replace(microsecond=0) if installed_at else None
    current = [e for e in probes if e.get("cert_sha256") == f.leaf_sha256
               and (since is None or ((t := _time(e)) is not None and t >= since))]
    if not current:
        # A new certificate since the last check: check again.
        return StepState.TODO
    last = current[-1]
    if not last.get("passed"):
        return StepState.BROKEN if any(e.get("passed") for e in current) else StepState.TODO
    return StepState.ATTENTION if last.get("worst") == Status.WARN else StepState.DONE


def _notice_state(f: _Facts, install: StepState) -> StepState:
    notices = [e for e in f.events if e.get("event") == "notice"]
    if not notices:
        return StepState.TODO
    if install not in (StepState.DONE, StepState.ATTENTION) or f.leaf_sha256 is None:
        return StepState.BROKEN
    if any(e.get("cert_sha256") == f.leaf_sha256 for e in notices):
        return StepState.DONE
    return StepState.TODO


def progress_of(mr: MailRoot, report: Report) -> Progress:
    """The step states for *mr* given its diagnosis *report* (already made)."""
    leaf = None
    try:
        leaf = report.by_check("cert.present").details.get("sha256")
    except StopIteration:
        pass
    store = Store(mr)
    audit = store.audit_records()
    f = _Facts(mr=mr, report=report, leaf_sha256=leaf if _has_leaf(report) else None,
               audit=audit, events=events(mr))
    install = _install_state(f)
    states = {
        Step.DIAGNOSE: _diagnose_state(f),
        Step.CSR: _csr_state(f),
        Step.SUBMIT: _submit_state(f),
        Step.INSTALL: install,
        Step.SETTINGS: _settings_state(f, install),
        Step.PROBE: _probe_state(f, install),
        Step.NOTICE: _notice_state(f, install),
    }
    return Progress(states=states, report=report, last_change=_last_change(audit))


def _has_leaf(report: Report) -> bool:
    try:
        return report.by_check("cert.present").status is Status.OK
    except StopIteration:
        return False


def _time(record: Mapping[str, Any]) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(record.get("time")))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _last_change(audit: Sequence[Mapping[str, Any]]) -> dt.datetime | None:
    for record in reversed(audit):
        if record.get("result") == "ok" and (when := _time(record)) is not None:
            return when
    return None


def step_progress(mr: MailRoot, *, report: Report | None = None,
                  at: dt.datetime | None = None) -> Progress:
    """Diagnose *mr* (unless *report* is given) and say where every step stands.

    >>> from xmailnb.mailroot.sandbox import create_sandbox
    >>> import tempfile, pathlib
    >>> mr = create_sandbox(pathlib.Path(tempfile.mkdtemp()) / "MailRoot")
    >>> str(step_progress(mr)[Step.INSTALL])
    'todo'
    """
    if report is None:
        report = diagnose(mr, at=at)
    return progress_of(mr, report)


# -- the progress log ------------------------------------------------------------

def _append(mr: MailRoot, record: Mapping[str, Any]) -> None:
    line = (json.dumps(dict(record), sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    path = mr.file(REL_PROGRESS_LOG)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        if not path.parent.is_dir() or path.parent.is_symlink():
            return
        fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        # Progress is a convenience: a read-only MailRoot still works.
        log.info("progress not recorded in %s: %s", mr.path, exc.strerror or exc)


def _leaf_sha256(mr: MailRoot) -> str | None:
    try:
        certs = certfiles.certificates_from(read_regular(mr.server_cert), name=mr.rel_server_cert)
    except (OSError, XmailnbError, ValueError):
        return None
    return certfiles.cert_fingerprint(certs[0]) if certs else None


def record_probe(mr: MailRoot, *, passed: bool, worst: str, served_sha256: Sequence[str] = ()) -> None:
    """Remember that a live check of *mr*'s server ran (and whether it passed).

    Args:
        passed: no endpoint failed.
        worst: the worst status among the endpoints (``ok``, ``info``, ``warn``, ``error``).
        served_sha256: fingerprints of the leaf certificates the server sent.
    """
    _append(mr, {"event": "probe", "time": clock.now().isoformat(timespec="microseconds"),
                 "cert_sha256": _leaf_sha256(mr), "passed": bool(passed), "worst": str(worst),
                 "served": list(served_sha256)})


def record_notice(mr: MailRoot, *, how: str = "shown") -> None:
    """Remember that the user notice was shown (or downloaded) for the
    certificate installed now."""
    _append(mr, {"event": "notice", "time": clock.now().isoformat(timespec="microseconds"),
                 "cert_sha256": _leaf_sha256(mr), "how": how})


def events(mr: MailRoot) -> list[dict[str, Any]]:
    """The progress log's records, oldest first (unreadable lines skipped)."""
    path = mr.file(REL_PROGRESS_LOG)
    try:
        data = read_regular(path, limit=_MAX_LOG_BYTES)
    except OSError:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            record = boundedjson.loads(line, name=REL_PROGRESS_LOG)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
