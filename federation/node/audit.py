"""The node's audit log: append-only, hash-chained JSON lines, and its verification.

Every request and decision is one entry: time, caller, RPC, purpose, run,
round, decision, reasons, rows touched and bytes released. Each entry holds
the hash of the one before it and its own hash over both, and a separate
head file holds the last sequence number and hash, so an edited, deleted,
inserted or reordered entry, or a cut-off tail, breaks the chain at a
place `verify` names. (Whoever can rewrite the whole file and the head can
forge a new chain; anchoring the head elsewhere is the defence for that.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import ConfigError

GENESIS = "0" * 64
LOG_NAME = "audit.jsonl"
HEAD_NAME = "audit.head"


@dataclass
class AuditEntry:
    """One request as the node saw it; `decision` is allow, deny or error."""

    caller: str
    rpc: str
    purpose: str = ""
    run_id: str = ""
    round: int = 0
    decision: str = "allow"
    reasons: list[str] = field(default_factory=list)
    rows: int = 0
    bytes_released: int = 0


def _digest(previous: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


class AuditLog:
    """Appends entries to `<dir>/audit.jsonl`; safe across threads of one node process."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LOG_NAME
        self.head_path = directory / HEAD_NAME
        self._lock = threading.Lock()
        self._seq, self._last = self._read_head()

    def _read_head(self) -> tuple[int, str]:
        """Where the chain ends; a log one entry ahead of its head (a crash between the two writes) is adopted."""
        head = _parse_head(self.head_path)
        last = _last_entry(self.path)
        if head is None and last is None:
            return 0, GENESIS
        if head is not None and last is not None and (last.get("seq"), last.get("hash")) == head:
            return head
        previous = head or (0, GENESIS)
        if last is not None and last.get("seq") == previous[0] + 1 and last.get("prev") == previous[1]:
            if last.get("hash") == _digest(previous[1], {k: v for k, v in last.items() if k != "hash"}):
                return int(last["seq"]), str(last["hash"])
        raise ConfigError(
            str(self.path), ["the audit log and its head disagree: run `federation audit verify` before this node appends again"]
        )

    def append(self, entry: AuditEntry) -> dict[str, Any]:
        with self._lock:
            body = {"seq": self._seq + 1, "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **asdict(entry)}
            body["prev"] = self._last
            body["hash"] = _digest(self._last, {k: v for k, v in body.items() if k != "hash"})
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(body, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._seq, self._last = body["seq"], body["hash"]
            tmp = self.head_path.with_suffix(".tmp")
            tmp.write_text(f"{self._seq} {self._last}\n")
            tmp.replace(self.head_path)
            return body


def _parse_head(path: Path) -> tuple[int, str] | None:
    if not path.is_file():
        return None
    parts = path.read_text().split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
        raise ConfigError(str(path), ["the audit head is unreadable: run `federation audit verify`"])
    return int(parts[0]), parts[1]


def _last_entry(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    last = None
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                last = line
    if last is None:
        return None
    try:
        body = json.loads(last)
    except json.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def read_entries(directory: Path) -> Iterator[dict[str, Any]]:
    path = directory / LOG_NAME
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


@dataclass(frozen=True)
class Verification:
    entries: int
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(directory: Path) -> Verification:
    """Walk the chain; report the first place where it breaks, and a mismatched head."""
    path = directory / LOG_NAME
    if not path.is_file():
        return Verification(0, (f"no audit log at {path}",))
    previous, expected_seq, count = GENESIS, 1, 0
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                body = json.loads(line)
            except json.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                return Verification(count, (f"line {line_number}: not a JSON entry (edited or corrupted)",))
            count += 1
            seq = body.get("seq")
            if body.get("prev") != previous:
                what = "deleted, inserted or reordered" if seq != expected_seq else "edited"
                return Verification(
                    count, (f"line {line_number} (seq {seq}): does not follow the entry before it; an entry was {what}",)
                )
            if body.get("hash") != _digest(previous, {k: v for k, v in body.items() if k != "hash"}):
                return Verification(
                    count, (f"line {line_number} (seq {seq}): its content does not match its hash; the entry was edited",)
                )
            if seq != expected_seq:
                return Verification(count, (f"line {line_number}: sequence number {seq} where {expected_seq} was expected",))
            previous, expected_seq = body["hash"], expected_seq + 1
    try:
        head = _parse_head(directory / HEAD_NAME)
    except ConfigError:
        return Verification(count, (f"{HEAD_NAME} is unreadable (edited or corrupted)",))
    last_seq = expected_seq - 1
    if head is None:
        return Verification(count, (f"{HEAD_NAME} is missing, so a cut-off end of the log would go unnoticed",) if count else ())
    if head[0] > last_seq:
        return Verification(
            count, (f"the log ends at seq {last_seq} but the head records seq {head[0]}: entries were cut off the end",)
        )
    if head[0] < last_seq:
        return Verification(
            count, (f"the log goes on to seq {last_seq} past the head's seq {head[0]}: entries were appended outside the node",)
        )
    if head[1] != previous:
        return Verification(count, (f"seq {last_seq}: the last entry does not match the head's hash; it was edited",))
    return Verification(count, ())
