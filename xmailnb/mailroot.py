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

from .errors import MailRootError
from .i18n import Msg

__all__ = ["MailRoot", "resolve", "sandbox_path", "data_dir", "create_sandbox"]

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


def _check(path: Path) -> None:
    if not path.exists():
        raise MailRootError.of("mailroot.missing", "mailroot.missing.fix", path=str(path))
    if not path.is_dir():
        raise MailRootError.of("mailroot.not_dir", "mailroot.not_dir.fix", path=str(path))
    if not (path / "server.tab").is_file():
        raise MailRootError.of("mailroot.no_servertab", "mailroot.no_servertab.fix", path=str(path))
    if not os.access(path, os.R_OK | os.X_OK):
        raise MailRootError.of("mailroot.unreadable", "mailroot.unreadable.fix", path=str(path))


def create_sandbox(path: Path) -> MailRoot:
    """Create (or complete) a training MailRoot at *path*.

    The server.tab is a realistic stock one with the TLS variables commented
    out, as XMail ships it.  Existing files are never overwritten.
    """
    from .servertab import stock_servertab

    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in _STOCK_DIRS:
        (path / name).mkdir(exist_ok=True)
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


def resolve(arg: str | os.PathLike[str] | None = None,
            environ: Mapping[str, str] | None = None) -> MailRoot:
    """Choose the MailRoot: *arg*, else ``MAIL_ROOT``, else the sandbox.

    Raises:
        MailRootError: the chosen folder is missing or does not look like a
            MailRoot (no server.tab).  The sandbox is created instead.
    """
    env = os.environ if environ is None else environ
    chosen = arg if arg not in (None, "") else env.get("MAIL_ROOT") or None
    if chosen is None:
        sandbox = sandbox_path(env)
        if not (sandbox / "server.tab").is_file() or not sandbox.joinpath(*SANDBOX_MARKER.split("/")).is_file():
            return create_sandbox(sandbox)
        return MailRoot(path=sandbox, is_sandbox=True)
    path = Path(chosen).expanduser()
    path = path.resolve() if path.exists() else path.absolute()
    _check(path)
    return MailRoot(path=path, is_sandbox=path.joinpath(*SANDBOX_MARKER.split("/")).is_file())


def describe(mr: MailRoot) -> Msg:
    """One line telling which MailRoot is in use."""
    key = "mailroot.using.sandbox" if mr.is_sandbox else "mailroot.using"
    return Msg.of(key, path=str(mr.path))
