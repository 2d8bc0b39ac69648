"""federation.privacy.ledger.BudgetLedger: charges persist, never exceed the budget, even under races."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from federation.errors import BudgetExhausted, ErrorCode
from federation.privacy.accounting import MechanismStep, epsilon_of
from federation.privacy.ledger import BudgetLedger

BUDGET, DELTA = 8.0, 1e-5
STEP = MechanismStep(2.0, 1.0, 1)  # about 2.17 for one release, 7.59 for nine, 8.08 for ten


def fitting(step: MechanismStep, budget: float) -> int:
    """How many releases of `step` fit into `budget`, by the accountant alone."""
    count = 0
    while epsilon_of([step] * (count + 1), delta=DELTA) <= budget:
        count += 1
    return count


def rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM charge").fetchone()[0])


def charge(
    ledger: BudgetLedger, round_: int, *, recipient: str = "city", purpose: str = "enforcement", step: MechanismStep = STEP
) -> float:
    return ledger.charge(recipient, purpose, step, purpose=purpose, run_id="run-1", round_=round_, epsilon=BUDGET, delta=DELTA)


def test_a_new_ledger_has_spent_nothing(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "state" / "ledger.sqlite")
    assert ledger.history("city", "enforcement") == []
    assert ledger.spent("city", "enforcement", delta=DELTA) == 0.0


def test_a_charge_returns_the_composed_epsilon(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.sqlite")
    first = charge(ledger, 1)
    second = charge(ledger, 2, step=MechanismStep(4.0, 1.0, 3))
    assert first == pytest.approx(epsilon_of([STEP], delta=DELTA))
    assert second == pytest.approx(epsilon_of([STEP, MechanismStep(4.0, 1.0, 3)], delta=DELTA))
    assert ledger.spent("city", "enforcement", delta=DELTA) == pytest.approx(second)


def test_charges_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    before = BudgetLedger(path)
    charge(before, 1)
    charge(before, 2, step=MechanismStep(3.0, 0.5, 4))
    spent = before.spent("city", "enforcement", delta=DELTA)
    del before

    after = BudgetLedger(path)  # the node restarts on the same state directory
    assert after.history("city", "enforcement") == [STEP, MechanismStep(3.0, 0.5, 4)]
    assert after.spent("city", "enforcement", delta=DELTA) == pytest.approx(spent)
    charge(after, 3)
    assert len(BudgetLedger(path).history("city", "enforcement")) == 3


def test_a_charge_over_the_budget_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = BudgetLedger(path)
    for round_ in range(fitting(STEP, BUDGET)):
        charge(ledger, round_)
    history, count = ledger.history("city", "enforcement"), rows(path)
    with pytest.raises(BudgetExhausted) as caught:
        charge(ledger, 99)
    assert caught.value.code == ErrorCode.BUDGET_EXHAUSTED
    message = str(caught.value)
    assert "budget 8" in message
    assert "'city'" in message and "(enforcement)" in message
    assert ledger.history("city", "enforcement") == history
    assert rows(path) == count
    # more noise still fits where the same noise did not
    charge(ledger, 100, step=MechanismStep(50.0, 1.0, 1))
    assert rows(path) == count + 1


def test_a_single_release_over_the_whole_budget_is_refused(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.sqlite")
    with pytest.raises(BudgetExhausted, match="budget"):
        charge(ledger, 1, step=MechanismStep(0.3, 1.0, 1))
    assert ledger.history("city", "enforcement") == []


def test_histories_are_kept_per_recipient_and_purpose(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.sqlite")
    for round_ in range(fitting(STEP, BUDGET)):
        charge(ledger, round_)
    with pytest.raises(BudgetExhausted):
        charge(ledger, 99)
    # the same recipient for another purpose, and another recipient for the same purpose, start afresh
    charge(ledger, 1, purpose="research")
    charge(ledger, 1, recipient="university")
    assert len(ledger.history("city", "research")) == 1
    assert len(ledger.history("university", "enforcement")) == 1
    assert ledger.history("university", "research") == []
    assert ledger.spent("city", "research", delta=DELTA) == pytest.approx(epsilon_of([STEP], delta=DELTA))


@pytest.mark.parametrize("shared", [True, False], ids=["one-ledger-many-threads", "one-ledger-per-thread"])
def test_racing_charges_never_exceed_the_budget(tmp_path: Path, shared: bool) -> None:
    """Eight threads race three charges each; exactly as many succeed as fit, whoever wins.

    With one ledger per thread the in-process lock is not shared, so only SQLite's
    IMMEDIATE transaction keeps two checks from both passing (as with two processes).
    """
    path = tmp_path / "ledger.sqlite"
    common = BudgetLedger(path)
    threads, attempts = 8, 3
    fits = fitting(STEP, BUDGET)
    assert fits < threads * attempts
    start = threading.Barrier(threads)
    outcomes: list[str] = []
    outcome_lock = threading.Lock()

    def worker(index: int) -> None:
        ledger = common if shared else BudgetLedger(path)
        start.wait()
        for attempt in range(attempts):
            try:
                charge(ledger, index * attempts + attempt)
                result = "charged"
            except BudgetExhausted:
                result = "refused"
            except Exception as error:  # anything else is a failure of the test
                result = f"error: {error!r}"
            with outcome_lock:
                outcomes.append(result)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in pool)
    assert [o for o in outcomes if o.startswith("error")] == []
    assert outcomes.count("charged") == fits
    assert outcomes.count("refused") == threads * attempts - fits
    assert rows(path) == fits
    assert common.spent("city", "enforcement", delta=DELTA) <= BUDGET
    with closing(sqlite3.connect(path)) as db:
        recorded = [float(e) for (e,) in db.execute("SELECT epsilon_after FROM charge ORDER BY id")]
    assert recorded == sorted(recorded)
    assert recorded[-1] <= BUDGET


def test_rows_from_before_budget_keys_count_against_every_budget_of_their_recipient(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with closing(sqlite3.connect(path)) as db:  # the ledger as an older node wrote it: no budget column
        db.executescript(
            "CREATE TABLE charge (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT, recipient TEXT NOT NULL,"
            " purpose TEXT NOT NULL, run_id TEXT NOT NULL, round INTEGER NOT NULL, noise_multiplier REAL NOT NULL,"
            " sample_rate REAL NOT NULL, steps INTEGER NOT NULL, epsilon_after REAL NOT NULL);"
            "INSERT INTO charge (recipient, purpose, run_id, round, noise_multiplier, sample_rate, steps, epsilon_after)"
            " VALUES ('city', 'old-purpose', 'r', 1, 2.0, 1.0, 1, 1.0);"
        )
        db.commit()
    ledger = BudgetLedger(path)
    assert ledger.history("city", "rule:any") == [MechanismStep(2.0, 1.0, 1)]
    assert ledger.history("someone-else", "rule:any") == []
    charge(ledger, 2, purpose="rule:any")
    assert len(ledger.history("city", "rule:any")) == 2
    assert len(ledger.history("city", "rule:other")) == 1
