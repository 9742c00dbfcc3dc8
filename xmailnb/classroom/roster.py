"""A class on disk: the roster, the password hashes and one sandbox per person.

Plain Python (no JupyterHub import): the command line creates and extends a
class with it, and the hub's authenticator and the class board read it.

The class folder::

    DIR/class.json              roster: names, roles, languages, practice ports (no secrets)
    DIR/hub/passwords.json      scrypt hashes only (0600); the passwords are shown once
    DIR/hub/...                 JupyterHub's state (database, cookie secret), 0700
    DIR/users/NAME/             each person's data folder (XMAILNB_DATA_DIR)
    DIR/users/NAME/sandbox-MailRoot/   their own practice sandbox (and practice CA)

Names are what JupyterHub, Unix and CSS all accept unchanged: lower-case
ASCII letters, digits, ``-`` and ``_``, starting with a letter, at most 32
characters (``xm-trainee-NAME`` is then a valid class name).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import filelock

from .. import boundedjson
from .. import clock
from ..errors import BusyError, InputError, UsageError
from ..files import read_regular, write_atomic
from ..i18n import LANGUAGES
from ..mailroot.layout import SANDBOX_DIRNAME
from ..mailroot.sandbox import create_sandbox

__all__ = [
    "Account",
    "Classroom",
    "NAME_PATTERN",
    "PRACTICE_BASE",
    "check_name",
    "hash_password",
    "verify_password",
    "new_password",
    "init_class",
    "add_trainees",
    "set_password",
    "remove_trainee",
    "remember_address",
    "address",
    "load",
]

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Names JupyterHub or the class itself uses for something else.
_RESERVED = frozenset({"root", "admin", "hub", "user", "users", "services", "class-board", "idle-culler"})
#: First port of the per-person practice listener ports (two each: SMTP, POP3S).
PRACTICE_BASE = 30025
_ROSTER = "class.json"
_PASSWORDS = "hub/passwords.json"
_ADDRESS = "hub/address.json"
#: Where ``classroom remove`` moves a person's data folder (nothing is deleted).
REMOVED_DIRNAME = "removed"
_VERSION = 1
# scrypt parameters (RFC 7914): n=2**14, r=8 takes ~50 ms and 16 MiB per login.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 14, 8, 1
_MAX_ROSTER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Account:
    """One person of the class.

    Attributes:
        name: the login name.
        role: ``"trainer"`` or ``"trainee"``.
        lang: the workbook's language for this person (``ja``/``en``).
        smtp_port, pop3s_port: their practice listener's ports on 127.0.0.1.
    """

    name: str
    role: str
    lang: str
    smtp_port: int
    pop3s_port: int

    @property
    def practice_ports(self) -> str:
        """``smtp=PORT,pop3s=PORT``: the value of ``XMAILNB_PRACTICE_PORTS``."""
        return f"smtp={self.smtp_port},pop3s={self.pop3s_port}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "lang": self.lang,
                "ports": {"smtp": self.smtp_port, "pop3s": self.pop3s_port}}


@dataclass(frozen=True)
class Classroom:
    """A class folder and its roster."""

    path: Path
    accounts: tuple[Account, ...] = field(default_factory=tuple)
    lang: str = "en"

    @property
    def trainer(self) -> Account:
        return next(a for a in self.accounts if a.role == "trainer")

    @property
    def trainees(self) -> list[Account]:
        return [a for a in self.accounts if a.role == "trainee"]

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)

    @property
    def hub_dir(self) -> Path:
        return self.path / "hub"

    @property
    def users_dir(self) -> Path:
        return self.path / "users"

    def data_dir(self, name: str) -> Path:
        """The person's data folder (their ``XMAILNB_DATA_DIR``)."""
        return self.users_dir / name

    @property
    def removed_dir(self) -> Path:
        return self.path / REMOVED_DIRNAME

    def sandbox(self, name: str) -> Path:
        return self.data_dir(name) / SANDBOX_DIRNAME

    def to_json(self) -> dict[str, Any]:
        return {"version": _VERSION, "lang": self.lang, "accounts": [a.to_json() for a in self.accounts]}


# -- names and passwords ------------------------------------------------------------

def check_name(name: str) -> str:
    """*name* if JupyterHub, Unix and CSS can all use it unchanged.

    Raises:
        InputError: the name is empty, too long, has other characters, or is reserved.
    """
    if not NAME_PATTERN.match(name or ""):
        raise InputError.of("classroom.name.invalid", "classroom.name.invalid.fix", field="name", name=name)
    if name in _RESERVED:
        raise InputError.of("classroom.name.reserved", "classroom.name.reserved.fix", field="name", name=name)
    return name


def split_names(values: Iterable[str]) -> list[str]:
    """Names given as ``a,b c`` (commas or spaces, several options) in order."""
    out: list[str] = []
    for value in values:
        out.extend(n for n in re.split(r"[,\s]+", value.strip()) if n)
    return out


def new_password() -> str:
    """A fresh password to read out in class: 12 characters from :mod:`secrets`,
    without look-alikes (0/O, 1/l/I)."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """The stored form of *password*: ``scrypt$N$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                            dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether *password* matches *stored* (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or int(n) > 2 ** 20 or int(r) > 32 or int(p) > 16:
            return False
        want = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt, validate=True),
                             n=int(n), r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# -- reading and writing ------------------------------------------------------------

def _read_json(path: Path) -> Any:
    return boundedjson.loads(read_regular(path, _MAX_ROSTER_BYTES), name=str(path), max_bytes=_MAX_ROSTER_BYTES)


def _write_private(path: Path, doc: Any, mode: int) -> None:
    write_atomic(path, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"), mode)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InputError.of("classroom.dir.symlink", "classroom.dir.symlink.fix", path=str(path))
    os.chmod(path, 0o700)


def load(path: str | os.PathLike[str]) -> Classroom:
    """Read the class at *path*.

    Raises:
        UsageError: *path* holds no class (or its roster is unreadable).
    """
    root = Path(path).expanduser().absolute()
    try:
        doc = _read_json(root / _ROSTER)
        accounts = tuple(Account(a["name"], a["role"], a.get("lang", "en"), int(a["ports"]["smtp"]),
                                 int(a["ports"]["pop3s"])) for a in doc["accounts"])
        lang = doc.get("lang", "en")
    except FileNotFoundError:
        raise UsageError.of("classroom.missing", "classroom.missing.fix", path=str(root)) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError.of("classroom.unreadable", "classroom.unreadable.fix", path=str(root),
                            reason=str(exc)) from None
    if sum(a.role == "trainer" for a in accounts) != 1:
        raise UsageError.of("classroom.unreadable", "classroom.unreadable.fix", path=str(root),
                            reason="trainer")
    return Classroom(root, accounts, lang if lang in LANGUAGES else "en")


def password_hashes(room: Classroom) -> dict[str, str]:
    """name -> stored hash (what the hub's authenticator checks against)."""
    try:
        doc = _read_json(room.path / _PASSWORDS)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(doc, dict) else {}


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    lock = filelock.FileLock(str(root / "hub" / ".roster.lock"), timeout=5)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise BusyError.of("classroom.busy", "classroom.busy.fix", path=str(root)) from None
    try:
        yield
    finally:
        lock.release()


def _validate_new(names: Sequence[str], existing: Iterable[str]) -> None:
    seen = set(existing)
    for name in names:
        check_name(name)
        if name in seen:
            raise InputError.of("classroom.name.duplicate", "classroom.name.duplicate.fix", field="name",
                                name=name)
        seen.add(name)


def _next_ports(accounts: Sequence[Account]) -> Iterator[tuple[int, int]]:
    used = {p for a in accounts for p in (a.smtp_port, a.pop3s_port)}
    port = PRACTICE_BASE
    while True:
        if port not in used and port + 1 not in used:
            used.update((port, port + 1))
            yield port, port + 1
        port += 2


def _make_sandbox(room: Classroom, name: str) -> None:
    _private_dir(room.data_dir(name))
    create_sandbox(room.sandbox(name))


def init_class(path: str | os.PathLike[str], trainer: str, trainees: Sequence[str], *,
               lang: str = "en") -> tuple[Classroom, dict[str, str]]:
    """Create a class folder with a trainer and trainees.

    Args:
        path: a folder that does not exist yet or is empty.
        trainer: the trainer's login name.
        trainees: the trainees' login names (at least one).
        lang: the class's language (each person's workbook starts in it).

    Returns:
        the class, and name -> password (shown once; only hashes are kept).

    Raises:
        InputError: a name is invalid or given twice, or the folder is in use
            (nothing is created then).
    """
    root = Path(path).expanduser().absolute()
    names = [trainer, *trainees]
    if not trainees:
        raise UsageError.of("classroom.no_trainees", "classroom.no_trainees.fix")
    _validate_new(names, ())
    if os.path.lexists(root):
        if root.is_symlink() or not root.is_dir():
            raise InputError.of("classroom.dir.not_empty", "classroom.dir.not_empty.fix", path=str(root))
        if (root / _ROSTER).exists():
            raise InputError.of("classroom.exists", "classroom.exists.fix", path=str(root))
        if any(root.iterdir()):
            raise InputError.of("classroom.dir.not_empty", "classroom.dir.not_empty.fix", path=str(root))
    lang = lang if lang in LANGUAGES else "en"
    ports = _next_ports(())
    accounts = []
    for i, name in enumerate(names):
        smtp, pop3s = next(ports)
        accounts.append(Account(name, "trainer" if i == 0 else "trainee", lang, smtp, pop3s))
    room = Classroom(root, tuple(accounts), lang)
    _private_dir(root)
    _private_dir(room.hub_dir)
    _private_dir(room.users_dir)
    with _locked(root):
        passwords = {name: new_password() for name in names}
        for name in names:
            _make_sandbox(room, name)
        _write_private(root / _PASSWORDS, {n: hash_password(p) for n, p in passwords.items()}, 0o600)
        _write_private(root / _ROSTER, room.to_json(), 0o644)
    return room, passwords


def add_trainees(path: str | os.PathLike[str], names: Sequence[str], *,
                 lang: str | None = None) -> tuple[Classroom, dict[str, str]]:
    """Add trainees to an existing class (while it is being served, too:
    they can log in at once).

    Returns:
        the class, and name -> password of the new trainees.

    Raises:
        InputError: a name is invalid or taken (nothing is added then).
        UsageError: *path* holds no class.
    """
    room = load(path)
    if not names:
        raise UsageError.of("classroom.no_trainees", "classroom.no_trainees.fix")
    with _locked(room.path):
        room = load(room.path)
        _validate_new(names, (a.name for a in room.accounts))
        ports = _next_ports(room.accounts)
        new = []
        for name in names:
            smtp, pop3s = next(ports)
            new.append(Account(name, "trainee", lang if lang in LANGUAGES else room.lang, smtp, pop3s))
        room = Classroom(room.path, room.accounts + tuple(new), room.lang)
        passwords = {a.name: new_password() for a in new}
        for account in new:
            _make_sandbox(room, account.name)
        hashes = password_hashes(room)
        hashes.update({n: hash_password(p) for n, p in passwords.items()})
        _write_private(room.path / _PASSWORDS, hashes, 0o600)
        _write_private(room.path / _ROSTER, room.to_json(), 0o644)
    return room, passwords


def set_password(path: str | os.PathLike[str], name: str) -> tuple[Classroom, str]:
    """Give *name* a new password (the old one stops working at once).

    Returns:
        the class, and the new password (shown once; only its hash is kept).

    Raises:
        InputError: *name* is not in the class (nothing changes then).
        UsageError: *path* holds no class.
    """
    room = load(path)
    with _locked(room.path):
        room = load(room.path)
        if room.account(name) is None:
            raise InputError.of("classroom.name.unknown", "classroom.name.unknown.fix", field="name", name=name)
        password = new_password()
        hashes = password_hashes(room)
        hashes[name] = hash_password(password)
        _write_private(room.path / _PASSWORDS, hashes, 0o600)
    return room, password


def remove_trainee(path: str | os.PathLike[str], name: str) -> tuple[Classroom, Path | None]:
    """Take trainee *name* out of the class: they can no longer log in, and
    their data folder (sandbox, archives) is moved whole into
    ``DIR/removed/NAME-<time>/``, nothing deleted.

    Returns:
        the class without them, and where their folder went (``None`` when
        they had none).

    Raises:
        InputError: *name* is not a trainee of the class (the trainer cannot
            be removed); nothing changes then.
        UsageError: *path* holds no class.
    """
    room = load(path)
    with _locked(room.path):
        room = load(room.path)
        account = room.account(name)
        if account is None:
            raise InputError.of("classroom.name.unknown", "classroom.name.unknown.fix", field="name", name=name)
        if account.role != "trainee":
            raise InputError.of("classroom.remove.trainer", "classroom.remove.trainer.fix", field="name",
                                name=name)
        moved: Path | None = None
        # The folder first (one rename): killed after it, the roster still
        # names them and a second `remove` finishes; the reverse order could
        # leave a folder that a later `add` of the same name would reuse.
        if os.path.lexists(room.data_dir(name)):
            _private_dir(room.removed_dir)
            stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
            moved = room.removed_dir / f"{name}-{stamp}"
            n = 1
            while os.path.lexists(moved):
                n += 1
                moved = room.removed_dir / f"{name}-{stamp}-{n}"
            os.rename(room.data_dir(name), moved)
        hashes = password_hashes(room)
        hashes.pop(name, None)
        room = Classroom(room.path, tuple(a for a in room.accounts if a.name != name), room.lang)
        _write_private(room.path / _ROSTER, room.to_json(), 0o644)
        _write_private(room.path / _PASSWORDS, hashes, 0o600)
    return room, moved


def _addresses(room: Classroom) -> dict[str, str]:
    try:
        doc = _read_json(room.path / _ADDRESS)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if k in ("public", "served") and isinstance(v, str)
            and v.startswith(("http://", "https://")) and len(v) < 2048}


def remember_address(room: Classroom, url: str, *, public: bool = False) -> None:
    """Keep an address of the class for the login slips and ``add --json``:
    where ``classroom serve`` serves it, or (*public*) the address the
    trainer gave with ``--url`` (a reverse proxy, a cluster's address),
    which wins over the former."""
    doc = _addresses(room)
    doc["public" if public else "served"] = url
    try:
        _write_private(room.path / _ADDRESS, doc, 0o600)
    except OSError as exc:
        log.warning("cannot keep the class's address: %s", exc)


def address(room: Classroom) -> str | None:
    """The address people log in at, as far as the class knows, or ``None``."""
    doc = _addresses(room)
    return doc.get("public") or doc.get("served")
