"""Verifying a node's audit log: tampering is found and located, and a crash is told apart from it.

What is detectable, and by whom:
- an edited, deleted, inserted or reordered entry: by anyone (the hash chain);
- entries written or rewritten without the node's key, including a chain
  recomputed after removing one caller's entries: by anyone holding the
  node's certificate (every entry is signed; pass `ca` to check that the
  certificates kept beside the log are the federation CA's and not the
  insider's own);
- a cut tail: by the head file, unless the insider also rewrote the head to an
  earlier signed entry;
- anything the node's own operator does with the key (rewriting and
  re-signing, cutting the tail and head): only against receipts, the signed
  entry hashes the node sent with its replies, which a coordinator keeps in
  its run directory (`receipts`). Entries after the last receipt anybody
  holds can be cut by the operator without trace.

A crash leaves only two marks, which are notes, not problems: a signed entry
past the head (killed between the two writes) and a torn last line (a write
cut short); the node's own recovery entries say which it found at restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from federation.errors import ConfigError
from federation.node.audit_chain import (
    CRASH,
    GENESIS,
    HEAD_NAME,
    LOG_NAME,
    RECOVERY_RPC,
    TAMPERED,
    digest,
    head_message,
    parse_head,
    signature_valid,
    split_log,
    stored_certificate,
)
from federation.transport.receipts import RECEIPTS_DIR
from federation.trust.certificates import common_name


@dataclass(frozen=True)
class Verification:
    entries: int
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()  # crashes recovered from, unsigned old entries: not tampering
    signer: str | None = None  # the common name of the certificate that signed the entries
    receipts: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass
class _Walk:
    directory: Path
    ca: x509.Certificate | None
    count: int = 0
    previous: str = GENESIS
    expected: int = 1
    signed_from: int | None = None  # the first signed seq; entries after it must all be signed
    signer: str | None = None
    hashes: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unsigned_old: int = 0
    certificates: dict[str, x509.Certificate | None] = field(default_factory=dict)

    def certificate(self, key: str) -> x509.Certificate | None:
        if key not in self.certificates:
            certificate = stored_certificate(self.directory, key)
            if certificate is not None and self.ca is not None and not _issued_by(certificate, self.ca):
                certificate = None
            self.certificates[key] = certificate
        return self.certificates[key]

    def signature_problem(self, body: dict[str, Any], where: str) -> str | None:
        key, seq = str(body.get("key") or ""), body.get("seq")
        if not body.get("sig"):
            if self.ca is not None:
                return f"{where}: carries no signature, so it cannot be the node's"
            if self.signed_from is None:
                self.unsigned_old += 1
                return None
            return f"{where}: carries no signature although the entries before it are signed; written outside the node"
        certificate = self.certificate(key)
        if certificate is None:
            whose = "the federation CA's" if self.ca is not None else "kept beside the log"
            return f"{where}: signed with key {key[:16]}, for which no certificate {whose} exists"
        if not signature_valid(certificate, str(body.get("hash")), body.get("sig")):
            return f"{where}: its signature does not verify; the entry was written or edited without the node's key"
        name = common_name(certificate)
        if self.signer is not None and name != self.signer:
            return f"{where}: signed by {name!r}, the entries before it by {self.signer!r}"
        self.signer = name
        if self.signed_from is None and isinstance(seq, int):
            self.signed_from = seq
        return None


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - a wrong issuer, algorithm or signature all mean "not the CA's"
        return False
    return True


def verify(directory: Path, *, ca: Path | None = None, receipts: Path | None = None) -> Verification:
    """Walk the chain and its signatures; report the first place where it breaks, a mismatched head, and receipts."""
    path = directory / LOG_NAME
    if not path.is_file():
        return Verification(0, (f"no audit log at {path}",))
    walk = _Walk(directory, _load_ca(ca) if ca is not None else None)
    lines, torn = split_log(path.read_bytes())
    for line in lines:
        problem = _step(walk, line.number, line.body)
        if problem is not None:
            return Verification(walk.count, (problem,), tuple(walk.notes), walk.signer)
    if torn:
        walk.notes.append(
            f"{CRASH} the last line is incomplete ({len(torn)} bytes, a write cut short by a crash or a full disk); "
            "the node moves it aside at its next start"
        )
    if walk.unsigned_old:
        walk.notes.append(f"the first {walk.unsigned_old} entries are unsigned (written before the node signed its log)")
    problems = [*_head_problems(walk, directory)]
    checked = 0
    if receipts is not None:
        found, checked = _receipt_problems(walk, receipts)
        problems += found
    return Verification(walk.count, tuple(problems), tuple(walk.notes), walk.signer, checked)


def _step(walk: _Walk, number: int, body: dict[str, Any] | None) -> str | None:
    if body is None:
        return f"line {number}: not a JSON entry (edited or corrupted)"
    walk.count += 1
    seq = body.get("seq")
    where = f"line {number} (seq {seq})"
    if body.get("prev") != walk.previous:
        what = "deleted, inserted or reordered" if seq != walk.expected else "edited"
        return f"{where}: does not follow the entry before it; an entry was {what}"
    if body.get("hash") != digest(walk.previous, body):
        return f"{where}: its content does not match its hash; the entry was edited"
    if seq != walk.expected:
        return f"line {number}: sequence number {seq} where {walk.expected} was expected"
    problem = walk.signature_problem(body, where)
    if problem is not None:
        return problem
    if body.get("rpc") == RECOVERY_RPC:
        for reason in body.get("reasons") or []:
            if str(reason).startswith(TAMPERED):
                return f"seq {seq}: at a restart the node found tampering: {str(reason).removeprefix(TAMPERED).strip()}"
            walk.notes.append(f"seq {seq}: the node recovered from a crash: {str(reason).removeprefix(CRASH).strip()}")
    walk.hashes[seq] = str(body["hash"])
    walk.previous, walk.expected = str(body["hash"]), walk.expected + 1
    return None


def _head_problems(walk: _Walk, directory: Path) -> list[str]:
    try:
        head = parse_head(directory / HEAD_NAME)
    except ConfigError:
        return [f"{HEAD_NAME} is unreadable (edited or corrupted)"]
    last = walk.expected - 1
    if head is None:
        return [f"{HEAD_NAME} is missing, so a cut-off end of the log would go unnoticed"] if walk.count else []
    if walk.signed_from is not None:
        certificate = walk.certificate(head.key)
        message = head_message(head.seq, head.hash)
        if certificate is None or not signature_valid(certificate, head.hash, head.sig, message=message):
            return [f"{HEAD_NAME} is not signed by the node's key: it was rewritten (entries may have been cut off the end)"]
    if head.seq > last:
        return [f"the log ends at seq {last} but the head records seq {head.seq}: entries were cut off the end"]
    if walk.hashes.get(head.seq, GENESIS if head.seq == 0 else None) != head.hash:
        return [f"seq {head.seq}: the entry does not match the head's hash; it was edited"]
    if head.seq < last:
        if walk.signed_from is None:
            return [f"the log goes on to seq {last} past the head's seq {head.seq}: entries were appended outside the node"]
        walk.notes.append(
            f"{CRASH} seq {head.seq + 1}–{last} past the head are signed by the node: it stopped between an entry and its head"
        )
    return []


def _receipt_problems(walk: _Walk, run_dir: Path) -> tuple[list[str], int]:
    """Every receipt of this node in a run directory must match the log: the operator cannot rewrite past them."""
    if walk.signer is None:
        return ["the log is unsigned, so receipts cannot be checked against it"], 0
    path = run_dir / RECEIPTS_DIR / f"{walk.signer}.jsonl"
    if not path.is_file():
        return [f"no receipts of {walk.signer!r} in {run_dir} (expected {path})"], 0
    problems: list[str] = []
    checked = 0
    for number, receipt in _receipts(path):
        checked += 1
        where = f"receipt {number} (seq {receipt.get('seq')})"
        certificate = walk.certificate(str(receipt.get("key") or ""))
        seq, value = receipt.get("seq"), receipt.get("hash")
        if certificate is None or not signature_valid(certificate, str(value), receipt.get("sig")):
            problems.append(f"{where}: not signed by this node's key (a forged receipt, or its certificate was removed)")
        elif not isinstance(seq, int) or seq not in walk.hashes:
            problems.append(f"{where}: the node signed this entry, but the log ends at seq {walk.expected - 1}: cut off")
        elif walk.hashes[seq] != value:
            problems.append(f"{where}: the log's entry differs from the one the node signed: the log was rewritten")
    return problems, checked


def _receipts(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(raw, dict):
            yield number, raw


def _load_ca(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigError(str(path), [f"not a readable PEM certificate: {error}"]) from error
