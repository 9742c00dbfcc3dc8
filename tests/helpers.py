"""Shared helpers for command-line and diagnosis tests."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

import pki
from xmailnb.cli import main

#: Command-line talk: an option (``--chain``) or a command (``xmailnb install``).
#: The page names its own controls instead (issue 13); certificate names such
#: as "xmailnb Practice Root CA" are not commands.
CLI_TALK = re.compile(r"--[a-z]|\bxmailnb\s+[a-z]")

CSR_ARGS = ["--country", "JP", "--state", "Tokyo", "--locality", "Shibuya-ku",
            "--org", "Example Co., Ltd.", "--cn", "mail.example.jp"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run(*argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    result = Result(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in result.err and "Traceback" not in result.out
    return result


def tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file below *root* (the archive and audit log included)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if name == ".xmailnb.lock":
                continue
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def sign_csr_file(ca: pki.Issued, csr_path: Path, **kw) -> pki.Issued:
    """Issue a certificate for the CSR at *csr_path*, like a CA would."""
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.DNSName)
    cn = csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    return ca.sign(cn, sans=kw.pop("sans", names), public_key=csr.public_key(), **kw)


def interrupt(proc, timeout: float = 30) -> None:
    """Stop a server process as Ctrl-C would; kill it if it does not exit."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
