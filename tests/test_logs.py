"""federation.logs: a caller's text cannot forge a log line or reach the terminal as control codes."""

from __future__ import annotations

import logging

from federation.logs import InertFormatter, inert


def test_newlines_and_escape_codes_are_written_as_escapes() -> None:
    assert inert("run-1\n2026-12-02 INFO forged: allowed\x1b[2J") == "run-1\\n2026-12-02 INFO forged: allowed\\x1b[2J"
    assert inert("plain text, ünïcode") == "plain text, ünïcode"


def test_a_formatted_record_stays_on_one_line_but_a_traceback_keeps_its_lines() -> None:
    formatter = InertFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("node", logging.INFO, __file__, 1, "%s refused: %s", ("Propose", "bad\nINFO fake"), None)
    assert formatter.format(record) == "INFO Propose refused: bad\\nINFO fake"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.LogRecord("node", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(failed).splitlines()
    assert lines[0] == "ERROR failed" and lines[-1] == "ValueError: boom"
