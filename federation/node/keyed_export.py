"""ExportKeyed: the status quo of a vertical study, one department's table handed to the platform to join.

A central pool of departments that hold different facts about the same
firms needs every department's records with the firm's key. This is the
call that hands them over, so the baseline goes through the same gate as
everything else: a live rule for the caller and purpose that releases
"raw" and allows every column asked for. One row per firm this node knows
(its first record, as vertical training aligns it; empty cells where that
record failed the quality rules), keyed by the firm's prepared key. The
audit entry counts the rows and bytes handed over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pandas as pd
import pyarrow as pa

from federation.errors import FederationError, InvalidRequest, PolicyDenied
from federation.node.audit import AuditEntry, AuditLog
from federation.policy.evaluate import Request, decide
from federation.policy.model import Policy
from federation.task import RunContext
from federation.vertical.align import aligned
from federation.vertical.rows import KEY_COLUMN

Records = Callable[[], tuple[pd.DataFrame, Sequence[str | None], str | None]]


class KeyedExport:
    def __init__(
        self, node_id: str, *, records: Records, policy: Callable[[], Policy], today: Callable[[], dt.date], audit: AuditLog
    ) -> None:
        self.node_id = node_id
        self._records, self._policy, self._today, self.audit = records, policy, today, audit

    def export(self, caller: str, context: RunContext, columns: Sequence[str]) -> pa.Table:
        """The named columns of every firm this node knows, with its key; only under `release = "raw"`."""
        entry = AuditEntry(caller=caller, rpc="ExportKeyed", purpose=context.purpose, run_id=context.run_id)
        try:
            if not columns:
                raise InvalidRequest("ExportKeyed names no column")
            decision = decide(
                self._policy(), Request(caller, context.purpose, "raw", columns=tuple(columns)), today=self._today()
            )
            if not decision.allowed:
                raise PolicyDenied(list(decision.reasons))
            frame, by_row, _ = self._records()
            unknown = [c for c in columns if c not in frame.columns or c == KEY_COLUMN]
            if unknown:
                raise InvalidRequest(f"{self.node_id} has no columns {unknown} in its harmonised records")
            keys = sorted({k for k in by_row if k is not None})
            rows = aligned(frame, by_row, keys, list(columns)).assign(**{KEY_COLUMN: keys})
            table = pa.Table.from_pandas(rows, preserve_index=False)
            entry.rows, entry.bytes_released = table.num_rows, table.nbytes
            entry.reasons = [*decision.reasons, f"handed over {table.num_rows} firms' {list(columns)} with their keys"]
            return table
        except FederationError as error:
            entry.decision = "deny" if isinstance(error, PolicyDenied) else "error"
            entry.reasons = list(error.reasons) if isinstance(error, PolicyDenied) else [error.public]
            raise
        except Exception:
            entry.decision, entry.reasons = "error", ["internal error"]
            raise
        finally:
            self.audit.append(entry)
