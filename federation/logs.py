"""Log lines that untrusted text cannot forge: control characters in messages are escaped.

A caller chooses run ids, purposes, feature names and more; a newline or a
terminal escape code in any of them must not start a fake line in a node's
log or repaint an operator's terminal. Tracebacks keep their lines.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def inert(text: str) -> str:
    """`text` with every non-printable character written as its escape (`\\n`, `\\x1b`, ...)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class InertFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = inert(record.message)
        return super().formatMessage(record)


def configure(level: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(InertFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
