"""Approval tests: the texts a person reads, kept as reviewed files.

Each test renders a fixed scenario (the notice, a command's output, the
page's text for a step) and compares it with its approved file under
``__snapshots__/`` beside the test module; a change to the text fails until
the file is updated in the same commit, so a reviewer reads the exact new
text in the diff.  Regenerate every approved file in one command::

    .venv/bin/python -m pytest -p no:cacheprovider tests/approvals --snapshot-update

(``make approvals`` runs the same.)  Files of tests that no longer exist
are removed by that run too.

Determinism: the product's clock (:mod:`xmailnb.clock`) is frozen at
midnight UTC of the day the suite runs and the local time zone is UTC;
certificates are made from that clock, and :class:`scrub.Scrubber` turns
times into offsets from it and random values (fingerprints, serials,
temporary paths, ports, key ids) into placeholders.  Before comparing,
every text goes through :func:`guard.unreadable`.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

sys.path.insert(0, str(Path(__file__).parent))

from guard import unreadable  # noqa: E402
from scrub import Scrubber  # noqa: E402
from xmailnb import clock  # noqa: E402


class ApprovedText(SingleFileSnapshotExtension):
    """One plain UTF-8 text file per approved text (``<test>[<case>].txt``)."""

    _write_mode = WriteMode.TEXT
    file_extension = "txt"


@pytest.fixture(autouse=True)
def frozen_midnight():
    """The product's clock at midnight UTC today (so a day shown is always
    the same number of days away), local time UTC."""
    # Midnight, not "now": a certificate valid from an hour before the clock
    # is still valid for the real clock a TLS handshake checks.
    zone = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        with clock.frozen(today) as at:
            yield at
    finally:
        if zone is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = zone
        time.tzset()


@pytest.fixture
def scrub(frozen_midnight, tmp_path) -> Scrubber:
    s = Scrubber(frozen_midnight)
    s.register(tmp_path, "<tmp>")
    s.register(os.environ["XMAILNB_DATA_DIR"], "<data>")
    return s


@pytest.fixture
def approve(snapshot, scrub) -> Callable[..., None]:
    """``approve(text)``: *text* is readable and, scrubbed, equals its approved file.

    ``approve(text, "ja")`` names the file's case when a test approves several.
    """
    approved = snapshot.use_extension(ApprovedText)

    def check(text: str, name: str | None = None) -> None:
        problems = unreadable(text)
        assert not problems, "\n".join(problems)
        expected = approved(name=name) if name else approved
        assert scrub(text) == expected
    return check
