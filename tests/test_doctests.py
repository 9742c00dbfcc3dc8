"""The examples in the core's docstrings run, and say what the code does."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import xmailnb


def _core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(xmailnb.__path__, "xmailnb."):
        # ui/ is the widget layer (its examples would need a kernel); the
        # classroom needs JupyterHub: both are outside the core.
        if info.name.startswith(("xmailnb.ui", "xmailnb.classroom")) or info.name == "xmailnb.__main__":
            continue
        names.append(info.name)
    return names


def _with_examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder().find(module, name) if t.examples]


MODULES = [name for name in _core_modules() if _with_examples(name)]


def test_the_core_has_examples():
    assert len(MODULES) >= 5, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _with_examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see the output above)"
