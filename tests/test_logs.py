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


def test_one_secret_filter_for_the_cli_and_the_dashboard():
    secret = "s3cret-Value-0123456789"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "GET /?a=1&page-key=%s (%s) Authorization: Bearer %s",
                               (secret, "127.0.0.1", secret), None)
    logs.SecretFilter(params=("page-key",)).filter(record)
    assert record.getMessage() == "GET /?a=1&page-key=[hidden] (127.0.0.1) Authorization: Bearer [hidden]"
    # Without the extra name, that parameter is an ordinary one.
    assert logs.SecretFilter().scrub("page-key=v&token=t") == "page-key=v&token=[hidden]"
