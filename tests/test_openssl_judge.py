"""Real OpenSSL as the judge.

After an install, a TLS server built with Python's ``ssl`` loads
server.cert/server.key with ``load_cert_chain`` (the same OpenSSL call
XMail 1.27 uses: SSL_CTX_use_certificate_chain_file) and ``openssl
s_client`` must verify the served chain for the host name against the root.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

import pki
from helpers import run, sandbox_copy

pytestmark = [pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed"),
              pytest.mark.slow]  # openssl subprocesses


class TlsServer:
    """Serves the MailRoot's files on 127.0.0.1, one handshake per connection."""

    def __init__(self, mailroot: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(mailroot / "server.cert"), str(mailroot / "server.key"))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.sock.close()


def s_client_verifies(port: int, hostname: str, cafile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", hostname,
         "-verify_return_error", "-verify_hostname", hostname, "-CAfile", str(cafile), "-brief"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)


def _pem_shuffled(h):
    return {"cert": h.intermediate.pem + h.root.pem + h.leaf.pem}


def _pem_separate(h):
    return {"cert": h.leaf.pem, "chain": h.intermediate.pem}


def _der_separate(h):
    return {"cert": h.leaf.der, "chain": h.intermediate.der}


def _p7b(h):
    return {"cert": pkcs7.serialize_certificates([h.root.cert, h.intermediate.cert, h.leaf.cert],
                                                 serialization.Encoding.DER)}


def _p12(h):
    return {"cert": h.p12(b"secret"), "passphrase": b"secret"}


FORMATS = {"pem-shuffled": _pem_shuffled, "pem-separate": _pem_separate, "der-separate": _der_separate,
           "p7b": _p7b, "p12": _p12}


@pytest.fixture(scope="module", params=["rsa", "ec"])
def hierarchy(request):
    return pki.hierarchy(sans=["mail.example.jp", "smtp.example.jp"], key_kind=request.param)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_installed_chain_verifies_with_openssl(hierarchy, fmt, tmp_path):
    mailroot = tmp_path / "MailRoot"
    sandbox_copy(mailroot)
    files = FORMATS[fmt](hierarchy)
    argv = ["install", "--mailroot", str(mailroot)]
    for opt in ("cert", "chain"):
        if opt in files:
            path = tmp_path / f"{opt}.in"
            path.write_bytes(files[opt])
            argv += [f"--{opt}", str(path)]
    if "passphrase" in files:
        (tmp_path / "pass").write_bytes(files["passphrase"] + b"\n")
        argv += ["--passphrase-file", str(tmp_path / "pass")]
    else:
        (tmp_path / "key.in").write_bytes(hierarchy.leaf.key_pem())
        argv += ["--key", str(tmp_path / "key.in")]
    r = run(*argv)
    assert r.code == 0, r.err
    cafile = tmp_path / "root.pem"
    cafile.write_bytes(hierarchy.root.pem)
    server = TlsServer(mailroot)
    try:
        for name in ("mail.example.jp", "smtp.example.jp"):
            result = s_client_verifies(server.port, name, cafile)
            assert result.returncode == 0, result.stderr
            assert "Verification: OK" in result.stderr + result.stdout
        wrong = s_client_verifies(server.port, "other.example.com", cafile)
        assert wrong.returncode != 0
    finally:
        server.close()
