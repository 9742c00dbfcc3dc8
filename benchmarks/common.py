"""Shared machinery: timing with same-run baselines, fixtures, reporting.

Every figure is a ratio against a baseline measured in the same run, on the
same machine, interleaved with the target so that noise hits both alike.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test PKI factory makes our certificates


@dataclass
class Figure:
    name: str
    what: str
    unit: str
    baseline: list[float]
    value: list[float]
    target: float | None  # maximum ratio (or maximum absolute value when kind == "absolute")
    kind: str = "ratio"  # "ratio", "absolute", or "report" (no target)
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline) if self.baseline else float("nan")

    @property
    def median(self) -> float:
        # nothing measured (a phase that failed): not a number, and not met
        return statistics.median(self.value) if self.value else float("nan")

    @property
    def ratio(self) -> float:
        return self.median / self.baseline_median if self.baseline else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        return (min(self.value), max(self.value)) if self.value else (float("nan"), float("nan"))

    @property
    def met(self) -> bool | None:
        if self.target is None or self.kind == "report":
            return None
        measured = self.ratio if self.kind == "ratio" else self.median
        return measured <= self.target

    def to_json(self) -> dict:
        doc = asdict(self)
        doc.update(baseline_median=self.baseline_median, median=self.median, ratio=self.ratio,
                   spread=list(self.spread), runs=len(self.value), met=self.met)
        return doc


def interleave(baseline: Callable[[], float], target: Callable[[], float], runs: int,
               warmup: int = 1) -> tuple[list[float], list[float]]:
    """Run baseline and target alternately; each callable returns seconds."""
    for _ in range(warmup):
        baseline()
        target()
    b, t = [], []
    for i in range(runs):
        # Alternate which goes first so drift does not favour either.
        if i % 2:
            t.append(target())
            b.append(baseline())
        else:
            b.append(baseline())
            t.append(target())
    return b, t


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


def timed_process(argv: list[str], env: dict[str, str] | None = None) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        return time.perf_counter() - start
    return run


def full_mailroot(base: Path, *, ca_bundle: int = 1, archive_entries: int = 0) -> Path:
    """A MailRoot with leaf + two intermediates installed and certs.pem."""
    import pki

    from xmailnb.flows import actions
    from xmailnb.mailroot.layout import SANDBOX_MARKER, MailRoot
    from xmailnb.mailroot.sandbox import create_sandbox
    from xmailnb.mailroot.store import Store

    mr = create_sandbox(base / "MailRoot")
    # Measured as a live MailRoot: without the practice-sandbox marker.
    mr.path.joinpath(*SANDBOX_MARKER.split("/")).unlink()
    mr = MailRoot(mr.path)
    root = pki.root()
    inter1 = root.sign("Bench Intermediate 1", ca=True)
    inter2 = inter1.sign("Bench Intermediate 2", ca=True)
    leaf = inter2.sign("mail.example.jp", sans=["mail.example.jp", "example.jp"])
    plan = actions.plan_install(mr, actions.Upload(leaf.pem + inter2.pem + inter1.pem, "bench.pem"),
                                key=actions.Upload(leaf.key_pem(), "bench.key"))
    actions.apply_install(mr, plan)
    cas = [root.pem] + [pki.root(f"Bench CA {i}").pem for i in range(ca_bundle - 1)]
    mr.certs_pem.write_bytes(b"".join(cas))
    store = Store(mr)
    for i in range(archive_entries):
        store.apply("settings", {mr.rel_server_tab: mr.server_tab.read_bytes() + f"# {i}\n".encode()})
    return mr.path


def machine() -> dict:
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        import cryptography
        info["cryptography"] = cryptography.__version__
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            info["memory"] = fh.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return info


def report(figures: list[Figure], out: Path) -> int:
    width = max(len(f.name) for f in figures)
    print()
    print(f"{'figure':<{width}}  {'baseline':>10}  {'median':>10}  {'ratio':>7}  {'target':>8}  {'spread':>21}  result")
    for f in figures:
        scale = 1000.0 if f.unit == "s" else 1.0
        unit = "ms" if f.unit == "s" else f.unit
        base = f"{f.baseline_median * scale:.1f}{unit}" if f.baseline else "-"
        med = f"{f.median * scale:.1f}{unit}"
        ratio = f"{f.ratio:.2f}" if f.baseline else "-"
        if f.kind == "ratio" and f.target is not None:
            target = f"<= {f.target:.1f}x"
        elif f.kind == "absolute" and f.target is not None:
            target = f"<= {f.target * scale:.0f}{unit}"
        else:
            target = "report"
        lo, hi = f.spread
        spread = f"{lo * scale:.1f}..{hi * scale:.1f}{unit}"
        verdict = {True: "MET", False: "MISSED", None: "-"}[f.met]
        print(f"{f.name:<{width}}  {base:>10}  {med:>10}  {ratio:>7}  {target:>8}  {spread:>21}  {verdict}")
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
           "figures": [f.to_json() for f in figures]}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nJSON: {out}")
    return 0 if all(f.met is not False for f in figures) else 1


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
