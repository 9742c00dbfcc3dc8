"""The names the notebooks use, exported by ``xmailnb`` on first use (PEP 562):
``import xmailnb`` alone loads none of the core, so the command line stays fast."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return {m for m in out.stdout.split() if m.startswith("xmailnb")}


def test_import_xmailnb_loads_nothing_else():
    assert _loaded_after("import xmailnb") == {"xmailnb"}


def test_an_export_loads_its_module_on_first_use():
    loaded = _loaded_after("import xmailnb; xmailnb.require_steps")
    assert "xmailnb.notebook.guide" in loaded and "xmailnb.notebook.handchecks" not in loaded


def test_every_export_is_the_function_it_names():
    import xmailnb
    from xmailnb.notebook import guide, handchecks
    from xmailnb.checks import progress

    assert xmailnb.open_mailroot is guide.open_mailroot
    assert xmailnb.require_steps is guide.require_steps
    assert xmailnb.progress_overview is guide.progress_overview
    assert xmailnb.step_progress is progress.step_progress
    assert xmailnb.hand_check is handchecks.hand_check
    assert set(xmailnb.__all__) <= set(dir(xmailnb))


def test_a_name_that_is_not_exported_is_an_attribute_error():
    import xmailnb

    with pytest.raises(AttributeError, match="hand_chek"):
        xmailnb.hand_chek  # noqa: B018
    assert not hasattr(xmailnb, "hand_chek")
