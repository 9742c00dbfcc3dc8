import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never touch the real user's sandbox or environment from a test."""
    data = tmp_path_factory.mktemp("xmailnb-data")
    monkeypatch.setenv("XMAILNB_DATA_DIR", str(data))
    monkeypatch.delenv("MAIL_ROOT", raising=False)
    monkeypatch.delenv("XMAILNB_LANG", raising=False)
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    yield
