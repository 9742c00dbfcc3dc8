"""environment.yml and pyproject.toml must ask for the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(requirement: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert m, requirement
    return re.sub(r"[-_.]+", "-", m.group(1)).lower(), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = dict(_norm(r) for r in pyproject["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    have = dict(_norm(d) for d in conda if not d.startswith(("python", "pip")))
    assert have == wanted
    assert "conda-forge" in env["channels"]
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-e ." in pip_section  # installs the package itself


def test_console_script_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["xmailnb"] == "xmailnb.cli.main:main"


def test_editable_install_is_a_plain_path_without_setuptools_warnings():
    """`make setup` installs in setuptools' default editable mode (the
    deprecated "compat" mode printed a warning on the first `make run`), and
    the flat layout still gives a plain path entry, not an import hook."""
    import sysconfig

    root = ROOT
    assert "editable_mode" not in (root / "Makefile").read_text()
    purelib = Path(sysconfig.get_paths()["purelib"])
    pth = sorted(purelib.glob("__editable__.xmailnb-*.pth"))
    if not pth:
        pytest.skip("xmailnb is not installed in editable mode here")
    assert pth[0].read_text().split() == [str(root)]
    assert not list(purelib.glob("__editable___xmailnb*finder.py"))


def test_every_data_file_of_the_package_is_in_a_wheel():
    """A file the package reads at run time (the workbook's stylesheet, the
    page script, the catalogs) is named by package-data, or a wheel lacks it."""
    import fnmatch
    import subprocess

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["xmailnb"]
    tracked = subprocess.run(["git", "ls-files", "xmailnb"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    data = [p.removeprefix("xmailnb/") for p in tracked if not p.endswith(".py")]
    assert "ui/workbook.css" in data
    assert [p for p in data if not any(fnmatch.fnmatch(p, pat) for pat in patterns)] == []
