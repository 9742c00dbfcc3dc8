"""Step progress: what each step's mark says about the MailRoot as it is now.

One rule for everyone who shows progress: the dashboard's stepper, the
command line, the notebooks and the classroom board all call
:func:`step_progress`.  Each step answers one question about the MailRoot and
the server as they are now (DESIGN.md section 6), and never looks at another
step's files.  A few facts the files cannot tell are kept in an append-only
log (``sslconf/progress.jsonl``): that a diagnosis was run, when a live check
ran and how it went, for which certificate the user notice was shown, and
which step the trainee had open.

- diagnose: done once a diagnosis of this MailRoot was run (page or CLI);
  its findings live in the header and the list, not in this mark;
- csr: done when a key and CSR wait in sslconf, or the installed key came
  from one; attention when the CSR's names miss the host name in use; broken
  when the waiting key is unreadable or does not match its CSR;
- submit: done when a certificate for the waiting key is in the MailRoot (or
  installed); attention on a live MailRoot whose checklist says "received"
  with nothing installed yet; broken when a certificate issued here no longer
  matches the waiting key;
- install: done when key and certificate are installed, match, and the chain
  is complete and trusted; attention for what a mail client would warn about
  (not the practice CA's expected note in the sandbox); broken when what was
  installed no longer holds;
- settings: server.tab alone: done with no warning-level finding (XMail's
  defaults are), attention with one, broken when TLS is turned off;
- probe: the last live check, for the certificate installed now;
- notice: the notice was shown or downloaded for the installed certificate.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509

from .. import clock
from .. import boundedjson
from ..errors import XmailnbError
from ..files import read_regular
from ..i18n import Msg
from ..mailroot.layout import REL_PRACTICE_ISSUED_SERVER, REL_PROGRESS_LOG, MailRoot
from ..pki.chain import Anchor
from ..mailroot.store import Action, AuditRecord, Store
from ..pki import certfiles, keys
from ..pki import chain as chainmod
from ..status import Status
from ..steps import STEPS, Step
from .diagnose import diagnose
from .findings import Finding, Report
from .installed import installed_leaf, leaf_sha256, pending_public_key

__all__ = [
    "Step",
    "StepState",
    "STEPS",
    "Progress",
    "LiveCheck",
    "expected_note",
    "step_progress",
    "progress_of",
    "record_probe",
    "record_notice",
    "record_diagnosis",
    "record_step",
    "last_step",
    "events",
]

log = logging.getLogger(__name__)

_MAX_LOG_BYTES = 4 * 1024 * 1024


class StepState(StrEnum):
    """Where a step stands (the stepper shows exactly one of these)."""

    TODO = "todo"            #: not started (or nothing to show yet)
    DONE = "done"            #: done, and still true
    ATTENTION = "attention"  #: done, with warnings
    BROKEN = "broken"        #: was done, no longer true


# The checks whose warnings a mail client would show about the installed pair.
_INSTALL_CHECKS = ("key.present", "key.usable", "key.permissions", "cert.present", "cert.pair",
                   "cert.validity", "cert.hostname", "cert.chain", "cert.trust")
# Store actions after which a broken install reads "was done" (the files
# alone say it too when they are present but broken).
_INSTALL_ACTIONS = frozenset({Action.INSTALL, Action.ACME})
# server.tab issues that mean "TLS turned off on a service that had it"
# (XMail's default is on for every service).
_TLS_OFF = frozenset({"starttls.all_off", "starttls.some_off"})


@dataclass(frozen=True)
class LiveCheck:
    """The last live check, as the progress log remembers it.

    Attributes:
        time: when it ran.
        passed: every probed endpoint passed.
        worst: the worst endpoint status.
        failed: how many probed endpoints failed (``None``: not recorded).
        total: how many endpoints were probed (``None``: not recorded).
        current: it ran after the certificate installed now was installed,
            against that certificate.
    """

    time: dt.datetime | None
    passed: bool
    worst: str
    failed: int | None
    total: int | None
    current: bool


@dataclass(frozen=True)
class Progress:
    """Every step's state for one MailRoot at one moment.

    Attributes:
        states: step -> state, in workbook order.
        report: the diagnosis the states were read from.
        last_change: when the MailRoot last changed through xmailnb (the
            newest audit record), or ``None``.
        live: the last live check, or ``None`` when none ran.
    """

    states: Mapping[Step, StepState]
    report: Report
    last_change: dt.datetime | None = None
    live: LiveCheck | None = None

    def __getitem__(self, step: Step | str) -> StepState:
        return self.states[Step(step)]

    @property
    def problems(self) -> list[Finding]:
        """The diagnosis' errors, then its warnings."""
        errors = [f for f in self.report.findings if f.status is Status.ERROR]
        return errors + [f for f in self.report.findings if f.status is Status.WARN]

    def headline(self) -> tuple[Status, list[Msg]]:
        """The server's TLS in one line that names its source, and its
        status: the last live check when it ran for the certificate
        installed now ("Live check passed at 10:42", "Live check failed at
        10:42: 5 of 5 endpoints refused"), else the files ("Files ready; not
        checked on the server yet", "Files not ready: 2 problems").  It never
        says TLS works from the files alone."""
        # The practice CA's expected note in the sandbox is no warning here either.
        mr = self.report.mailroot
        warnings = sum(1 for f in self.report.findings
                       if f.status is Status.WARN and not expected_note(mr, f))
        live = self.live
        if live is not None and live.current:
            at = _clock_time(live.time)
            if not live.passed:
                if live.failed is not None and live.total:
                    return Status.ERROR, [Msg.of("progress.headline.live_failed", count=live.total,
                                                 failed=live.failed, time=at)]
                return Status.ERROR, [Msg.of("progress.headline.live_failed.uncounted", time=at)]
            msgs = [Msg.of("progress.headline.live_passed", time=at)]
            if warnings:
                msgs.append(Msg.of("progress.headline.warnings", count=warnings))
            return (Status.WARN if warnings or live.worst == Status.WARN else Status.OK), msgs
        errors = self.report.count(Status.ERROR)
        if errors:
            stopped = self.states[Step.INSTALL] is StepState.BROKEN
            return Status.ERROR, [Msg.of("progress.headline.files_broken" if stopped
                                         else "progress.headline.files_not_ready", count=errors)]
        msgs = [Msg.of("progress.headline.files_ready")]
        if warnings:
            msgs.append(Msg.of("progress.headline.warnings", count=warnings))
        return (Status.WARN if warnings else Status.OK), msgs

    def to_json(self) -> dict[str, Any]:
        return {"steps": {str(k): str(v) for k, v in self.states.items()},
                "last_change": self.last_change.isoformat() if self.last_change else None}


def _clock_time(when: dt.datetime | None) -> str:
    """HH:MM in this machine's time zone (the headline's "at 10:42")."""
    return f"{when.astimezone():%H:%M}" if when is not None else "--:--"


@dataclass
class _Facts:
    """What the rules need, read once."""

    mr: MailRoot
    report: Report
    leaf_sha256: str | None
    audit: Sequence[AuditRecord]
    events: Sequence[Mapping[str, Any]] = field(default_factory=list)

    @functools.cached_property
    def waiting_key(self) -> Any:
        """The public half of the key waiting in sslconf (``None``: none usable)."""
        return pending_public_key(self.mr)

    @functools.cached_property
    def installed_cert(self) -> x509.Certificate | None:
        return installed_leaf(self.mr)

    @property
    def installed_pair(self) -> bool:
        """server.key and server.cert belong together (the diagnosis checked)."""
        return self.installed_cert is not None and self.status("cert.pair") is Status.OK

    def finding(self, check: str) -> Finding | None:
        try:
            return self.report.by_check(check)
        except KeyError:
            return None

    def status(self, check: str) -> Status | None:
        found = self.finding(check)
        return found.status if found is not None else None

    def ever(self, actions: Iterable[str]) -> bool:
        wanted = set(actions)
        return any(r.ok and r.action in wanted for r in self.audit)

    def installed_at(self) -> dt.datetime | None:
        """Time of the newest successful change that wrote server.cert."""
        for record in reversed(self.audit):
            if record.ok and "server.cert" in record.files:
                return record.when()
        return None


def _load(path_rel: str, mr: MailRoot, loader: Any) -> Any:
    """*loader* applied to the file *path_rel* of *mr*; ``None`` when it is
    missing, unreadable or not what it should be."""
    try:
        return loader(read_regular(mr.file(path_rel)), name=path_rel)
    except (OSError, XmailnbError, ValueError, TypeError):
        return None


def _first_cert(data: bytes, *, name: str) -> x509.Certificate | None:
    certs = certfiles.certificates_from(data, name=name)
    return certs[0] if certs else None


def _diagnose_state(f: _Facts) -> StepState:
    ran = any(e.get("event") == "diagnose" for e in f.events)
    return StepState.DONE if ran else StepState.TODO


def _from_a_csr(f: _Facts) -> bool:
    """The installed key is one xmailnb generated with a CSR (the install
    took it from sslconf)."""
    if not f.installed_pair or f.installed_cert is None:
        return False
    fingerprint = keys.public_key_fingerprint(f.installed_cert)
    return any(r.ok and r.action in _INSTALL_ACTIONS and r.details.get("key_source") == "pending"
               and r.details.get("public_key_sha256") == fingerprint for r in f.audit)


def _csr_state(f: _Facts) -> StepState:
    mr = f.mr
    has_key, has_csr = mr.pending_key.exists(), mr.pending_csr.exists()
    if has_key or has_csr:
        key = f.waiting_key
        csr = _load(mr.rel_pending_csr, mr, certfiles.csr_from)
        if key is None or csr is None or not keys.public_key_matches(key, csr):
            return StepState.BROKEN
        hostname = f.report.hostname
        if hostname and not _csr_covers(csr, hostname):
            return StepState.ATTENTION
        return StepState.DONE
    return StepState.DONE if _from_a_csr(f) else StepState.TODO


def _csr_covers(csr: x509.CertificateSigningRequest, hostname: str) -> bool:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return chainmod.san_covers_hostname(san, hostname)


def _checklist_received(mr: MailRoot) -> bool:
    try:
        doc = boundedjson.loads(read_regular(mr.file(mr.rel_checklist)), name=mr.rel_checklist)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    ticked = doc.get("ticked") if isinstance(doc, dict) else None
    return isinstance(ticked, list) and "receive" in ticked


def _submit_state(f: _Facts) -> StepState:
    mr = f.mr
    waiting = f.waiting_key
    issued = _load(REL_PRACTICE_ISSUED_SERVER, mr, _first_cert)
    if waiting is not None:
        # A certificate for the waiting key: the practice CA's output, or
        # (ACME, a real CA) what is installed.
        if any(c is not None and keys.public_key_matches(waiting, c) for c in (issued, f.installed_cert)):
            return StepState.DONE
        if issued is not None:
            # Issued here for a key that is no longer the one waiting.
            return StepState.BROKEN
    elif f.installed_pair:
        return StepState.DONE
    if not mr.is_sandbox and _checklist_received(mr):
        # "Received" from a real CA, not installed yet: install it in step 4.
        return StepState.ATTENTION
    return StepState.TODO


def expected_note(mr: MailRoot, found: Finding) -> bool:
    """Whether *found* is the practice CA's "training only" note in the
    sandbox: expected there, so neither step 4's mark nor the headline
    counts it as a warning."""
    return (mr.is_sandbox and found.check == "cert.trust" and found.status is Status.WARN
            and found.details.get("anchor") == Anchor.PRACTICE)


def _install_state(f: _Facts) -> StepState:
    findings = [x for x in (f.finding(c) for c in _INSTALL_CHECKS) if x is not None]
    if f.status("cert.present") is not Status.OK or f.status("key.present") is not Status.OK:
        present = f.mr.server_cert.exists() or f.mr.server_key.exists()
        return StepState.BROKEN if present or f.ever(_INSTALL_ACTIONS) else StepState.TODO
    if any(x.status is Status.ERROR for x in findings) or f.status("cert.pair") is not Status.OK:
        return StepState.BROKEN
    if any(x.status is Status.WARN and not expected_note(f.mr, x) for x in findings):
        return StepState.ATTENTION
    return StepState.DONE


def _settings_state(f: _Facts) -> StepState:
    found = f.finding("settings.tls")
    if found is None:
        return StepState.TODO
    codes = set(found.details.get("problems") or ())
    if found.status is Status.ERROR or codes & _TLS_OFF:
        return StepState.BROKEN
    if found.status is Status.WARN or f.status("ca.files") in (Status.WARN, Status.ERROR):
        return StepState.ATTENTION
    return StepState.DONE


def _last_check(f: _Facts) -> LiveCheck | None:
    probes = [e for e in f.events if e.get("event") == "probe"]
    if not probes:
        return None
    last = probes[-1]
    when = _time(last)
    installed_at = f.installed_at()
    # Audit times are kept to the second: a check in the same second as the
    # install counts as after it.
    since = installed_at.replace(microsecond=0) if installed_at else None
    current = (f.leaf_sha256 is not None and last.get("cert_sha256") == f.leaf_sha256
               and (since is None or (when is not None and when >= since)))
    failed, total = last.get("failed"), last.get("total")
    return LiveCheck(time=when, passed=bool(last.get("passed")), worst=str(last.get("worst") or ""),
                     failed=failed if isinstance(failed, int) else None,
                     total=total if isinstance(total, int) else None, current=current)


def _probe_state(live: LiveCheck | None) -> StepState:
    if live is None:
        return StepState.TODO
    if not live.passed or not live.current:
        # It failed, or the certificate changed since it passed.
        return StepState.BROKEN
    return StepState.ATTENTION if live.worst == Status.WARN else StepState.DONE


def _notice_state(f: _Facts) -> StepState:
    notices = [e for e in f.events if e.get("event") == "notice"]
    if f.leaf_sha256 is not None and any(e.get("cert_sha256") == f.leaf_sha256 for e in notices):
        return StepState.DONE
    # Shown for a certificate that is no longer the installed one.
    return StepState.BROKEN if any(e.get("cert_sha256") for e in notices) else StepState.TODO


def progress_of(mr: MailRoot, report: Report) -> Progress:
    """The step states for *mr* given its diagnosis *report* (already made)."""
    audit = Store(mr).audit_records()
    f = _Facts(mr=mr, report=report, leaf_sha256=_leaf_of(report), audit=audit, events=events(mr))
    live = _last_check(f)
    states = {
        Step.DIAGNOSE: _diagnose_state(f),
        Step.CSR: _csr_state(f),
        Step.SUBMIT: _submit_state(f),
        Step.INSTALL: _install_state(f),
        Step.SETTINGS: _settings_state(f),
        Step.PROBE: _probe_state(live),
        Step.NOTICE: _notice_state(f),
    }
    return Progress(states=states, report=report, last_change=_last_change(audit), live=live)


def _leaf_of(report: Report) -> str | None:
    """The installed leaf's fingerprint, when the report found one (a
    report without ``cert.present`` has none)."""
    try:
        found = report.by_check("cert.present")
    except KeyError:
        return None
    sha = found.details.get("sha256") if found.status is Status.OK else None
    return sha if isinstance(sha, str) else None

def _time(record: Mapping[str, Any]) -> dt.datetime | None:
    """The ``time`` of a progress-log event as an aware time."""
    try:
        when = dt.datetime.fromisoformat(str(record.get("time")))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _last_change(audit: Sequence[AuditRecord]) -> dt.datetime | None:
    for record in reversed(audit):
        if record.ok and (when := record.when()) is not None:
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


def record_probe(mr: MailRoot, *, passed: bool, worst: str, served_sha256: Sequence[str] = (),
                 failed: int | None = None, total: int | None = None) -> None:
    """Remember that a live check of *mr*'s server ran (and whether it passed).

    Args:
        passed: no endpoint failed.
        worst: the worst status among the endpoints (``ok``, ``info``, ``warn``, ``error``).
        served_sha256: fingerprints of the leaf certificates the server sent.
        failed: how many probed endpoints failed (for the headline's "3 of 5").
        total: how many endpoints were probed.
    """
    record: dict[str, Any] = {"event": "probe", "time": clock.now().isoformat(timespec="microseconds"),
                              "cert_sha256": leaf_sha256(mr), "passed": bool(passed), "worst": str(worst),
                              "served": list(served_sha256)}
    if failed is not None and total is not None:
        record.update(failed=int(failed), total=int(total))
    _append(mr, record)


def record_notice(mr: MailRoot, *, how: str = "shown") -> None:
    """Remember that the user notice was shown (or downloaded) for the
    certificate installed now."""
    _append(mr, {"event": "notice", "time": clock.now().isoformat(timespec="microseconds"),
                 "cert_sha256": leaf_sha256(mr), "how": how})


def record_diagnosis(mr: MailRoot, *, where: str = "page") -> None:
    """Remember that a diagnosis of *mr* was run and shown (step 1's mark).

    Args:
        where: ``"page"``, ``"cli"`` or ``"notebook"``.
    """
    _append(mr, {"event": "diagnose", "time": clock.now().isoformat(timespec="microseconds"), "where": where})


def record_step(mr: MailRoot, step: Step | str) -> None:
    """Remember which step the page shows, so a reload opens it again.

    Nothing is written when *step* is already the last one remembered.
    """
    step = Step(step)
    if last_step(mr) is step:
        return
    _append(mr, {"event": "step", "time": clock.now().isoformat(timespec="microseconds"), "step": str(step)})


def last_step(mr: MailRoot) -> Step | None:
    """The step the page showed last (``None``: none remembered)."""
    for record in reversed(events(mr)):
        if record.get("event") == "step":
            try:
                return Step(str(record.get("step")))
            except ValueError:
                return None
    return None


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
