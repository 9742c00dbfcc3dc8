"""What every test shares: the clock, an isolated user, a copied sandbox
MailRoot, and the markers (``slow``, ``browser``) of the quick loop
(``make test-quick``).  Plain helpers (a free port, a tree hash) are in
tests/helpers.py."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import sandbox_copy  # noqa: E402
from xmailnb import clock  # noqa: E402
from xmailnb.mailroot.layout import MailRoot  # noqa: E402

# The one clock of the tests is the product's (xmailnb.clock): certificates
# are minted relative to it (tests/pki.py) and the product judges them by it,
# so no test names a calendar date, and a run under faketime moves both.
# A test that needs time to stand still takes the `frozen_now` fixture.


@pytest.fixture
def frozen_now():
    """The product's clock frozen at the test's start (tests/pki.py follows it)."""
    at = clock.now().replace(microsecond=0)
    with clock.frozen(at):
        yield at


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never touch the real user's sandbox or environment from a test."""
    data = tmp_path_factory.mktemp("xmailnb-data")
    monkeypatch.setenv("XMAILNB_DATA_DIR", str(data))
    monkeypatch.setenv("XMAILNB_STATE_DIR", str(data / "state"))
    monkeypatch.delenv("MAIL_ROOT", raising=False)
    monkeypatch.delenv("XMAILNB_LANG", raising=False)
    monkeypatch.delenv("XMAILNB_LOG", raising=False)
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    yield


@pytest.fixture
def mailroot(tmp_path) -> Path:
    """A copy of the stock practice sandbox, somewhere else (``tmp_path/MailRoot``)."""
    return sandbox_copy(tmp_path / "MailRoot")


@pytest.fixture
def mr(mailroot) -> MailRoot:
    """:func:`mailroot` as a :class:`MailRoot`."""
    return MailRoot(mailroot)
