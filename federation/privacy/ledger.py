"""A node's persistent privacy-budget ledger (SQLite), per recipient and purpose.

Charges are checked and written in one IMMEDIATE transaction, so two
concurrent requests cannot both squeeze under the budget, and the ledger
survives restarts: a spent budget stays spent.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from federation.errors import BudgetExhausted

SCHEMA = """
CREATE TABLE IF NOT EXISTS charge (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    recipient TEXT NOT NULL,
    purpose TEXT NOT NULL,
    run_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    epsilon REAL NOT NULL CHECK (epsilon >= 0),
    delta REAL NOT NULL CHECK (delta >= 0)
);
CREATE INDEX IF NOT EXISTS charge_by_party ON charge (recipient, purpose);
"""


@dataclass(frozen=True)
class Spent:
    epsilon: float
    delta: float


class BudgetLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with closing(self._connect()) as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def spent(self, recipient: str, purpose: str) -> Spent:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT COALESCE(SUM(epsilon), 0), COALESCE(SUM(delta), 0) FROM charge WHERE recipient = ? AND purpose = ?",
                (recipient, purpose),
            ).fetchone()
        return Spent(float(row[0]), float(row[1]))

    def spent_in_run(self, recipient: str, purpose: str, run_id: str) -> Spent:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT COALESCE(SUM(epsilon), 0), COALESCE(SUM(delta), 0) FROM charge"
                " WHERE recipient = ? AND purpose = ? AND run_id = ?",
                (recipient, purpose, run_id),
            ).fetchone()
        return Spent(float(row[0]), float(row[1]))

    def charge(
        self, recipient: str, purpose: str, run_id: str, round_: int, *, epsilon: float, delta: float, budget: float
    ) -> Spent:
        """Record a release's cost, or refuse it if the budget would be exceeded; returns the new total."""
        with self._lock, closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT COALESCE(SUM(epsilon), 0), COALESCE(SUM(delta), 0) FROM charge WHERE recipient = ? AND purpose = ?",
                    (recipient, purpose),
                ).fetchone()
                total = float(row[0]) + epsilon
                if total > budget + 1e-12:
                    raise BudgetExhausted(
                        f"privacy budget for {recipient!r} / {purpose!r} would be exceeded: "
                        f"{float(row[0]):.4g} spent + {epsilon:.4g} requested > {budget:.4g}"
                    )
                db.execute(
                    "INSERT INTO charge (recipient, purpose, run_id, round, epsilon, delta) VALUES (?, ?, ?, ?, ?, ?)",
                    (recipient, purpose, run_id, round_, epsilon, delta),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Spent(total, float(row[1]) + delta)
