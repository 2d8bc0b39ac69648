"""The node's audit log: append-only, hash-chained, signed JSON lines, written ahead of every release.

Every request and decision is one entry: time, caller, RPC, purpose, run,
round, decision, reasons, rows touched and bytes released. Each entry holds
the hash of the one before it, its own hash over both, and the node's ECDSA
signature of that hash made with its certificate key; a head file records
the last sequence number and hash. What this detects, and for whom, is in
`audit_verify`'s docstring and the README.

A crash is not a forgery: `kill -9` between an entry and its head leaves a
signed entry past the head, which is adopted at the next start; a write cut
short by a crash or a full disk leaves a torn last line, and lines past the
head without this node's signature were not written by it: both are moved
to `audit.quarantine/` and the move is itself an entry. An entry is durable
(fsync) before its reply leaves, and a node that cannot write its log
refuses instead of releasing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from federation.errors import ConfigError, NodeUnavailable
from federation.node.audit_chain import (
    CERTS_DIR,
    CRASH,
    GENESIS,
    HEAD_NAME,
    LOG_NAME,
    QUARANTINE_DIR,
    RECOVERY_RPC,
    TAMPERED,
    Head,
    Line,
    digest,
    head_message,
    key_id,
    parse_head,
    read_entries,
    signature_valid,
    signed_message,
    split_log,
)
from federation.node.audit_verify import Verification, verify
from federation.trust.certificates import Credentials

__all__ = ["GENESIS", "HEAD_NAME", "LOG_NAME", "AuditEntry", "AuditLog", "Receipt", "Verification", "read_entries", "verify"]

log = logging.getLogger(__name__)

MAX_TEXT = 256  # characters of one field kept verbatim
MAX_REASONS = 16


class AuditUnavailable(NodeUnavailable):
    """The log cannot be written, so the node releases nothing."""


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


def bounded(value: str, limit: int = MAX_TEXT) -> str:
    """A value short enough for one log line: a long one keeps its start, its length and a hash of all of it."""
    if len(value) <= limit:
        return value
    hashed = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:16]
    return f"{value[: limit - 48]}…[{len(value)} chars, sha256 {hashed}]"


def _bounded_body(entry: AuditEntry) -> dict[str, Any]:
    body = asdict(entry)
    for name in ("caller", "rpc", "purpose", "run_id", "decision"):
        body[name] = bounded(str(body[name]))
    reasons = [bounded(str(r), 2 * MAX_TEXT) for r in entry.reasons[:MAX_REASONS]]
    if len(entry.reasons) > MAX_REASONS:
        reasons.append(f"… and {len(entry.reasons) - MAX_REASONS} more reasons")
    body["reasons"] = reasons
    return body


@dataclass(frozen=True)
class Receipt:
    """A signed entry hash sent with a reply: whoever keeps it can later prove what the log held up to there."""

    seq: int
    hash: str
    key: str
    sig: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Receipt:
        raw = json.loads(text)
        return cls(int(raw["seq"]), str(raw["hash"]), str(raw["key"]), str(raw["sig"]))


class AuditLog:
    """Appends entries to `<dir>/audit.jsonl`; one writer per directory (the node's lock), safe across its threads."""

    def __init__(self, directory: Path, *, signer: Credentials | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / LOG_NAME
        self.head_path = directory / HEAD_NAME
        self._signer = signer
        self._certificate = x509.load_der_x509_certificate(signer.certificate) if signer is not None else None
        self._key = key_id(signer.certificate) if signer is not None else ""
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._store_certificate()
        self._seq, self._last, self._size = 0, GENESIS, 0
        self._last_sig: str | None = None  # the signature of the last entry, which a receipt repeats
        for note in self._recover():
            log.warning("audit log %s: %s", self.path, note)
            self.append(AuditEntry(caller="node", rpc=RECOVERY_RPC, decision="error", reasons=[note]))

    def _store_certificate(self) -> None:
        """Keep the signing certificate beside the log, so that `verify` can check entries without the node."""
        if self._certificate is None:
            return
        path = self.directory / CERTS_DIR / f"{self._key}.pem"
        if not path.is_file():
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(self._certificate.public_bytes(Encoding.PEM))

    # -- start-up ---------------------------------------------------------------------
    def _recover(self) -> list[str]:
        """Find the end of the chain; adopt this node's own signed entries past the head, quarantine the rest.

        Raises ConfigError when the log no longer holds the entry its head
        names: entries were cut or edited, which only `audit verify` should
        judge before anything is appended.
        """
        data = self.path.read_bytes() if self.path.is_file() else b""
        lines, torn = split_log(data)
        head = parse_head(self.head_path)
        if head is None and lines:
            raise ConfigError(str(self.head_path), ["the audit head is missing: run `federation audit verify`"])
        seq, last = (head.seq, head.hash) if head is not None else (0, GENESIS)
        named, past = _lines_after(lines, seq, last, self.path)
        if head is not None and named is not None and named.get("sig") and not self._head_is_ours(head.seq, head.hash, head):
            raise ConfigError(str(self.head_path), ["the audit head is not signed by this node: run `federation audit verify`"])
        adopted = 0
        for line in past:
            body = line.body
            if body is None or not self._own_next(body, seq, last):
                break
            seq, last, adopted = int(body["seq"]), str(body["hash"]), adopted + 1
        notes = []
        if adopted:
            notes.append(f"{CRASH} {adopted} entr{'y' if adopted == 1 else 'ies'} past the head, signed by this node, adopted")
        forged = past[adopted:]
        keep = forged[0].offset if forged else len(data) - len(torn)
        if forged:
            where = self._quarantine(data[keep : len(data) - len(torn)], "not-signed-by-this-node.jsonl")
            notes.append(
                f"{TAMPERED} {len(forged)} line(s) after seq {seq} carry no valid signature of this node's key: "
                f"written outside the node, moved to {where}"
            )
        if torn:
            where = self._quarantine(torn, "torn-tail.bin")
            notes.append(
                f"{CRASH} a torn last line of {len(torn)} bytes (a write cut short by a crash or a full disk), moved to {where}"
            )
        if keep < len(data):
            os.truncate(self.path, keep)
        self._seq, self._last, self._size = seq, last, keep
        if adopted:
            self._write_head()
        return notes

    def _head_is_ours(self, seq: int, entry_hash: str, head: Head) -> bool:
        if self._certificate is None:
            return True
        message = head_message(seq, entry_hash)
        return bool(head.key == self._key and signature_valid(self._certificate, entry_hash, head.sig, message=message))

    def _own_next(self, body: dict[str, Any], seq: int, last: str) -> bool:
        """Whether an entry past the head follows the chain and carries this node's signature (or the log is unsigned)."""
        if body.get("seq") != seq + 1 or body.get("prev") != last or body.get("hash") != digest(last, body):
            return False
        if self._certificate is None:
            return not body.get("sig")
        return body.get("key") == self._key and signature_valid(self._certificate, str(body["hash"]), body.get("sig"))

    def _quarantine(self, data: bytes, name: str) -> str:
        folder = self.directory / QUARANTINE_DIR
        folder.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}-{name}"
        path.write_bytes(data)
        return f"{QUARANTINE_DIR}/{path.name}"

    # -- appending --------------------------------------------------------------------
    def append(self, entry: AuditEntry) -> dict[str, Any]:
        """Write one entry durably (fsync) before returning; AuditUnavailable if it cannot be written."""
        with self._lock:
            if self._broken is not None:
                raise AuditUnavailable(f"this node cannot write its audit log ({self._broken}), so it releases nothing")
            body: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                **_bounded_body(entry),
                "prev": self._last,
                "key": self._key,
            }
            body["hash"] = digest(self._last, body)
            body["sig"] = self._sign(body["hash"])
            line = (json.dumps(body, sort_keys=True, ensure_ascii=True) + "\n").encode()
            self._write(line)
            self._seq, self._last, self._size = body["seq"], body["hash"], self._size + len(line)
            self._last_sig = body["sig"] or None
            self._write_head()
            return body

    def _sign(self, entry_hash: str) -> str:
        if self._signer is None:
            return ""
        return base64.b64encode(self._signer.sign(signed_message(entry_hash))).decode()

    def _write(self, line: bytes) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.write(descriptor, line) != len(line):
                raise OSError(28, "short write (disk full?)")
            os.fsync(descriptor)
        except OSError as error:
            reason = error.strerror or str(error)
            try:  # take back a partial line, so that the next entry starts on a line of its own
                os.ftruncate(descriptor, self._size)
            except OSError:
                self._broken = f"{reason}; a partial entry could not be taken back"
            log.error("audit log %s cannot be written: %s", self.path, reason)
            raise AuditUnavailable(f"this node cannot write its audit log ({reason}), so it releases nothing") from error
        finally:
            os.close(descriptor)

    def _write_head(self) -> None:
        """The head is a shortcut to the chain's end; if it cannot be written, the signed entry still stands."""
        try:
            tmp = self.head_path.with_suffix(".tmp")
            head = {"seq": self._seq, "hash": self._last, "key": self._key, "sig": ""}
            if self._signer is not None:
                signature = self._signer.sign(head_message(self._seq, self._last))
                head["sig"] = base64.b64encode(signature).decode()
            tmp.write_text(json.dumps(head) + "\n")
            tmp.replace(self.head_path)
        except OSError as error:
            log.warning("audit head %s not updated: %s", self.head_path, error)

    def receipt(self) -> Receipt | None:
        """The signed hash of the latest entry, for a reply to carry; None for an unsigned or empty log."""
        with self._lock:
            if self._signer is None or self._seq == 0:
                return None
            if self._last_sig is None:
                self._last_sig = self._sign(self._last)
            return Receipt(self._seq, self._last, self._key, self._last_sig)


def _lines_after(lines: list[Line], seq: int, last: str, path: Path) -> tuple[dict[str, Any] | None, list[Line]]:
    """The head's entry (None for an empty head) and the lines after it; ConfigError if that entry is gone."""
    if seq == 0:
        return None, lines
    for index in range(len(lines) - 1, -1, -1):
        body = lines[index].body
        if body is not None and body.get("seq") == seq and body.get("hash") == last:
            return body, lines[index + 1 :]
    raise ConfigError(
        str(path),
        [f"the log lacks seq {seq}, the entry its head names: entries were cut or edited (run `federation audit verify`)"],
    )
