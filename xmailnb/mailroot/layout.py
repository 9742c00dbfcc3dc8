"""Where things live in an XMail MailRoot: XMail's own files and the product's.

Which MailRoot is used is :func:`xmailnb.mailroot.resolve.resolve`'s
business; this module only names places, so every layer can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..files import DEFAULT_LIMIT, FileTooLarge, NotRegularFile, read_regular, user_folder
from ..i18n import Msg

__all__ = ["MailRoot", "REL_WATCHED", "sandbox_path", "data_dir", "MANAGED_FILES", "MANAGED_LOGS", "is_managed", "read_problem",
           "describe", "SANDBOX_DIRNAME", "SANDBOX_MARKER", "JOURNAL_NAME"]

SANDBOX_DIRNAME = "sandbox-MailRoot"
# Written into every sandbox (and kept by a copy of one): practice features
# such as the practice CA are offered only where it is present.
SANDBOX_MARKER = "sslconf/xmailnb-sandbox.txt"

# The product's own files in sslconf/ (XMail's own are attributes of MailRoot).
REL_CHECKLIST = "sslconf/checklist.json"
#: The workbook's settings for the live check (:mod:`xmailnb.mailroot.workbook`).
REL_WORKBOOK = "sslconf/xmailnb.json"
#: The sandbox's reset count (:mod:`xmailnb.mailroot.sandbox`).
REL_GENERATION = "sslconf/xmailnb-generation.json"
#: The store's audit log and the step progress log: append-only, written
#: with :meth:`xmailnb.mailroot.store.Store.append_log`, never archived.
REL_AUDIT_LOG = "sslconf/audit.log"
REL_PROGRESS_LOG = "sslconf/progress.jsonl"

ACME_DIR = "sslconf/acme"
REL_ACME_ACCOUNT_KEY = f"{ACME_DIR}/account.key"
REL_ACME_SETTINGS = f"{ACME_DIR}/settings.json"
REL_ACME_STATUS = f"{ACME_DIR}/status.json"
REL_ACME_DIRECTORY_CA = f"{ACME_DIR}/directory-ca.pem"

PRACTICE_DIR = "sslconf/practice-ca"
REL_PRACTICE_ROOT_KEY = f"{PRACTICE_DIR}/root.key"
REL_PRACTICE_ROOT_CERT = f"{PRACTICE_DIR}/root.crt"
REL_PRACTICE_INTERMEDIATE_KEY = f"{PRACTICE_DIR}/intermediate.key"
REL_PRACTICE_INTERMEDIATE_CERT = f"{PRACTICE_DIR}/intermediate.crt"
PRACTICE_ISSUED_DIR = f"{PRACTICE_DIR}/issued"
REL_PRACTICE_ISSUED_SERVER = f"{PRACTICE_ISSUED_DIR}/server.crt"
REL_PRACTICE_ISSUED_INTERMEDIATE = f"{PRACTICE_ISSUED_DIR}/intermediate.crt"
REL_PRACTICE_ISSUED_ROOT = f"{PRACTICE_ISSUED_DIR}/root.crt"
REL_PRACTICE_ISSUED_ROOT_DER = f"{PRACTICE_ISSUED_DIR}/root.der"

#: Every file the product ever writes, relative to the MailRoot.  The store
#: writes, archives and restores only these: a tampered archive manifest
#: cannot make it touch anything else (``../outside``, ``/etc/passwd``).
MANAGED_FILES: frozenset[str] = frozenset({
    "server.tab", "server.cert", "server.key", "certs.pem",
    "sslconf/server.key", "sslconf/server.csr", "sslconf/server.csr.json", REL_CHECKLIST, REL_WORKBOOK,
    REL_ACME_ACCOUNT_KEY, REL_ACME_SETTINGS, REL_ACME_STATUS, REL_ACME_DIRECTORY_CA,
    REL_PRACTICE_ROOT_KEY, REL_PRACTICE_ROOT_CERT, REL_PRACTICE_INTERMEDIATE_KEY, REL_PRACTICE_INTERMEDIATE_CERT,
    REL_PRACTICE_ISSUED_SERVER, REL_PRACTICE_ISSUED_INTERMEDIATE, REL_PRACTICE_ISSUED_ROOT,
    REL_PRACTICE_ISSUED_ROOT_DER,
})

#: The append-only logs of :meth:`xmailnb.mailroot.store.Store.append_log`.
MANAGED_LOGS: frozenset[str] = frozenset({REL_AUDIT_LOG, REL_PROGRESS_LOG})

#: What a page and the classroom board watch with a cheap ``stat`` each: a
#: change to any of these means the MailRoot must be read again.  Every
#: file and log xmailnb writes, the sandbox's generation (a reset), and
#: ``sslconf`` itself (a folder replaced whole).
REL_WATCHED: tuple[str, ...] = ("sslconf", *sorted(MANAGED_FILES | MANAGED_LOGS), REL_GENERATION)

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
    rel_checklist = REL_CHECKLIST

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
        try:
            return read_regular(self.file(rel), DEFAULT_LIMIT if limit is None else limit)
        except FileNotFoundError:
            return None

    def to_json(self) -> str:
        return str(self.path)


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder (``XMAILNB_DATA_DIR`` overrides it)."""
    return user_folder("data", environ)


def sandbox_path(environ: Mapping[str, str] | None = None) -> Path:
    return data_dir(environ) / SANDBOX_DIRNAME


def read_problem(name: str, exc: OSError) -> Msg:
    """What is wrong with file *name*, given the error reading it raised."""
    if isinstance(exc, NotRegularFile):
        return Msg.of("mailroot.file.not_regular", name=name, kind=Msg.of(f"mailroot.kind.{exc.kind}"))
    if isinstance(exc, FileTooLarge):
        return Msg.of("mailroot.file.too_large", name=name, limit=exc.limit)
    return Msg.of("mailroot.file.unreadable", name=name, reason=exc.strerror or type(exc).__name__)


def describe(mr: MailRoot) -> Msg:
    """One line telling which MailRoot is in use."""
    key = "mailroot.using.sandbox" if mr.is_sandbox else "mailroot.using"
    return Msg.of(key, path=str(mr.path))
