"""A node's persistent privacy-budget ledger (SQLite), per recipient and budget key.

The budget key comes from the policy (`policy.model.budget_key`): one per
rule by default, so a recipient cannot buy a fresh budget by renaming its
purpose. Rows written before budget keys existed count against every budget
of their recipient, the conservative reading.

Each release under differential privacy is recorded as a Gaussian-mechanism
step (noise multiplier, sampling rate, steps); the epsilon spent is their
composition by Opacus' RDP accountant, never a hand-written sum. A charge is
checked and written in one IMMEDIATE transaction, so two concurrent requests
cannot both squeeze under the budget, and the ledger survives restarts.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from federation.errors import BudgetExhausted, NodeUnavailable
from federation.privacy.accounting import MechanismStep, epsilon_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS charge (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    recipient TEXT NOT NULL,
    purpose TEXT NOT NULL,
    budget TEXT,
    run_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    noise_multiplier REAL NOT NULL CHECK (noise_multiplier > 0),
    sample_rate REAL NOT NULL CHECK (sample_rate > 0 AND sample_rate <= 1),
    steps INTEGER NOT NULL CHECK (steps >= 1),
    epsilon_after REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS charge_by_party ON charge (recipient, purpose);
"""
_HISTORY = (
    "SELECT noise_multiplier, sample_rate, steps FROM charge WHERE recipient = ? AND (budget = ? OR budget IS NULL) ORDER BY id"
)


@contextmanager
def _writable() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as error:
        raise NodeUnavailable(f"this node cannot write its privacy ledger ({error}), so it releases nothing") from error


class BudgetLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with closing(self._connect()) as db:
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(charge)")}
            if "budget" not in columns:  # a ledger from before budget keys: its rows count everywhere
                db.execute("ALTER TABLE charge ADD COLUMN budget TEXT")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    @staticmethod
    def _history(db: sqlite3.Connection, recipient: str, budget: str) -> list[MechanismStep]:
        rows = db.execute(_HISTORY, (recipient, budget)).fetchall()
        return [MechanismStep(float(s), float(q), int(n)) for s, q, n in rows]

    def history(self, recipient: str, budget: str) -> list[MechanismStep]:
        with closing(self._connect()) as db:
            return self._history(db, recipient, budget)

    def spent(self, recipient: str, budget: str, *, delta: float) -> float:
        return epsilon_of(self.history(recipient, budget), delta=delta)

    def charge(
        self,
        recipient: str,
        budget: str,
        step: MechanismStep,
        *,
        purpose: str,
        run_id: str,
        round_: int,
        epsilon: float,
        delta: float,
    ) -> float:
        """Record a release, or refuse it if the budget `epsilon` would be exceeded; returns epsilon spent after it.

        A ledger that cannot be written (a full disk, a locked file) refuses the release: NodeUnavailable.
        """
        with self._lock, closing(self._connect()) as db, _writable():
            db.execute("BEGIN IMMEDIATE")
            try:
                history = self._history(db, recipient, budget)
                before = epsilon_of(history, delta=delta)
                after = epsilon_of([*history, step], delta=delta)
                if after > epsilon * (1 + 1e-9):
                    raise BudgetExhausted(
                        f"privacy budget of {recipient!r} ({budget}) would be exceeded: "
                        f"epsilon {before:.3g} spent, {after:.3g} after this release, budget {epsilon:.3g}"
                    )
                db.execute(
                    "INSERT INTO charge (recipient, purpose, budget, run_id, round, noise_multiplier, sample_rate, steps,"
                    " epsilon_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (recipient, purpose, budget, run_id, round_, step.noise_multiplier, step.sample_rate, step.steps, after),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return after
