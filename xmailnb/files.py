"""Reading files a user or a MailRoot hands us, safely.

A path may name a device (``/dev/zero`` never ends), a FIFO (opening it
blocks until a writer comes), a socket, a folder, or a file of gigabytes.
:func:`read_regular` opens without blocking, looks at what it opened (not at
the path, which may change in between) and reads at most *limit* bytes,
counting while reading: ``stat`` sizes lie for ``/proc`` files and devices.

Both refusals are :class:`OSError` subclasses, so code that treats any
unreadable file as "unreadable" keeps working, and code that wants the
precise reason catches them first.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Literal, Mapping

__all__ = ["NotRegularFile", "FileTooLarge", "read_regular", "write_atomic", "file_kind", "sha256_hex",
           "sha256_fingerprint", "user_folder", "DEFAULT_LIMIT"]

#: Certificates and keys are a few KB; a full public CA bundle ~300 KB.
DEFAULT_LIMIT = 1024 * 1024


class NotRegularFile(OSError):
    """The path names a folder, device, FIFO or socket, not a file.

    Attributes:
        kind: ``"directory"``, ``"device"``, ``"fifo"``, ``"socket"``,
            ``"symlink"`` (only when links are not followed) or ``"other"``.
    """

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", path)
        self.kind = kind


class FileTooLarge(OSError):
    """The file holds more than the allowed number of bytes."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes", path)
        self.limit = limit


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def read_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *,
                 dir_fd: int | None = None, follow_symlinks: bool = True) -> bytes:
    """The contents of the regular file at *path*, at most *limit* bytes.

    Symbolic links are followed (admins link server.cert to where their
    tools keep it); what they point at must be a regular file.  With
    *follow_symlinks* false a link is refused as kind ``"symlink"`` (the
    store reads what it is about to replace that way); *dir_fd* makes
    *path* relative to an open folder, as :func:`os.open` does.

    Raises:
        FileNotFoundError, PermissionError, ...: as :func:`open` would.
        NotRegularFile: a folder, device, FIFO or socket (refused at once,
            a FIFO never blocks).
        FileTooLarge: more than *limit* bytes.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd) if dir_fd is not None else os.open(name, flags)
    except IsADirectoryError:
        raise NotRegularFile(name, "directory") from None
    except OSError as exc:
        if not follow_symlinks and exc.errno == errno.ELOOP:
            raise NotRegularFile(name, "symlink") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(name, file_kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(name, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Replace the file at *path* with *data* as one step (temp file, fsync, rename).

    For the product's own files outside a MailRoot (the class folder of a
    classroom, its board state): a MailRoot is only ever written through
    :class:`xmailnb.mailroot.store.Store`.  The temp file has *mode* from the start,
    so a secret is never readable by others, not even for a moment.
    """
    # Writers only: tempfile (random, shutil, ...) is ~3 ms of every start-up.
    import tempfile

    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def user_folder(kind: Literal["data", "state"], environ: Mapping[str, str] | None = None) -> Path:
    """The per-user ``data`` or ``state`` folder of the product;
    ``XMAILNB_DATA_DIR`` / ``XMAILNB_STATE_DIR`` override them.

    >>> str(user_folder("state", {"XMAILNB_STATE_DIR": "/tmp/x"}))
    '/tmp/x'
    """
    env = os.environ if environ is None else environ
    forced = env.get(f"XMAILNB_{kind.upper()}_DIR")
    if forced:
        return Path(forced)
    # Only the sandbox and an internal error need it: keep start-up light.
    import platformdirs

    find = platformdirs.user_data_dir if kind == "data" else platformdirs.user_state_dir
    return Path(find("xmailnb", appauthor=False))


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of *data*, for manifests and audit logs."""
    return hashlib.sha256(data).hexdigest()


def sha256_fingerprint(data: bytes) -> str:
    """SHA-256 of *data* as ``openssl x509 -fingerprint`` shows it: upper-case
    hex pairs joined by colons.

    >>> sha256_fingerprint(b"")[:11]
    'E3:B0:C4:42'
    """
    return hashlib.sha256(data).digest().hex(":").upper()
