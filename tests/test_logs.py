"""The log file: where an internal error leaves its traceback, without secrets."""

from __future__ import annotations

import logging

from xmailnb import logs


def test_unexpected_error_goes_to_the_state_folder_with_traceback_and_no_secrets():
    log = logging.getLogger("xmailnb.test")
    try:
        raise RuntimeError("boom with token=abcdef0123456789 and -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
    except RuntimeError as exc:
        path = logs.log_unexpected(log, "testing", exc)
    assert path == logs.log_path() and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "Traceback" in text and "unexpected error while testing" in text
    assert "abcdef0123456789" not in text and "MIIB" not in text
    assert path.parent.stat().st_mode & 0o077 == 0
