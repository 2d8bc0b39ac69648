"""Audit receipts on the wire: every reply of a node carries the signed hash of its latest audit entry.

The node sets it as trailing metadata; the coordinator keeps every receipt
in its run directory (`receipts/<node>.jsonl`). Later, `federation audit
verify STATE --receipts RUN_DIR` holds the node's log to what the node
signed, which catches even the node's own operator rewriting or cutting it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc

RECEIPT_METADATA_KEY = "federation-audit-receipt"
RECEIPTS_DIR = "receipts"


def receipt_metadata(receipt_json: str | None) -> tuple[tuple[str, str], ...]:
    return ((RECEIPT_METADATA_KEY, receipt_json),) if receipt_json else ()


def receipt_from_metadata(metadata: Iterable[Any] | None) -> str | None:
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == RECEIPT_METADATA_KEY and isinstance(value, str) and len(value) < 2048:
            return value
    return None


class ReceiptBook:
    """Appends the receipts of one run's calls, one file per node; safe across the coordinator's threads."""

    def __init__(self, run_dir: Path) -> None:
        self.directory = run_dir / RECEIPTS_DIR
        self._lock = threading.Lock()

    def keep(self, node_id: str, receipt_json: str) -> None:
        try:
            json.loads(receipt_json)
        except ValueError:
            return  # not a receipt: a node that sends garbage simply has none
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with (self.directory / f"{node_id}.jsonl").open("a") as handle:
                handle.write(receipt_json.replace("\n", " ") + "\n")

    def count(self, node_id: str) -> int:
        path = self.directory / f"{node_id}.jsonl"
        return len(path.read_text().splitlines()) if path.is_file() else 0


class ReceiptCollector(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """A client interceptor that hands the receipt of every finished call to `keep`."""

    def __init__(self, keep: Callable[[str], None]) -> None:
        self._keep = keep

    def _watch(self, call: Any) -> Any:
        def done(finished: Any) -> None:
            try:
                receipt = receipt_from_metadata(finished.trailing_metadata())
            except Exception:  # noqa: BLE001 - a call without metadata has no receipt
                return
            if receipt is not None:
                self._keep(receipt)

        call.add_done_callback(done)
        return call

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._watch(continuation(details, request))

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._watch(continuation(details, request))

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return self._watch(continuation(details, requests))

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return self._watch(continuation(details, requests))
