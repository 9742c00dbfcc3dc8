"""Where things live in an XMail MailRoot, and the training sandbox.

A MailRoot is chosen by ``--mailroot``, else XMail's own ``MAIL_ROOT``
environment variable, else the sandbox: a practice MailRoot this product
creates on first use in the user's data folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import MailRootError
from ..i18n import Msg

__all__ = ["MailRoot", "resolve", "sandbox_path", "data_dir", "create_sandbox", "MANAGED_FILES",
           "is_managed", "read_problem", "recover_interrupted"]

SANDBOX_DIRNAME = "sandbox-MailRoot"
# Written into every sandbox (and kept by a copy of one): practice features
# such as the practice CA are offered only where it is present.
SANDBOX_MARKER = "sslconf/xmailnb-sandbox.txt"

# Folders of a stock XMail MailRoot; the sandbox gets them so that it looks
# (and is diagnosed) like the real thing.
_STOCK_DIRS = ("domains", "spool", "tabindex", "dnscache", "logs", "pop3linklocks",
               "userauth", "custdomains", "cmdaliases", "filters", "msgsync", "sslconf")
_STOCK_TABS = ("domains.tab", "mailusers.tab", "aliases.tab", "extaliases.tab",
               "smtpgw.tab", "smtpfwd.tab", "smtprelay.tab", "spammers.tab",
               "spam-address.tab", "pop3links.tab", "ctrlaccounts.tab",
               "aliasdomain.tab", "filters.in.tab", "filters.out.tab",
               "filters.pre-data.tab", "filters.post-data.tab", "filters.post-rcpt.tab",
               "userdef.tab", "smtpauth.tab", "ctrl.ipmap.tab", "smtp.ipmap.tab",
               "pop3.ipmap.tab", "finger.ipmap.tab", "smtpextauth.tab")

#: Every file the product ever writes, relative to the MailRoot.  The store
#: writes, archives and restores only these: a tampered archive manifest
#: cannot make it touch anything else (``../outside``, ``/etc/passwd``).
MANAGED_FILES: frozenset[str] = frozenset({
    "server.tab", "server.cert", "server.key", "certs.pem",
    "sslconf/server.key", "sslconf/server.csr", "sslconf/server.csr.json", "sslconf/checklist.json",
    "sslconf/xmailnb.json",
    "sslconf/acme/account.key", "sslconf/acme/settings.json", "sslconf/acme/status.json",
    "sslconf/acme/directory-ca.pem",
    "sslconf/practice-ca/root.key", "sslconf/practice-ca/root.crt",
    "sslconf/practice-ca/intermediate.key", "sslconf/practice-ca/intermediate.crt",
    "sslconf/practice-ca/issued/server.crt", "sslconf/practice-ca/issued/intermediate.crt",
    "sslconf/practice-ca/issued/root.crt", "sslconf/practice-ca/issued/root.der",
})

#: The folders those files live in ("" is the MailRoot itself).
MANAGED_FOLDERS: tuple[str, ...] = tuple(sorted({rel.rpartition("/")[0] for rel in MANAGED_FILES}))

JOURNAL_NAME = ".xmailnb-journal.json"


def is_managed(rel: object) -> bool:
    """Whether *rel* is exactly one of :data:`MANAGED_FILES`.

    Only the allow-list decides; the shape checks come first so that a
    hostile value (absolute, ``..``, backslash, NUL, not a string) is
    refused the same way whatever the list holds.
    """
    if not isinstance(rel, str) or not rel or len(rel) > 200:
        return False
    if "\\" in rel or "\0" in rel or ":" in rel or rel.startswith("/"):
        return False
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return False
    return rel in MANAGED_FILES


@dataclass(frozen=True)
class MailRoot:
    """A MailRoot folder and the names of the files the product deals with.

    Relative names (``rel_*``) are what the store, the archive and the audit
    log use: always ``/``-separated, relative to the MailRoot.
    """

    path: Path
    is_sandbox: bool = False

    rel_server_tab = "server.tab"
    rel_server_cert = "server.cert"
    rel_server_key = "server.key"
    rel_certs_pem = "certs.pem"
    rel_certs_dir = "certs"
    rel_pending_key = "sslconf/server.key"
    rel_pending_csr = "sslconf/server.csr"
    rel_pending_meta = "sslconf/server.csr.json"
    rel_checklist = "sslconf/checklist.json"

    def file(self, rel: str) -> Path:
        return self.path.joinpath(*rel.split("/"))

    @property
    def server_tab(self) -> Path:
        return self.file(self.rel_server_tab)

    @property
    def server_cert(self) -> Path:
        return self.file(self.rel_server_cert)

    @property
    def server_key(self) -> Path:
        return self.file(self.rel_server_key)

    @property
    def certs_pem(self) -> Path:
        return self.file(self.rel_certs_pem)

    @property
    def certs_dir(self) -> Path:
        return self.file(self.rel_certs_dir)

    @property
    def sslconf(self) -> Path:
        return self.path / "sslconf"

    @property
    def pending_key(self) -> Path:
        return self.file(self.rel_pending_key)

    @property
    def pending_csr(self) -> Path:
        return self.file(self.rel_pending_csr)

    @property
    def pending_meta(self) -> Path:
        return self.file(self.rel_pending_meta)

    @property
    def archive_dir(self) -> Path:
        return self.sslconf / "archive"

    @property
    def audit_log(self) -> Path:
        return self.sslconf / "audit.log"

    @property
    def lock_path(self) -> Path:
        return self.sslconf / ".xmailnb.lock"

    @property
    def journal_path(self) -> Path:
        """The store's intent record while a change is being written."""
        return self.sslconf / JOURNAL_NAME

    def read(self, rel: str, limit: int | None = None) -> bytes | None:
        """The contents of *rel*, or ``None`` when it does not exist.

        Only regular files are read, at most *limit* bytes (default
        :data:`xmailnb.files.DEFAULT_LIMIT`): a FIFO, a device or a folder
        in its place is refused at once.

        Raises:
            OSError: unreadable; :class:`~xmailnb.files.NotRegularFile` and
                :class:`~xmailnb.files.FileTooLarge` say why precisely
                (:func:`read_problem` turns any of them into a message).
        """
        from ..files import DEFAULT_LIMIT, read_regular

        try:
            return read_regular(self.file(rel), DEFAULT_LIMIT if limit is None else limit)
        except FileNotFoundError:
            return None

    def to_json(self) -> str:
        return str(self.path)


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder (``XMAILNB_DATA_DIR`` overrides it)."""
    env = os.environ if environ is None else environ
    forced = env.get("XMAILNB_DATA_DIR")
    if forced:
        return Path(forced)
    import platformdirs  # only the sandbox needs it: keep start-up light

    return Path(platformdirs.user_data_dir("xmailnb", appauthor=False))


def sandbox_path(environ: Mapping[str, str] | None = None) -> Path:
    return data_dir(environ) / SANDBOX_DIRNAME


def read_problem(name: str, exc: OSError) -> Msg:
    """What is wrong with file *name*, given the error reading it raised."""
    from ..files import FileTooLarge, NotRegularFile

    if isinstance(exc, NotRegularFile):
        return Msg.of("mailroot.file.not_regular", name=name, kind=Msg.of(f"mailroot.kind.{exc.kind}"))
    if isinstance(exc, FileTooLarge):
        return Msg.of("mailroot.file.too_large", name=name, limit=exc.limit)
    return Msg.of("mailroot.file.unreadable", name=name, reason=exc.strerror or type(exc).__name__)


def _unreadable(path: Path) -> MailRootError:
    return MailRootError(Msg.of("mailroot.unreadable", path=str(path)),
                         Msg.of("mailroot.unreadable.fix", path=str(path)))


def _check(path: Path) -> None:
    # Path.exists()/is_file() raise PermissionError for a folder this user
    # may not search: that is "unreadable", never an internal error.
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MailRootError.of("mailroot.missing", "mailroot.missing.fix", path=str(path)) from None
    except OSError:
        raise _unreadable(path) from None
    import stat as statmod

    if not statmod.S_ISDIR(st.st_mode):
        raise MailRootError.of("mailroot.not_dir", "mailroot.not_dir.fix", path=str(path))
    if not os.access(path, os.R_OK | os.X_OK):
        raise _unreadable(path)
    try:
        tab = (path / "server.tab").stat()
    except FileNotFoundError:
        raise MailRootError.of("mailroot.no_servertab", "mailroot.no_servertab.fix", path=str(path)) from None
    except OSError:
        raise _unreadable(path) from None
    if not statmod.S_ISREG(tab.st_mode):
        from ..files import _kind

        raise MailRootError(Msg.of("mailroot.servertab.not_regular", path=str(path),
                                   kind=Msg.of(f"mailroot.kind.{_kind(tab.st_mode)}")),
                            Msg.of("mailroot.servertab.not_regular.fix"))


def create_sandbox(path: Path) -> MailRoot:
    """Create (or complete) a training MailRoot at *path*.

    The server.tab is a realistic stock one with the TLS variables commented
    out, as XMail ships it.  Existing files are never overwritten.
    """
    from .servertab import stock_servertab

    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in _STOCK_DIRS:
        (path / name).mkdir(exist_ok=True)
    if not (path / "sslconf").is_symlink():  # never chmod through a link
        os.chmod(path / "sslconf", 0o700)
    for name in _STOCK_TABS:
        tab = path / name
        if not tab.exists():
            tab.write_bytes(b"")
    marker = path.joinpath(*SANDBOX_MARKER.split("/"))
    if not marker.exists():
        marker.write_text("This MailRoot is the xmailnb practice sandbox, not a live XMail server.\n",
                          encoding="utf-8")
    (path / "domains" / "example.jp").mkdir(exist_ok=True)
    domains = path / "domains.tab"
    if domains.stat().st_size == 0:
        domains.write_bytes(b'"example.jp"\n')
    server_tab = path / "server.tab"
    if not server_tab.exists():
        tmp = path / ".server.tab.tmp"
        tmp.write_bytes(stock_servertab())
        os.replace(tmp, server_tab)
    return MailRoot(path=path, is_sandbox=True)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def resolve(arg: str | os.PathLike[str] | None = None,
            environ: Mapping[str, str] | None = None, *, recover: bool = True) -> MailRoot:
    """Choose the MailRoot: *arg*, else ``MAIL_ROOT``, else the sandbox.

    With *recover* (the default), a change that was interrupted (the
    process killed, the power lost) is completed or undone first, see
    :func:`recover_interrupted`.

    Raises:
        MailRootError: the chosen folder is missing, cannot be read by this
            user or does not look like a MailRoot (no server.tab).  The
            sandbox is created instead.
    """
    env = os.environ if environ is None else environ
    chosen = arg if arg not in (None, "") else env.get("MAIL_ROOT") or None
    if chosen is None:
        sandbox = sandbox_path(env)
        if not _is_file(sandbox / "server.tab") or not _is_file(sandbox.joinpath(*SANDBOX_MARKER.split("/"))):
            mr = create_sandbox(sandbox)
        else:
            mr = MailRoot(path=sandbox, is_sandbox=True)
    else:
        path = Path(chosen).expanduser()
        try:
            path = path.resolve() if path.exists() else path.absolute()
        except OSError:
            raise _unreadable(path) from None
        _check(path)
        mr = MailRoot(path=path, is_sandbox=_is_file(path.joinpath(*SANDBOX_MARKER.split("/"))))
    if recover:
        recover_interrupted(mr)
    return mr


def recover_interrupted(mr: MailRoot) -> Msg | None:
    """Complete or undo a change to *mr* that was interrupted half-way.

    Cheap when there is nothing to do (one ``lstat``), so every entry point
    calls it: :func:`resolve`, the diagnosis, every write of the store.
    Returns what was done (for the user), or ``None``.  Never raises: a
    MailRoot that cannot be repaired now (read-only, busy) is repaired by
    the next command that can.
    """
    journal = mr.journal_path
    if not (os.path.lexists(journal) or os.path.lexists(f"{journal}.tmp")):
        return None
    from .store import Store

    return Store(mr).recover()


def describe(mr: MailRoot) -> Msg:
    """One line telling which MailRoot is in use."""
    key = "mailroot.using.sandbox" if mr.is_sandbox else "mailroot.using"
    return Msg.of(key, path=str(mr.path))
