"""Command-line start-up, in-process diagnosis, scale, key generation."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common import Figure, full_mailroot, interleave, timed, timed_process

BARE = """
import sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
mr = sys.argv[1]
with open(mr + "/server.key", "rb") as fh:
    key = serialization.load_pem_private_key(fh.read(), password=None)
with open(mr + "/server.cert", "rb") as fh:
    certs = x509.load_pem_x509_certificates(fh.read())
with open(mr + "/server.tab", "rb") as fh:
    tab = fh.read()
"""


def cli_startup(work: Path, runs: int) -> Figure:
    import compileall

    # As installed by pip, the package's bytecode is compiled (cryptography's
    # already is); a development checkout under PYTHONDONTWRITEBYTECODE=1
    # would otherwise recompile every module on every start.
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "xmailnb"), quiet=1)
    mailroot = full_mailroot(work / "cli")
    script = work / "bare.py"
    script.write_text(BARE)
    exe = Path(sys.executable)
    cli = exe.with_name("xmailnb")
    env = {"PATH": str(exe.parent) + ":/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)}
    base, value = interleave(timed_process([str(exe), str(script), str(mailroot)], env),
                             timed_process([str(cli), "diagnose", "--json", "--mailroot", str(mailroot)], env),
                             runs)
    return Figure("2 cli-startup", "xmailnb diagnose --json (whole process) vs bare cryptography script", "s",
                  base, value, 1.3)


def _load_files(mailroot: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    serialization.load_pem_private_key((mailroot / "server.key").read_bytes(), password=None)
    x509.load_pem_x509_certificates((mailroot / "server.cert").read_bytes())
    x509.load_pem_x509_certificates((mailroot / "certs.pem").read_bytes())
    (mailroot / "server.tab").read_bytes()


def diagnosis_in_process(work: Path, runs: int) -> Figure:
    from xmailnb.checks.diagnose import diagnose
    from xmailnb.mailroot.layout import MailRoot

    mailroot = full_mailroot(work / "inproc")
    mr = MailRoot(mailroot)
    base, value = interleave(timed(lambda: _load_files(mailroot)), timed(lambda: diagnose(mr)), runs, warmup=2)
    return Figure("3 diagnosis-in-process", "all file checks vs loading the same files with cryptography", "s",
                  base, value, 3.0)


def scale(work: Path, runs: int) -> list[Figure]:
    from xmailnb.checks.diagnose import diagnose
    from xmailnb.mailroot.layout import MailRoot
    from xmailnb.mailroot.store import Store

    # Small: one CA and one page of history (the dashboard shows the newest
    # HISTORY_SHOWN); large: a public-bundle-sized certs.pem and 500 entries.
    from xmailnb.ui.install import HISTORY_SHOWN

    small = MailRoot(full_mailroot(work / "small", ca_bundle=1, archive_entries=HISTORY_SHOWN))
    large = MailRoot(full_mailroot(work / "large", ca_bundle=150, archive_entries=500))
    diag = interleave(timed(lambda: diagnose(small)), timed(lambda: diagnose(large)), runs, warmup=2)
    hist = interleave(timed(lambda: Store(small).history(limit=HISTORY_SHOWN, bookkeeping=False)),
                      timed(lambda: Store(large).history(limit=HISTORY_SHOWN, bookkeeping=False)), runs, warmup=2)
    full = interleave(timed(lambda: Store(small).history()), timed(lambda: Store(large).history()), runs, warmup=1)
    return [
        Figure("6a scale-diagnosis", "certs.pem with 150 CAs + 500 archive entries vs 1 CA + 50 entries", "s",
               *diag, 2.0),
        Figure("6b scale-history", "history as the dashboard lists it (newest 50), 500 vs 50 entries", "s",
               *hist, 2.0),
        Figure("6c history-full-listing", "every entry (xmailnb history --json), 500 vs 50 entries", "s",
               *full, None, kind="report"),
    ]


def keygen(runs: int) -> list[Figure]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from xmailnb.pki.keys import KeySpec, generate_private_key

    figures = []
    for label, spec, direct, n in (
        ("rsa-2048", KeySpec("rsa", 2048), lambda: rsa.generate_private_key(65537, 2048), runs * 3),
        ("rsa-3072", KeySpec("rsa", 3072), lambda: rsa.generate_private_key(65537, 3072), max(3, runs // 2)),
        ("rsa-4096", KeySpec("rsa", 4096), lambda: rsa.generate_private_key(65537, 4096), max(3, runs // 3)),
        ("p-256", KeySpec("ec", curve="P-256"), lambda: ec.generate_private_key(ec.SECP256R1()), runs * 10),
    ):
        base, value = interleave(timed(direct), timed(lambda spec=spec: generate_private_key(spec)), n)
        figures.append(Figure(f"keygen-{label}", "through the product vs cryptography directly", "s",
                              base, value, None, kind="report",
                              notes="RSA generation time varies widely from run to run by nature"))
    return figures


def run_all(work: Path, quick: bool) -> list[Figure]:
    runs = 7 if quick else 21
    figures = [cli_startup(work, runs), diagnosis_in_process(work, runs * 3)]
    figures += scale(work, runs * 3)
    figures += keygen(5 if quick else 9)
    return figures


if __name__ == "__main__":  # pragma: no cover
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        from common import report
        sys.exit(report(run_all(Path(tmp), "--quick" in sys.argv), Path(tmp) / "core.json"))
