"""What the audit log, its recovery and its verification share: file names, the chain hash, signatures."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from federation.errors import ConfigError
from federation.trust.certificates import fingerprint

GENESIS = "0" * 64
LOG_NAME = "audit.jsonl"
HEAD_NAME = "audit.head"
CERTS_DIR = "audit.certs"  # the certificates whose keys signed entries, by key id
QUARANTINE_DIR = "audit.quarantine"
RECOVERY_RPC = "node:recovery"
CRASH, TAMPERED = "crash:", "tampered:"  # how a recovery entry's first reason starts
_DOMAIN = b"federation-audit-entry-v1\n"
_HEAD_DOMAIN = b"federation-audit-head-v1\n"


def digest(previous: str, body: dict[str, Any]) -> str:
    """The chain hash of an entry: over the previous hash and every field but `hash` and `sig`."""
    content = {k: v for k, v in body.items() if k not in ("hash", "sig")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


def signed_message(entry_hash: str) -> bytes:
    """What the node signs for an entry: its hash, in a domain of its own."""
    return _DOMAIN + entry_hash.encode()


def head_message(seq: int, entry_hash: str) -> bytes:
    """What the node signs for its head: a domain of its own, so an entry's signature cannot serve as a head's."""
    return _HEAD_DOMAIN + f"{seq} {entry_hash}".encode()


def key_id(certificate_der: bytes) -> str:
    return fingerprint(certificate_der).removeprefix("sha256:")


def signature_valid(certificate: x509.Certificate, entry_hash: str, signature: object, *, message: bytes | None = None) -> bool:
    """Whether `signature` (base64) is the certificate key's over an entry hash (or over `message`)."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        public.verify(raw, message if message is not None else signed_message(entry_hash), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def stored_certificate(directory: Path, key: str) -> x509.Certificate | None:
    """The certificate a log keeps for a signing key; None if missing or unreadable."""
    if not key or not all(c in "0123456789abcdef" for c in key):
        return None
    path = directory / CERTS_DIR / f"{key}.pem"
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return certificate if key_id(certificate.public_bytes(Encoding.DER)) == key else None


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    key: str = ""  # the signing key's id, and its signature over (seq, hash); empty for an unsigned log
    sig: str = ""


def parse_head(path: Path) -> Head | None:
    """The head file; the older `seq hash` text form is read too."""
    if not path.is_file():
        return None
    text = path.read_text(errors="replace").strip()
    seq: object = None
    value: object = None
    key: object = ""
    sig: object = ""
    try:
        raw = json.loads(text)
        if isinstance(raw, dict):
            seq, value, key, sig = raw.get("seq"), raw.get("hash"), raw.get("key", ""), raw.get("sig", "")
    except json.JSONDecodeError:
        parts = text.split()
        if len(parts) == 2 and parts[0].isdigit():
            seq, value = int(parts[0]), parts[1]
    if not isinstance(seq, int) or not isinstance(value, str) or len(value) != 64:
        raise ConfigError(str(path), ["the audit head is unreadable: run `federation audit verify`"])
    if not isinstance(key, str) or not isinstance(sig, str):
        raise ConfigError(str(path), ["the audit head is unreadable: run `federation audit verify`"])
    return Head(seq, value, key, sig)


def parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as an editor shows it
    offset: int  # byte offset of its start
    raw: bytes
    body: dict[str, Any] | None  # None: not a JSON object


def split_log(data: bytes) -> tuple[list[Line], bytes]:
    """The complete lines of a log and a torn tail (bytes after the last newline, from a write cut short)."""
    end = data.rfind(b"\n") + 1
    lines: list[Line] = []
    offset = 0
    for number, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if raw.strip():
            lines.append(Line(number, offset, raw, parse_line(raw)))
        offset += len(raw) + 1
    return lines, data[end:]


def read_entries(directory: Path) -> Iterator[dict[str, Any]]:
    """The entries of a log, without a torn last line or lines that are not JSON objects."""
    path = directory / LOG_NAME
    if not path.is_file():
        return
    lines, _ = split_log(path.read_bytes())
    for line in lines:
        if line.body is not None:
            yield line.body
