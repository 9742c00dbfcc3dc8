"""Hand checks: the ``openssl`` commands that show, on the MailRoot as it is
now, what xmailnb judges, run for the reader of a teaching notebook.

Each check is built for the MailRoot's current state (for example
``openssl verify`` gets ``-CAfile sslconf/practice-ca/issued/root.crt`` when
the installed chain ends at the practice CA, else the public roots xmailnb
itself trusts), runs without a shell in the MailRoot folder, and shows the
exact command line, what it printed, what a good result means, what a
failure looks like, and xmailnb's own verdict on the same question.

>>> print(hand_check("cert.verify", mr, lang="en"))         # doctest: +SKIP
[Verify the certificate as a mail client does]
$ openssl verify -CAfile sslconf/practice-ca/issued/root.crt -purpose sslserver ...
server.cert: OK
✔ ...

Safety.  Only the commands defined here run, as argument lists (no shell):
they read files and print public data (certificates, public keys, hashes).
Private keys only ever go in as ``-in`` and come out as their public half
(``openssl pkey -pubout``); any private-key PEM that reached the output
anyway is withheld.  Standard input is closed and the process has no
terminal, so an encrypted key makes openssl fail at once instead of waiting
for a passphrase.  Output is capped and each command has a time limit.
Nothing here writes to the MailRoot.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certifi
from cryptography.hazmat.primitives import serialization

from ..checks import probe
from ..checks.diagnose import diagnose
from ..checks.installed import practice_issued
from ..errors import InputError, XmailnbError
from ..files import file_kind, read_regular
from ..flows import actions, notice
from ..flows.actions import read_user_file
from ..flows.practice import running_ports
from ..i18n import Msg
from ..logs import log_unexpected
from ..mailroot.endpoints import ENDPOINTS
from ..mailroot.layout import (
    REL_PRACTICE_ISSUED_INTERMEDIATE,
    REL_PRACTICE_ISSUED_ROOT,
    REL_PRACTICE_ISSUED_SERVER,
    REL_PRACTICE_ROOT_CERT,
    MailRoot,
)
from ..mailroot.sandbox import practice_ports
from ..mailroot.servertab import ServerTab, mail_hostname
from ..mailroot.workbook import probe_settings
from ..pki import certfiles, keys
from ..status import Status
from ..steps import Step
from .guide import NOTEBOOKS, as_mailroot, language, step_ref

__all__ = [
    "CHECKS",
    "Command",
    "Output",
    "Verdict",
    "HandCheck",
    "hand_check",
    "chain_anchor",
]

log = logging.getLogger(__name__)

OPENSSL = "openssl"
DEFAULT_TIMEOUT = 20.0
_MAX_OUTPUT = 64 * 1024
_PRACTICE_ROOTS = (REL_PRACTICE_ISSUED_ROOT, REL_PRACTICE_ROOT_CERT)
_PRACTICE_SERVER = REL_PRACTICE_ISSUED_SERVER
_PRACTICE_INTERMEDIATE = REL_PRACTICE_ISSUED_INTERMEDIATE
# Which step makes a file a check reads (to say what to do when it is missing).
_MADE_BY: dict[str, Step] = {
    "server.cert": Step.INSTALL,
    "server.key": Step.INSTALL,
    "sslconf/server.key": Step.CSR,
    "sslconf/server.csr": Step.CSR,
    _PRACTICE_SERVER: Step.SUBMIT,
    _PRACTICE_INTERMEDIATE: Step.SUBMIT,
    _PRACTICE_ROOTS[0]: Step.SUBMIT,
}
_PRIVATE_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
                          re.DOTALL)
_HASH = re.compile(r"=\s*([0-9a-fA-F]{64})\s*$", re.MULTILINE)
# The endpoints a served-certificate check knows, and how TLS starts there.
_STARTTLS = {"smtp": "smtp", "submission": "smtp", "pop3": "pop3"}
_SERVED = ("smtp", "submission", "smtps", "pop3", "pop3s")


# -- commands and what they printed ---------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One command line: a pipeline of argument lists.

    Attributes:
        stages: the programs, each reading what the one before printed.
        closed_stdin: shown as ``</dev/null`` (standard input is always
            closed; this says so where the program would otherwise wait).
        excerpt: keeps the lines worth reading of a long output; returns
            them and how many lines were left out.
    """

    stages: tuple[tuple[str, ...], ...]
    closed_stdin: bool = False
    excerpt: Callable[[str], tuple[str, int]] | None = None

    def text(self) -> str:
        """The command line as one would type it in a POSIX shell."""
        line = " | ".join(shlex.join(stage) for stage in self.stages)
        return line + (" </dev/null" if self.closed_stdin else "")


@dataclass
class Output:
    """What a command printed, as a terminal would show it.

    Attributes:
        text: standard error of every stage and standard output of the last
            (private-key PEM withheld, long output cut).
        returncode: the last stage's exit status (``None`` when it did not run
            to the end).
        missing: the program that is not installed, if any.
        timed_out: stopped after the time limit.
        omitted: lines an excerpt left out.
    """

    command: Command
    text: str = ""
    returncode: int | None = None
    missing: str | None = None
    timed_out: bool = False
    omitted: int = 0

    @property
    def ran(self) -> bool:
        return self.missing is None and not self.timed_out


@dataclass(frozen=True)
class Verdict:
    """xmailnb's own answer to the question a hand check asks."""

    status: Status
    message: Msg


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The notes quote openssl's and ls' English messages; a Japanese locale
    # would translate ls' ("そのようなファイルやディレクトリはありません").
    env.pop("LC_ALL", None)
    env["LC_MESSAGES"] = "C"
    return env


def _withheld(text: str) -> str:
    if "PRIVATE KEY" not in text:
        return text
    return _PRIVATE_PEM.sub("[private key withheld]", text)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def run_command(command: Command, cwd: Path, timeout: float = DEFAULT_TIMEOUT) -> Output:
    """Run *command* in *cwd*, as a shell would run the pipeline.

    The stages run one after the other, each fed the previous one's output
    (outputs are small).  Never raises for the program's own failure: a
    missing program, a non-zero status or a timeout is in the result.
    """
    out = Output(command=command)
    for stage in command.stages:
        if shutil.which(stage[0]) is None:
            out.missing = stage[0]
            return out
    deadline = time.monotonic() + timeout
    shown: list[bytes] = []
    data: bytes | None = None
    for i, stage in enumerate(command.stages):
        last = i == len(command.stages) - 1
        try:
            proc = subprocess.run(
                list(stage), cwd=cwd, input=data if data is not None else b"",
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT if last else subprocess.PIPE,
                timeout=max(0.1, deadline - time.monotonic()), env=_environment(),
                # No terminal: openssl cannot ask for a passphrase and wait.
                start_new_session=True, check=False)
        except subprocess.TimeoutExpired:
            out.timed_out = True
            break
        except OSError as exc:
            out.missing = stage[0]
            log.info("could not run %s: %s", stage[0], exc)
            return out
        if last:
            shown.append(proc.stdout[:_MAX_OUTPUT])
            out.returncode = proc.returncode
        else:
            shown.append(proc.stderr[:_MAX_OUTPUT])
            data = proc.stdout[:_MAX_OUTPUT * 16]
    text = _withheld(_decode(b"".join(shown)))
    if command.excerpt is not None and not out.timed_out:
        text, out.omitted = command.excerpt(text)
    out.text = text.rstrip("\n")
    return out


# -- the checks -----------------------------------------------------------------------

@dataclass
class _Plan:
    commands: list[Command]
    needs: list[str] = field(default_factory=list)
    judge: Callable[[list[Output]], bool | None] = lambda outs: None
    verdicts: Callable[[], list[Verdict]] = lambda: []
    note: list[Msg] = field(default_factory=list)
    title_params: dict[str, Any] = field(default_factory=dict)
    #: xmailnb's verdict still says something when a file is missing
    #: (the diagnosis does; a verdict on the received files does not).
    verdicts_when_missing: bool = True


@dataclass
class _Context:
    mr: MailRoot
    params: Mapping[str, Any]
    _report: Any = None

    def report(self) -> Any:
        if self._report is None:

            self._report = diagnose(self.mr)
        return self._report

    def findings(self, *checks: str) -> list[Verdict]:
        report = self.report()
        out = []
        for check in checks:
            try:
                f = report.by_check(check)
            except KeyError:
                continue
            out.append(Verdict(f.status, f.message))
        return out

    def rel(self, path: str | os.PathLike[str]) -> str:
        """*path* as the command will name it: relative to the MailRoot when
        inside it, never starting with ``-`` (openssl would take an option)."""
        p = Path(path).expanduser()
        if not p.is_absolute():
            text = p.as_posix()
        else:
            try:
                text = p.resolve().relative_to(self.mr.path.resolve()).as_posix()
            except (ValueError, OSError):
                text = str(p)
        return "./" + text if text.startswith("-") else text


def _ok_run(outs: list[Output]) -> bool:
    return all(o.ran and o.returncode == 0 for o in outs)


def _hashes(outs: list[Output]) -> list[str | None]:
    found = []
    for o in outs:
        m = _HASH.search(o.text) if o.ran and o.returncode == 0 else None
        found.append(m.group(1).lower() if m else None)
    return found


def _same_hash(outs: list[Output]) -> bool:
    found = _hashes(outs)
    return len(found) >= 2 and found[0] is not None and all(h == found[0] for h in found)


def _pubkey_hash(kind: str, path: str) -> Command:
    first: tuple[str, ...]
    if kind == "key":
        first = (OPENSSL, "pkey", "-in", path, "-pubout")
    elif kind == "csr":
        first = (OPENSSL, "req", "-in", path, "-noout", "-pubkey")
    else:
        first = (OPENSSL, "x509", "-in", path, "-noout", "-pubkey")
    return Command((first, (OPENSSL, "sha256")))


def _show_cert(path: str) -> Command:
    return Command(((OPENSSL, "x509", "-in", path, "-noout", "-subject", "-issuer", "-dates",
                     "-ext", "subjectAltName", "-nameopt", "utf8"),))


def _ls_modes(text: str) -> dict[str, str]:
    """File name -> mode column of ``ls -l`` lines."""
    modes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 9 and len(parts[0]) >= 10 and parts[0][0] in "-lbcdps":
            modes[parts[-1]] = parts[0]
    return modes


def _private_mode(mode: str | None) -> bool:
    # -rw------- or -r--------: nobody but the owner (ACL "+" suffix aside).
    return mode is not None and mode.startswith("-") and mode[4:10] == "------"


def _files_judge(key: str, other: str) -> Callable[[list[Output]], bool]:
    def judge(outs: list[Output]) -> bool:
        if not outs or not outs[0].ran:
            return False
        modes = _ls_modes(outs[0].text)
        return other in modes and _private_mode(modes.get(key))
    return judge


def chain_anchor(mr: MailRoot, report: Any = None) -> str:
    """The ``-CAfile`` that checks *mr*'s installed chain the way xmailnb
    does: the practice root when the chain ends at the practice CA,
    certs.pem when that is what it ends at, else the public roots xmailnb
    trusts (certifi's copy of Mozilla's list), as a path relative to the
    MailRoot where it is inside it."""
    if report is None:

        report = diagnose(mr)
    anchor = None
    # The trust verdict names the anchor of a chain clients accept; for one
    # they refuse (expired, say) the chain check still names where it ends.
    for check in ("cert.trust", "cert.chain"):
        try:
            anchor = anchor or report.by_check(check).details.get("anchor")
        except KeyError:
            pass
    if anchor == "practice":
        for rel in _PRACTICE_ROOTS:
            if mr.file(rel).is_file():
                return rel
    if anchor == "certs.pem" and mr.certs_pem.is_file():
        return mr.rel_certs_pem
    return _public_bundle()


def _public_bundle() -> str:

    return str(certifi.where())


def _is_practice(path: Path) -> bool:

    try:
        certs = certfiles.certificates_from(read_regular(path, certfiles.MAX_INPUT_BYTES), name=path.name)
    except (OSError, XmailnbError, ValueError):
        return False
    return bool(certs) and practice_issued(certs)


# Each builder makes the plan of one check for the MailRoot as it is.

def _openssl_version(ctx: _Context) -> _Plan:
    def judge(outs: list[Output]) -> bool:
        return _ok_run(outs) and outs[0].text.startswith(("OpenSSL", "LibreSSL"))
    return _Plan([Command(((OPENSSL, "version"),))], judge=judge)


def _files(ctx: _Context) -> _Plan:
    return _Plan([Command((("ls", "-l", "server.cert", "server.key"),))],
                 judge=_files_judge("server.key", "server.cert"),
                 verdicts=lambda: ctx.findings("cert.present", "key.present", "key.permissions"))


def _cert_show(ctx: _Context) -> _Plan:
    return _Plan([_show_cert("server.cert")], needs=["server.cert"], judge=_ok_run,
                 verdicts=lambda: ctx.findings("cert.validity", "cert.hostname"))


def _cert_pair(ctx: _Context) -> _Plan:
    return _Plan([_pubkey_hash("key", "server.key"), _pubkey_hash("cert", "server.cert")],
                 needs=["server.key", "server.cert"], judge=_same_hash,
                 verdicts=lambda: ctx.findings("cert.pair"))


def _order_judge(outs: list[Output]) -> bool:
    if not _ok_run(outs):
        return False
    subjects = re.findall(r"^subject=(.*)$", outs[0].text, re.MULTILINE)
    issuers = re.findall(r"^issuer=(.*)$", outs[0].text, re.MULTILINE)
    if not subjects or len(subjects) != len(issuers):
        return False
    return all(issuers[i] == subjects[i + 1] for i in range(len(subjects) - 1))


# OpenSSL's default name format writes each byte beyond ASCII as \XX
# ("Practice Root CA \E2\80\94 NOT FOR PRODUCTION"), and `openssl pkcs7`
# has no -nameopt to change that; a run of such bytes that is printable UTF-8
# is shown as the character it encodes.  Anything else (a control character
# in a hostile name, bytes that are not UTF-8) keeps OpenSSL's escape.
_HEX_BYTES = re.compile(r"(?<!\\)(?:\\[0-9A-F]{2})+")


def _utf8_names(text: str) -> tuple[str, int]:
    """*text* with OpenSSL's ``\\XX`` escapes of UTF-8 names decoded
    (an excerpt that leaves out no line)."""
    def decode(match: re.Match[str]) -> str:
        try:
            decoded = bytes.fromhex(match.group().replace("\\", "")).decode("utf-8")
        except UnicodeDecodeError:
            return match.group()
        return decoded if decoded.isprintable() else match.group()
    return _HEX_BYTES.sub(decode, text), 0


def _cert_order(ctx: _Context) -> _Plan:
    command = Command(((OPENSSL, "crl2pkcs7", "-nocrl", "-certfile", "server.cert"),
                       (OPENSSL, "pkcs7", "-print_certs", "-noout")), excerpt=_utf8_names)
    return _Plan([command], needs=["server.cert"], judge=_order_judge,
                 verdicts=lambda: ctx.findings("cert.chain"))


def _verify_judge(name: str) -> Callable[[list[Output]], bool]:
    def judge(outs: list[Output]) -> bool:
        return _ok_run(outs) and re.search(rf"^{re.escape(name)}: OK$", outs[0].text, re.MULTILINE) is not None
    return judge


def _cert_verify(ctx: _Context) -> _Plan:
    if not ctx.mr.server_cert.is_file():
        return _Plan([], needs=["server.cert"])
    anchor = ctx.rel(chain_anchor(ctx.mr, ctx.report()))
    argv = [OPENSSL, "verify", "-CAfile", anchor, "-purpose", "sslserver"]
    hostname = ctx.report().hostname
    if hostname:
        argv += ["-verify_hostname", hostname]
    argv += ["-untrusted", "server.cert", "server.cert"]
    return _Plan([Command((tuple(argv),))], needs=["server.cert"], judge=_verify_judge("server.cert"),
                 verdicts=lambda: ctx.findings("cert.chain", "cert.trust", "cert.hostname"))


def _pending_files(ctx: _Context) -> _Plan:
    return _Plan([Command((("ls", "-l", "sslconf/server.key", "sslconf/server.csr"),))],
                 judge=_files_judge("sslconf/server.key", "sslconf/server.csr"),
                 verdicts=lambda: ctx.findings("csr.pending"))


def _pending_show(ctx: _Context) -> _Plan:
    command = Command(((OPENSSL, "req", "-in", "sslconf/server.csr", "-noout", "-text", "-verify",
                        "-nameopt", "utf8", "-reqopt", "no_header,no_version,no_pubkey,no_sigdump"),))

    def judge(outs: list[Output]) -> bool:
        return _ok_run(outs) and re.search(r"verify OK", outs[0].text) is not None
    return _Plan([command], needs=["sslconf/server.csr"], judge=judge,
                 verdicts=lambda: ctx.findings("csr.pending"))


def _pending_pair_verdict(ctx: _Context) -> list[Verdict]:

    mr = ctx.mr
    try:
        key = certfiles.private_key_from(read_regular(mr.pending_key, certfiles.MAX_INPUT_BYTES),
                                         name=mr.rel_pending_key)
        csr = certfiles.csr_from(read_regular(mr.pending_csr, certfiles.MAX_INPUT_BYTES),
                                 name=mr.rel_pending_csr)
    except XmailnbError as exc:
        return [Verdict(Status.ERROR, exc.msg)]
    except OSError as exc:
        return [Verdict(Status.ERROR, Msg.of("handcheck.unreadable", reason=exc.strerror or type(exc).__name__))]
    if keys.public_key_matches(key, csr):
        return [Verdict(Status.OK, Msg.of("handcheck.pending.pair.match"))]
    return [Verdict(Status.ERROR, Msg.of("handcheck.pending.pair.mismatch"))]


def _pending_pair(ctx: _Context) -> _Plan:
    return _Plan([_pubkey_hash("key", "sslconf/server.key"), _pubkey_hash("csr", "sslconf/server.csr")],
                 needs=["sslconf/server.key", "sslconf/server.csr"], judge=_same_hash,
                 verdicts=lambda: _pending_pair_verdict(ctx), verdicts_when_missing=False)


def _csr_digest(ctx: _Context) -> str | None:

    try:
        csr = certfiles.csr_from(read_regular(ctx.mr.pending_csr, certfiles.MAX_INPUT_BYTES),
                                 name=ctx.mr.rel_pending_csr)
    except (OSError, XmailnbError):
        return None
    return keys.sha256_fingerprint(csr.public_bytes(serialization.Encoding.DER))


def _pending_fingerprint(ctx: _Context) -> _Plan:
    command = Command(((OPENSSL, "req", "-in", "sslconf/server.csr", "-outform", "DER"), (OPENSSL, "sha256")))
    ours = _csr_digest(ctx)

    def judge(outs: list[Output]) -> bool:
        found = _hashes(outs)[0] if outs else None
        return ours is not None and found == ours.replace(":", "").lower()

    def verdicts() -> list[Verdict]:
        if ours is None:
            return ctx.findings("csr.pending")
        return [Verdict(Status.INFO, Msg.of("handcheck.pending.fingerprint.ours", sha256=ours))]
    return _Plan([command], needs=["sslconf/server.csr"], judge=judge, verdicts=verdicts)


def _received(ctx: _Context) -> tuple[str, list[str], bool]:
    """The received certificate file, its chain files, and whether they are
    the practice CA's (whose root then anchors the check)."""
    cert = ctx.params.get("cert")
    chain = ctx.params.get("chain")
    if cert is None:
        return _PRACTICE_SERVER, [_PRACTICE_INTERMEDIATE] if chain is None else _paths(chain), True
    paths = _paths(chain) if chain is not None else []

    for path in [cert, *paths]:
        full = ctx.mr.path / Path(path).expanduser()
        if full.exists() or full.is_symlink():
            # Refused as the install would refuse it (a folder, a FIFO, a
            # device, a huge file), before openssl could wait on it.
            read_user_file(str(full))
    practice = _is_practice(ctx.mr.path / Path(cert).expanduser())
    return str(cert), paths, practice


def _paths(value: Any) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _received_show(ctx: _Context) -> _Plan:
    cert, _chain, _practice = _received(ctx)
    return _Plan([_show_cert(ctx.rel(cert))], needs=[cert], judge=_ok_run,
                 verdicts=lambda: _install_verdict(ctx), verdicts_when_missing=False)


def _received_pair(ctx: _Context) -> _Plan:
    cert, _chain, _practice = _received(ctx)
    return _Plan([_pubkey_hash("cert", ctx.rel(cert)), _pubkey_hash("csr", "sslconf/server.csr")],
                 needs=[cert, "sslconf/server.csr"], judge=_same_hash,
                 verdicts=lambda: _install_verdict(ctx), verdicts_when_missing=False)


def _received_verify(ctx: _Context) -> _Plan:
    cert, chain, practice = _received(ctx)
    anchor = next((r for r in _PRACTICE_ROOTS if ctx.mr.file(r).is_file()), None) if practice else None
    argv = [OPENSSL, "verify", "-CAfile", ctx.rel(anchor) if anchor else _public_bundle(),
            "-purpose", "sslserver"]
    for path in chain:
        argv += ["-untrusted", ctx.rel(path)]
    argv.append(ctx.rel(cert))
    needs = [cert, *chain] + ([_PRACTICE_ROOTS[0]] if practice and anchor is None else [])
    return _Plan([Command((tuple(argv),))], needs=needs, judge=_verify_judge(ctx.rel(cert)),
                 verdicts=lambda: _install_verdict(ctx), verdicts_when_missing=False)


def _install_verdict(ctx: _Context) -> list[Verdict]:
    """What the install step would say about the received files (nothing is written)."""

    cert, chain, _practice = _received(ctx)
    try:
        plan = actions.plan_install(ctx.mr, actions.Upload.from_path(str(ctx.mr.path / Path(cert).expanduser())),
                                    [actions.Upload.from_path(str(ctx.mr.path / Path(p).expanduser()))
                                     for p in chain])
    except XmailnbError as exc:
        return [Verdict(Status.ERROR, Msg.of("handcheck.received.refused", step=step_ref(Step.INSTALL),
                                        reason=exc.msg))]
    return ([Verdict(Status.OK, Msg.of("handcheck.received.accepted", step=step_ref(Step.INSTALL)))]
            + [Verdict(Status.WARN, w) for w in plan.warnings])


def _settings_grep(ctx: _Context) -> _Plan:
    pattern = '^#?"(Enable(SMTP|POP3|CTRL)-TLS|SSL[A-Za-z]+|SmtpNoTLSAuths|SmtpConfig[^"]*)"'
    command = Command((("grep", "-n", "-E", pattern, "server.tab"),))

    def judge(outs: list[Output]) -> bool | None:
        # grep says 1 when no line matched: every TLS variable at its default.
        return None if outs and outs[0].ran and outs[0].returncode in (0, 1) else False
    return _Plan([command], needs=["server.tab"], judge=judge,
                 verdicts=lambda: ctx.findings("settings.tls", "ca.files"))


def _s_client_excerpt(text: str) -> tuple[str, int]:
    """The lines of ``openssl s_client`` worth reading: the chain sent, the
    verification result, the protocol, and any error."""
    keep: list[str] = []
    omitted = 0
    in_chain = False
    for line in text.splitlines():
        stripped = line.strip()
        if line.startswith("Certificate chain"):
            in_chain = True
            keep.append(line)
            continue
        if in_chain:
            if line.startswith("---"):
                in_chain = False
            else:
                keep.append(line)
                continue
        if (line.startswith(("CONNECTED", "Verification", "Verify return code", "Verified peername", "New, ",
                             "Protocol", "verify error", "DONE"))
                or re.search(r"error|errno|refused|unreachable|didn't|did not|timed out", line, re.IGNORECASE)):
            keep.append(line)
        elif stripped and stripped != "---":
            omitted += 1
    return "\n".join(keep), omitted


def _served(endpoint: str) -> Callable[[_Context], _Plan]:
    def build(ctx: _Context) -> _Plan:

        mr = ctx.mr
        unknown = {"endpoint": endpoint, "host": "?", "port": "?"}
        if not mr.server_cert.is_file():
            return _Plan([], needs=["server.cert"], title_params=unknown)
        try:
            host = _served_host(ctx)
            port = _served_port(ctx, endpoint)
        except XmailnbError as exc:
            return _Plan([], note=[exc.msg] + ([exc.fix] if exc.fix else []), title_params=unknown)
        try:
            servername = mail_hostname(ServerTab.read(mr.server_tab)) or host
        except OSError:
            servername = host
        if port is None:
            return _Plan([], note=[Msg.of("handcheck.served.no_port", endpoint=endpoint)],
                         title_params={"endpoint": endpoint, "host": host, "port": "?"})
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv = [OPENSSL, "s_client", "-connect", target]
        if endpoint in _STARTTLS:
            argv += ["-starttls", _STARTTLS[endpoint]]
        argv += ["-servername", servername, "-verify_hostname", servername,
                 "-CAfile", ctx.rel(chain_anchor(mr, ctx.report())),
                 # Names as written (Japanese, the practice CA's dash), not \E2\80\94.
                 "-nameopt", "utf8"]
        command = Command((tuple(argv),), closed_stdin=True, excerpt=_s_client_excerpt)

        def judge(outs: list[Output]) -> bool:
            return bool(outs) and outs[0].ran and "Verify return code: 0 (ok)" in outs[0].text

        def verdicts() -> list[Verdict]:
            results = probe.probe(host, ports={endpoint: port}, servername=servername, mailroot=mr,
                                  timeout=probe.DEFAULT_TIMEOUT)
            return [Verdict(r.status, r.message) for r in results]
        return _Plan([command], judge=judge, verdicts=verdicts,
                     title_params={"endpoint": endpoint, "host": host, "port": port})
    return build


def _served_host(ctx: _Context) -> str:

    given = ctx.params.get("host")
    if given:
        return probe.check_host(str(given))
    if ctx.mr.is_sandbox:
        return "127.0.0.1"

    saved = probe_settings(ctx.mr).host
    if saved:
        return probe.check_host(saved)
    try:
        name = mail_hostname(ServerTab.read(ctx.mr.server_tab))
    except OSError:
        name = None
    return probe.check_host(name or "127.0.0.1")


def _served_port(ctx: _Context, endpoint: str) -> int | None:

    given = ctx.params.get("port")
    if given is not None:
        try:
            port = int(str(given).strip())
        except ValueError:
            port = -1
        if not 0 < port < 65536:
            raise InputError.of("handcheck.served.bad_port", "handcheck.served.bad_port.fix", field="port",
                                value=str(given))
        return port
    if ctx.mr.is_sandbox:
        # The practice server the notebook's form started (it picks free
        # ports); else the fixed ports a classroom gives each trainee (a
        # server started elsewhere then listens there).

        return running_ports(ctx.mr).get(endpoint) or practice_ports().get(endpoint) or None

    saved = probe_settings(ctx.mr).ports
    if saved is not None:
        return saved.get(endpoint)
    return ENDPOINTS.get(endpoint)


def _cert_names(ctx: _Context) -> _Plan:
    command = Command(((OPENSSL, "x509", "-in", "server.cert", "-noout", "-ext", "subjectAltName", "-enddate"),))

    def verdicts() -> list[Verdict]:

        try:
            name, warnings = notice.notice_host(ctx.mr)
        except XmailnbError as exc:
            return [Verdict(Status.ERROR, exc.msg)]
        return ([Verdict(Status.OK, Msg.of("handcheck.cert.names.notice", hostname=name))]
                + [Verdict(Status.WARN, w) for w in warnings])
    return _Plan([command], needs=["server.cert"], judge=_ok_run, verdicts=verdicts, verdicts_when_missing=False)


#: Every hand check, by id.
CHECKS: Mapping[str, Callable[[_Context], _Plan]] = {
    "openssl.version": _openssl_version,
    "files": _files,
    "cert.show": _cert_show,
    "cert.pair": _cert_pair,
    "cert.order": _cert_order,
    "cert.verify": _cert_verify,
    "pending.files": _pending_files,
    "pending.show": _pending_show,
    "pending.pair": _pending_pair,
    "pending.fingerprint": _pending_fingerprint,
    "received.show": _received_show,
    "received.pair": _received_pair,
    "received.verify": _received_verify,
    "settings.grep": _settings_grep,
    **{f"served.{e}": _served(e) for e in _SERVED},
    "cert.names": _cert_names,
}


# -- the result, as a notebook shows it -------------------------------------------------



def _texts(check: str) -> str:
    """The catalog stem of a check's texts (served.* share theirs)."""
    family, _, _endpoint = check.partition(".")
    return f"handcheck.{family}" if family == "served" else f"handcheck.{check}"


@dataclass
class HandCheck:
    """One hand check, run (or not) on a MailRoot.

    Attributes:
        check: its id (a key of :data:`CHECKS`).
        outputs: each command and what it printed, in order.
        passed: the output shows a good result (``True``), shows a problem
            (``False``), or is there to be read (``None``); ``None`` too when
            nothing ran.
        note: why nothing ran, and what to do.
        verdicts: xmailnb's own answer to the same question.
        lang: the language it is shown in.
    """

    check: str
    outputs: list[Output] = field(default_factory=list)
    passed: bool | None = None
    note: list[Msg] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    lang: str = "en"
    title_params: dict[str, Any] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return bool(self.outputs) and all(o.ran for o in self.outputs)

    def lines(self, lang: str | None = None) -> list[str]:
        lang = language(lang or self.lang)
        stem = _texts(self.check)

        def t(msg: Msg) -> str:
            return msg.render(lang)
        out = [t(Msg.of("handcheck.heading", title=Msg(f"{stem}.title", self.title_params)))]
        for o in self.outputs:
            out.append(f"$ {o.command.text()}")
            if o.missing is not None:
                out.append(t(Msg.of("handcheck.no_program", program=o.missing)))
                continue
            if o.text:
                out.append(o.text)
            if o.omitted:
                out.append(t(Msg.of("handcheck.omitted", count=o.omitted)))
            if o.timed_out:
                out.append(t(Msg.of("handcheck.timeout")))
        out.extend(t(m) for m in self.note)
        means, failure = Msg.of(f"{stem}.means"), Msg.of(f"{stem}.failure")
        if self.ran:
            if self.passed is True:
                out.append(t(Msg.of("handcheck.passed", text=means)))
                out.append(t(Msg.of("handcheck.when_failing", text=failure)))
            elif self.passed is False:
                out.append(t(Msg.of("handcheck.failed", text=failure)))
                out.append(t(Msg.of("handcheck.when_good", text=means)))
            else:
                out.append(t(Msg.of("handcheck.reading", text=means)))
                out.append(t(Msg.of("handcheck.when_failing", text=failure)))
        for v in self.verdicts:
            out.append(t(Msg.of("handcheck.verdict", icon=Msg.of(f"handcheck.icon.{v.status}"),
                                message=v.message)))
        return out

    def render(self, lang: str | None = None) -> str:
        return "\n".join(self.lines(lang))

    def __str__(self) -> str:
        return self.render()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.render())


def _missing_notes(ctx: _Context, missing: Sequence[str]) -> list[Msg]:
    """What to do about the missing files: one line per step that makes
    them, then one per file the reader named."""
    by_step: dict[Step, list[str]] = {}
    for rel in missing:
        step = _MADE_BY.get(rel)
        if step is not None:
            by_step.setdefault(step, []).append(rel)
    notes = [Msg.of("handcheck.not_yet", paths=[Msg.of("handcheck.path", path=p) for p in paths],
                    step=step_ref(step), notebook=NOTEBOOKS[step])
             for step, paths in by_step.items()]
    notes += [Msg.of("handcheck.no_file", path=ctx.rel(rel)) for rel in missing if rel not in _MADE_BY]
    return notes


def _unusable(ctx: _Context, rel: str) -> Msg | None:
    """Why openssl should not be given *rel* (not a regular file, or too
    large for a certificate file), or ``None``."""


    try:
        st = (ctx.mr.path / Path(rel).expanduser()).stat()
    except OSError:
        return None  # a dangling link: openssl says it cannot open it
    if not stat.S_ISREG(st.st_mode):
        return Msg.of("actions.not_regular", name=ctx.rel(rel), kind=Msg.of(f"mailroot.kind.{file_kind(st.st_mode)}"))
    if st.st_size > certfiles.MAX_INPUT_BYTES:
        return Msg.of("certfiles.too_large", name=ctx.rel(rel), size=st.st_size, limit=certfiles.MAX_INPUT_BYTES)
    return None


def hand_check(check: str, mailroot: MailRoot | str | os.PathLike[str] | None = None, *,
               lang: str | None = None, timeout: float = DEFAULT_TIMEOUT, **params: Any) -> HandCheck:
    """Run hand check *check* on the MailRoot as it is now.

    Shown in a notebook (or printed), the result gives the exact command
    line, its output, what a good result means, what a failure looks like,
    and xmailnb's own verdict.  It never raises for a MailRoot, a missing
    file or a missing ``openssl``: it says what is wrong and what to do.

    Args:
        check: one of :data:`CHECKS`: ``openssl.version``, ``files``,
            ``cert.show``, ``cert.pair``, ``cert.order``, ``cert.verify``,
            ``pending.files``, ``pending.show``, ``pending.pair``, ``pending.fingerprint``,
            ``received.show``, ``received.pair``, ``received.verify``,
            ``settings.grep``, ``served.<endpoint>`` (smtp, submission,
            smtps, pop3, pop3s), ``cert.names``.
        mailroot: a MailRoot or folder; default ``MAIL_ROOT``, else the sandbox.
        lang: ``"ja"`` or ``"en"`` (default: the user's language).
        timeout: seconds each command may take.
        params: ``cert=`` and ``chain=`` (file or files) for ``received.*``
            (default: what the practice CA issued); ``host=`` and ``port=``
            for ``served.*`` (default: the practice server on a sandbox,
            else the host and ports named for the live check).

    Raises:
        ValueError: *check* is not a hand check (a typo in a notebook).
    """
    if check not in CHECKS:
        raise ValueError(f"unknown hand check {check!r}; one of {', '.join(CHECKS)}")
    lang = language(lang)
    result = HandCheck(check=check, lang=lang)
    if check.startswith("served."):
        result.title_params = {"endpoint": check.partition(".")[2], "host": "?", "port": "?"}
    try:

        mr = as_mailroot(mailroot)
    except XmailnbError as exc:
        result.note = [exc.msg] + ([exc.fix] if exc.fix is not None else [])
        return result
    ctx = _Context(mr=mr, params=params)
    try:
        plan = CHECKS[check](ctx)
        result.title_params.update(plan.title_params)
        missing = [rel for rel in plan.needs if not (mr.path / Path(rel).expanduser()).exists()]
        unusable = [m for m in (_unusable(ctx, rel) for rel in plan.needs if rel not in missing) if m]
        if missing:
            result.note = _missing_notes(ctx, missing)
        elif unusable:
            # openssl would wait on a FIFO or read a device for ever.
            result.note = unusable
        elif plan.note:
            result.note = list(plan.note)
        else:
            result.outputs = [run_command(c, mr.path, timeout) for c in plan.commands]
            result.passed = plan.judge(result.outputs) if result.ran else None
        if plan.verdicts_when_missing or not missing:
            result.verdicts = plan.verdicts()
    except XmailnbError as exc:
        result.note.extend([exc.msg] + ([exc.fix] if exc.fix is not None else []))
    except Exception as exc:  # shown, never a traceback in the notebook

        path = log_unexpected(log, f"running hand check {check}", exc)
        result.note.append(Msg.of("guide.internal", error=type(exc).__name__, log=str(path) if path else "-"))
    return result

