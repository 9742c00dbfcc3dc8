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


#: Held to ``mypy --strict`` besides the core: the ways in that are Jupyter by nature.
STRICT_PACKAGES = (*CORE_PACKAGES, "classroom", "notebook", "ui", "dashboard")


@pytest.mark.slow
def test_core_and_views_are_strictly_typed():
    targets = [str(p) for p in PACKAGE.glob("*.py")] + [str(PACKAGE / pkg) for pkg in STRICT_PACKAGES]
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
                             "--no-error-summary", *targets], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_unused_or_undefined_names():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F,E9,B", "--quiet",
                             str(ROOT / "xmailnb"), str(ROOT / "tests")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _unused_loggers(source: str) -> list[str]:
    """Module-level ``name = logging.getLogger(...)`` whose *name* is never read."""
    tree = ast.parse(source)
    made = [target.id for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "getLogger"
            for target in node.targets if isinstance(target, ast.Name)]
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return [name for name in made if name not in read]


def test_no_module_makes_a_logger_it_never_uses():
    assert _unused_loggers("import logging\nlog = logging.getLogger(__name__)\n") == ["log"]
    assert _unused_loggers("import logging\nlog = logging.getLogger(__name__)\nlog.info('x')\n") == []
    unused = {str(p.relative_to(ROOT)): names for p in sorted(PACKAGE.rglob("*.py"))
              if (names := _unused_loggers(p.read_text(encoding="utf-8")))}
    assert unused == {}


def _private_imports(path: Path) -> list[str]:
    """Imports of another project's private modules or names (``x._y``,
    ``from x import _y``) and any use of ``unittest.mock``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "xmailnb":
                continue
            if module == "unittest.mock" or (module == "unittest" and "mock" in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} unittest.mock")
            elif any(part.startswith("_") and not part.startswith("__") for part in parts[1:]):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}")
            elif any(name.startswith("_") and not name.startswith("__") for name in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}: {', '.join(names)}")
    return found


def test_no_private_import_of_another_project_and_no_mock_in_the_package():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _private_imports(path)]
    assert found == []


@pytest.mark.parametrize("source, expected", [
    ("from jupyterhub._xsrf_utils import check_xsrf_cookie", ["m.py:1 jupyterhub._xsrf_utils"]),
    ("import jupyterhub._xsrf_utils", ["m.py:1 jupyterhub._xsrf_utils"]),
    ("from jupyterhub.services.auth import _ExpiringDict", ["m.py:1 jupyterhub.services.auth: _ExpiringDict"]),
    ("from unittest import mock", ["m.py:1 unittest.mock"]),
    ("import unittest.mock", ["m.py:1 unittest.mock"]),
    ("from jupyterhub.services.auth import HubOAuth\nfrom xmailnb._x import y\nimport __future__", []),
])
def test_the_private_import_check_can_fail(tmp_path, monkeypatch, source, expected):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "m.py").write_text(source, encoding="utf-8")
    assert _private_imports(tmp_path / "m.py") == expected
