"""federation.node.audit: a hash-chained, signed log in which every kind of tampering is found and located.

One real log of 20 entries is written with `AuditLog` and a real certificate key; each tampering
runs on its own copy. Crashes and insiders are played in `test_audit_recovery.py`.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from federation.cli import app
from federation.errors import ConfigError
from federation.node.audit import GENESIS, HEAD_NAME, LOG_NAME, AuditEntry, AuditLog, read_entries, verify
from federation.node.audit_chain import digest
from federation.trust.authority import throwaway_cohort

ENTRIES = 20
CALLERS = ("city-platform", "university", "stranger-x")


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        caller=CALLERS[i % 3],
        rpc="Propose" if i % 2 else "FitRound",
        purpose="enforcement" if i % 4 else "research",
        run_id=f"run-{i // 5}",
        round=i % 5,
        decision="deny" if i % 7 == 0 else "allow",
        reasons=[f"reason number {i}"],
        rows=10 * i,
        bytes_released=100 * i,
    )


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("audit") / "node-state"
    credentials, _ = throwaway_cohort(["water-bureau"])
    log = AuditLog(directory, signer=credentials["water-bureau"])
    for i in range(1, ENTRIES + 1):
        log.append(entry(i))
    return directory


@pytest.fixture()
def copy(real_log: Path, tmp_path: Path) -> Path:
    target = tmp_path / "tampered"
    shutil.copytree(real_log, target)
    return target


def lines(directory: Path) -> list[str]:
    return (directory / LOG_NAME).read_text(encoding="utf-8").splitlines()


def write_lines(directory: Path, new: list[str]) -> None:
    (directory / LOG_NAME).write_text("".join(line + "\n" for line in new), encoding="utf-8")


def rehash(body: dict[str, Any]) -> str:
    """What an insider without the node's key can do: a correct chain hash, but no valid signature."""
    body = dict(body)
    body["hash"] = digest(body["prev"], body)
    return json.dumps(body, sort_keys=True)


def plain(text: str) -> str:
    """Rich wraps long lines in a narrow terminal; compare words, not layout."""
    return re.sub(r"\s+", " ", text)


# -- an intact log ---------------------------------------------------------------------


def test_entries_form_a_chain_from_genesis_to_the_head(real_log: Path) -> None:
    bodies = list(read_entries(real_log))
    assert [b["seq"] for b in bodies] == list(range(1, ENTRIES + 1))
    assert bodies[0]["prev"] == GENESIS
    for before, after in itertools.pairwise(bodies):
        assert after["prev"] == before["hash"]
    for body in bodies:
        assert body["hash"] == digest(body["prev"], body)
        assert body["sig"] and body["key"] == bodies[0]["key"]
    head = json.loads((real_log / HEAD_NAME).read_text())
    assert (head["seq"], head["hash"], head["key"]) == (ENTRIES, bodies[-1]["hash"], bodies[0]["key"]) and head["sig"]
    assert bodies[6]["reasons"] == ["reason number 7"] and bodies[6]["decision"] == "deny"


def test_an_intact_log_verifies(real_log: Path) -> None:
    result = verify(real_log)
    assert result.intact
    assert result.entries == ENTRIES
    assert result.problems == ()
    assert result.signer == "water-bureau"


def test_a_missing_log_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = verify(tmp_path)
    assert not result.intact
    assert LOG_NAME in result.problems[0]


def test_a_reopened_log_continues_the_chain(copy: Path) -> None:
    reopened = AuditLog(copy)  # unsigned: its entries are found as written outside the node, below
    appended = [reopened.append(AuditEntry(caller="city-platform", rpc="Describe")) for _ in range(3)]
    assert [a["seq"] for a in appended] == [ENTRIES + 1, ENTRIES + 2, ENTRIES + 3]
    assert appended[0]["prev"] == json.loads(lines(copy)[ENTRIES - 1])["hash"]
    result = verify(copy)
    assert not result.intact
    assert "seq 21): carries no signature" in result.problems[0]


# -- tampering ------------------------------------------------------------------------


def edit_reason(d: Path) -> None:
    content = lines(d)
    body = json.loads(content[4])
    body["reasons"] = ["nothing to see here"]
    content[4] = json.dumps(body, sort_keys=True)
    write_lines(d, content)


def edit_and_rehash(d: Path) -> None:
    content = lines(d)
    body = json.loads(content[4])
    body["bytes_released"] = 0
    content[4] = rehash(body)
    write_lines(d, content)


def delete_middle(d: Path) -> None:
    content = lines(d)
    del content[9]
    write_lines(d, content)


def insert_forged(d: Path) -> None:
    """A well-formed entry that follows entry 6, pushed in before the real entry 7."""
    content = lines(d)
    sixth = json.loads(content[5])
    forged = {**sixth, "seq": 7, "prev": sixth["hash"], "caller": "police", "reasons": ["forged"]}
    content.insert(6, rehash(forged))
    write_lines(d, content)


def duplicate_entry(d: Path) -> None:
    content = lines(d)
    content.insert(12, content[11])
    write_lines(d, content)


def swap_entries(d: Path) -> None:
    content = lines(d)
    content[7], content[8] = content[8], content[7]
    write_lines(d, content)


def cut_last(d: Path) -> None:
    write_lines(d, lines(d)[:-1])


def cut_three(d: Path) -> None:
    write_lines(d, lines(d)[:-3])


def not_json(d: Path) -> None:
    content = lines(d)
    content[11] = content[11][:40]  # a half-written line
    write_lines(d, content)


def edit_sequence_number(d: Path) -> None:
    content = lines(d)
    body = json.loads(content[14])
    body["seq"] = 99
    content[14] = json.dumps(body, sort_keys=True)
    write_lines(d, content)


def rewrite_first(d: Path) -> None:
    content = lines(d)
    body = json.loads(content[0])
    body["caller"] = "someone-else"
    content[0] = rehash(body)
    write_lines(d, content)


TAMPERING: list[tuple[str, Callable[[Path], None], str]] = [
    ("edited-reason", edit_reason, r"line 5 \(seq 5\): its content does not match its hash; the entry was edited"),
    ("edited-and-rehashed", edit_and_rehash, r"line 5 \(seq 5\): its signature does not verify"),
    ("rewritten-first-entry", rewrite_first, r"line 1 \(seq 1\): its signature does not verify"),
    ("deleted-middle", delete_middle, r"line 10 \(seq 11\): .*deleted, inserted or reordered"),
    ("inserted-forged", insert_forged, r"line 7 \(seq 7\): its signature does not verify"),
    ("inserted-duplicate", duplicate_entry, r"line 13 \(seq 12\): .*deleted, inserted or reordered"),
    ("swapped", swap_entries, r"line 8 \(seq 9\): .*deleted, inserted or reordered"),
    ("edited-sequence-number", edit_sequence_number, r"line 15 \(seq 99\)"),
    ("last-cut-off", cut_last, r"ends at seq 19 but the head records seq 20"),
    ("three-cut-off", cut_three, r"ends at seq 17 but the head records seq 20"),
    ("not-json", not_json, r"line 12: not a JSON entry"),
]


@pytest.mark.parametrize(("tamper", "where"), [pytest.param(t, w, id=i) for i, t, w in TAMPERING])
def test_tampering_is_found_where_it_happened(copy: Path, tamper: Callable[[Path], None], where: str) -> None:
    tamper(copy)
    result = verify(copy)
    assert not result.intact
    assert len(result.problems) == 1
    assert re.search(where, result.problems[0]), result.problems[0]


def test_tampering_a_copy_leaves_the_original_intact(real_log: Path, copy: Path) -> None:
    edit_reason(copy)
    assert verify(real_log).intact


@pytest.mark.parametrize("replacement", ["42", '"entry"', "[1, 2]", "null"])
def test_a_json_line_that_is_not_an_entry_is_reported(copy: Path, replacement: str) -> None:
    content = lines(copy)
    content[3] = replacement
    write_lines(copy, content)
    result = verify(copy)
    assert not result.intact
    assert "line 4" in result.problems[0]


def test_a_cut_tail_is_found_even_without_the_head_file(copy: Path) -> None:
    cut_three(copy)
    (copy / HEAD_NAME).unlink()
    assert not verify(copy).intact


@pytest.mark.parametrize("head", ["", "20", "twenty abc def"])
def test_a_corrupt_head_is_reported(copy: Path, head: str) -> None:
    (copy / HEAD_NAME).write_text(head)
    result = verify(copy)
    assert not result.intact
    assert "head" in result.problems[0]


def test_an_edited_last_entry_is_not_reported_as_a_cut(copy: Path) -> None:
    content = lines(copy)
    body = json.loads(content[-1])
    body["decision"] = "allow" if body["decision"] == "deny" else "deny"
    content[-1] = rehash(body)
    write_lines(copy, content)
    result = verify(copy)
    assert not result.intact
    assert "seq 20" in result.problems[0]
    assert "signature does not verify" in result.problems[0]


# -- the command line ----------------------------------------------------------------

runner = CliRunner()


def test_cli_verify_an_intact_log(real_log: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", str(real_log)])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    assert "intact" in text
    assert f"{ENTRIES} entries" in text


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        pytest.param(edit_reason, "line 5 (seq 5)", id="edited"),
        pytest.param(delete_middle, "line 10 (seq 11)", id="deleted"),
        pytest.param(cut_last, "head records seq 20", id="cut"),
    ],
)
def test_cli_verify_a_tampered_log_fails_and_says_where(copy: Path, tamper: Callable[[Path], None], where: str) -> None:
    tamper(copy)
    result = runner.invoke(app, ["audit", "verify", str(copy)])
    assert result.exit_code == 1
    text = plain(result.output)
    assert "broken" in text
    assert where in text


@pytest.mark.parametrize(
    ("option", "value", "key"),
    [
        pytest.param("--caller", "university", "caller", id="caller"),
        pytest.param("--purpose", "research", "purpose", id="purpose"),
        pytest.param("--decision", "deny", "decision", id="decision"),
    ],
)
def test_cli_show_filters(real_log: Path, option: str, value: str, key: str) -> None:
    expected = sum(1 for b in read_entries(real_log) if b[key] == value)
    assert 0 < expected < ENTRIES
    result = runner.invoke(app, ["audit", "show", str(real_log), option, value])
    assert result.exit_code == 0, result.output
    assert f"{expected} entries shown" in plain(result.output)


def test_cli_show_by_caller_hides_other_callers(real_log: Path) -> None:
    result = runner.invoke(app, ["audit", "show", str(real_log), "--caller", "stranger-x"])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    assert f"{sum(1 for i in range(1, ENTRIES + 1) if i % 3 == 2)} entries shown" in text
    assert "universi" not in text and "city-pla" not in text


def test_cli_show_without_filters_shows_everything(real_log: Path) -> None:
    result = runner.invoke(app, ["audit", "show", str(real_log)])
    assert result.exit_code == 0, result.output
    assert f"{ENTRIES} entries shown" in plain(result.output)


def test_cli_show_dates_filter_by_day(real_log: Path) -> None:
    day = next(read_entries(real_log))["time"][:10]
    inside = runner.invoke(app, ["audit", "show", str(real_log), "--since", day, "--until", day])
    before = runner.invoke(app, ["audit", "show", str(real_log), "--until", "2000-01-01"])
    assert f"{ENTRIES} entries shown" in plain(inside.output)
    assert "0 entries shown" in plain(before.output)


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "01/06/2026"])
def test_cli_show_refuses_a_bad_date(real_log: Path, option: str, value: str) -> None:
    # cli.main() would turn this into exit code 2; CliRunner calls the app, so the error surfaces as the exception
    result = runner.invoke(app, ["audit", "show", str(real_log), option, value])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert result.exception.path == option
    assert "YYYY-MM-DD" in str(result.exception)
    assert repr(value) in str(result.exception)


def test_cli_show_on_a_directory_without_a_log_is_a_config_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "show", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert "audit.jsonl" in str(result.exception)
