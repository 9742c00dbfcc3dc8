"""Project rules a reviewer would otherwise check by hand."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xmailnb"
#: The core: the base modules and the packages of the flow.  The ways in that
#: are Jupyter by nature (dashboard/, classroom/, ui/) are left out.
CORE_PACKAGES = ("pki", "mailroot", "checks", "flows", "cli")
CORE = [*PACKAGE.glob("*.py"), *(p for pkg in CORE_PACKAGES for p in (PACKAGE / pkg).rglob("*.py"))]
# Packages held to mypy --strict: the core and the views over it.
STRICT_PACKAGES = (*CORE_PACKAGES, "ui", "dashboard")
HEAVY = ("ipywidgets", "IPython", "voila", "jupyter", "jupyterlab", "notebook", "ipykernel", "traitlets")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_widgets_or_jupyter():
    offenders = {p.name: sorted(_imports(p) & set(HEAVY)) for p in CORE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_command_line_loads_no_jupyter(tmp_path):
    code = ("import sys, io; from xmailnb.cli.main import main; "
            "main(['diagnose', '--json'], stdout=io.StringIO(), stderr=io.StringIO()); "
            "print(' '.join(sorted(sys.modules)))")
    env = {"XMAILNB_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    loaded = {m.split(".")[0] for m in out.stdout.split()}
    assert loaded & set(HEAVY) == set()


@pytest.mark.slow
def test_type_annotations_check():
    result = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
                             str(ROOT / "xmailnb")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_core_and_views_are_strictly_typed():
    targets = [str(p) for p in PACKAGE.glob("*.py")] + [str(PACKAGE / pkg) for pkg in STRICT_PACKAGES]
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
                             "--no-error-summary", *targets], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_unused_or_undefined_names():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F,E9", "--quiet",
                             str(ROOT / "xmailnb"), str(ROOT / "tests")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
