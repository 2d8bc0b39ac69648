"""The audit log against crashes, full disks, insiders and its own operator.

Crashes are played with real processes (`kill -9` while appending, a file-size
limit for a full disk); insiders edit the real files; the operator holds the
node's key and is caught only by receipts.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from federation.cli import app
from federation.errors import ConfigError
from federation.node.audit import HEAD_NAME, LOG_NAME, AuditEntry, AuditLog, read_entries, verify
from federation.node.audit_chain import QUARANTINE_DIR, RECOVERY_RPC, digest
from federation.transport.receipts import RECEIPTS_DIR
from federation.trust.authority import cert_pem, new_ca, new_certificate, throwaway_cohort
from federation.trust.certificates import Credentials

NODE = "water-bureau"
runner = CliRunner()


@pytest.fixture(scope="module")
def credentials() -> Credentials:
    return throwaway_cohort([NODE])[0][NODE]


def written(directory: Path, signer: Credentials, count: int, caller: str = "city-platform") -> AuditLog:
    log = AuditLog(directory, signer=signer)
    for i in range(count):
        log.append(AuditEntry(caller=caller if i % 2 else "university", rpc="Fit", run_id="run-1", round=i))
    return log


def log_lines(directory: Path) -> list[str]:
    return (directory / LOG_NAME).read_text().splitlines()


def write_lines(directory: Path, content: list[str]) -> None:
    (directory / LOG_NAME).write_text("".join(line + "\n" for line in content))


# -- crashes ---------------------------------------------------------------------------


def test_a_crash_between_an_entry_and_its_head_is_a_note_and_the_entry_is_adopted(
    tmp_path: Path, credentials: Credentials
) -> None:
    log = written(tmp_path, credentials, 5)
    stale = (tmp_path / HEAD_NAME).read_text()
    log.append(AuditEntry(caller="city-platform", rpc="Describe"))
    (tmp_path / HEAD_NAME).write_text(stale)  # killed after the entry, before the head
    before = verify(tmp_path)
    assert before.intact, before.problems
    assert any("stopped between an entry and its head" in n for n in before.notes)
    AuditLog(tmp_path, signer=credentials).append(AuditEntry(caller="city-platform", rpc="Describe"))
    bodies = list(read_entries(tmp_path))
    assert [b["seq"] for b in bodies] == list(range(1, 9))  # 6 entries, the recovery record, the new one
    assert bodies[6]["rpc"] == RECOVERY_RPC and "adopted" in bodies[6]["reasons"][0]
    assert verify(tmp_path).intact


def test_a_torn_last_line_is_quarantined_with_a_record_and_the_log_stays_intact(tmp_path: Path, credentials: Credentials) -> None:
    written(tmp_path, credentials, 4)
    with (tmp_path / LOG_NAME).open("ab") as handle:
        handle.write(b'{"seq": 5, "time": "2026-12-0')  # a write cut short
    crashed = verify(tmp_path)
    assert crashed.intact and any("incomplete" in n for n in crashed.notes)
    AuditLog(tmp_path, signer=credentials)
    quarantined = list((tmp_path / QUARANTINE_DIR).iterdir())
    assert [p.read_bytes() for p in quarantined] == [b'{"seq": 5, "time": "2026-12-0']
    result = verify(tmp_path)
    assert result.intact, result.problems
    assert any("recovered from a crash" in n and "torn last line" in n for n in result.notes)


APPENDER = """
import sys
from pathlib import Path
from federation.node.audit import AuditEntry, AuditLog
from federation.trust.certificates import Credentials
cert, key, directory = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes(), Path(sys.argv[3])
log = AuditLog(directory, signer=Credentials.from_pem(cert, key))
print("ready", flush=True)
for i in range(10**9):
    log.append(AuditEntry(caller="city-platform", rpc="Fit", run_id="run-" + "x" * (i % 300), round=i))
"""


def test_kill_9_while_appending_never_leaves_a_log_that_verify_calls_tampered(tmp_path: Path) -> None:
    ca, ca_key = new_ca("test-ca", days=1)
    certificate, key = new_certificate(ca, ca_key, NODE, days=1)
    from federation.trust.authority import key_pem

    (tmp_path / "node.crt").write_bytes(cert_pem(certificate))
    (tmp_path / "node.key").write_bytes(key_pem(key))
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca))
    state = tmp_path / "state"
    recoveries = []
    for kill in range(6):
        process = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(tmp_path / "node.crt"), str(tmp_path / "node.key"), str(state)],
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        time.sleep(0.05 + 0.04 * kill)
        process.send_signal(signal.SIGKILL)
        process.wait()
        result = verify(state, ca=tmp_path / "ca.crt")
        assert result.intact, (kill, result.problems)
        started = time.perf_counter()
        AuditLog(state, signer=Credentials.from_pem(cert_pem(certificate), key_pem(key)))
        recoveries.append(time.perf_counter() - started)
    final = verify(state, ca=tmp_path / "ca.crt")
    assert final.intact, final.problems
    assert final.entries > 6 and final.signer == NODE
    print(f"{final.entries} entries over 6 kills; reopening took at most {max(recoveries) * 1000:.0f} ms")


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


FULL_DISK = """
import sys
from pathlib import Path
from federation.node.audit import AuditEntry, AuditLog, AuditUnavailable
from federation.trust.certificates import Credentials
cert, key, directory = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes(), Path(sys.argv[3])
log = AuditLog(directory, signer=Credentials.from_pem(cert, key))
written = refused = 0
for i in range(200):
    try:
        log.append(AuditEntry(caller="city-platform", rpc="Fit", round=i))
        written += 1
    except AuditUnavailable as error:
        refused += 1
        reason = error.public
print(written, refused, reason, flush=True)
"""


def test_a_full_disk_refuses_appends_takes_back_the_partial_line_and_the_log_recovers(tmp_path: Path) -> None:
    from federation.trust.authority import key_pem

    ca, ca_key = new_ca("test-ca", days=1)
    certificate, key = new_certificate(ca, ca_key, NODE, days=1)
    (tmp_path / "node.crt").write_bytes(cert_pem(certificate))
    (tmp_path / "node.key").write_bytes(key_pem(key))
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path / "node.crt"), str(tmp_path / "node.key"), str(state)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limited(20_000),
        check=True,
    )
    written_count, refused, *reason = done.stdout.split(maxsplit=2)
    assert 0 < int(written_count) < 200 and int(refused) == 200 - int(written_count)
    assert "cannot write its audit log" in reason[0] and "releases nothing" in reason[0]
    assert (state / LOG_NAME).stat().st_size <= 20_000
    result = verify(state)
    assert result.intact, result.problems
    assert result.entries == int(written_count)
    AuditLog(state, signer=Credentials.from_pem(cert_pem(certificate), key_pem(key))).append(
        AuditEntry(caller="city-platform", rpc="Describe")
    )
    assert verify(state).intact


# -- insiders without the key -------------------------------------------------------------


def test_removing_one_callers_entries_and_recomputing_the_chain_is_found(tmp_path: Path, credentials: Credentials) -> None:
    written(tmp_path, credentials, 10)
    kept, previous = [], "0" * 64
    for line in log_lines(tmp_path):
        body = json.loads(line)
        if body["caller"] == "university":
            continue
        body.update(seq=len(kept) + 1, prev=previous)
        body["hash"] = previous = digest(previous, body)
        kept.append(json.dumps(body, sort_keys=True))
    write_lines(tmp_path, kept)
    (tmp_path / HEAD_NAME).write_text(json.dumps({"seq": len(kept), "hash": previous}))
    result = verify(tmp_path)
    assert not result.intact
    assert "line 1 (seq 1): its signature does not verify" in result.problems[0]


def test_a_forged_last_line_is_found_and_never_adopted(tmp_path: Path, credentials: Credentials) -> None:
    written(tmp_path, credentials, 3)
    last = json.loads(log_lines(tmp_path)[-1])
    forged = {**last, "seq": 4, "prev": last["hash"], "caller": "police", "sig": ""}
    forged["hash"] = digest(last["hash"], forged)
    with (tmp_path / LOG_NAME).open("a") as handle:
        handle.write(json.dumps(forged, sort_keys=True) + "\n")
    assert "carries no signature" in verify(tmp_path).problems[0]
    reopened = AuditLog(tmp_path, signer=credentials)
    bodies = list(read_entries(tmp_path))
    assert "police" not in {b["caller"] for b in bodies}
    assert bodies[-1]["rpc"] == RECOVERY_RPC and bodies[-1]["seq"] == 4
    reopened.append(AuditEntry(caller="city-platform", rpc="Describe"))
    after = verify(tmp_path)
    assert not after.intact
    assert "at a restart the node found tampering" in after.problems[0]
    assert "police" in next((tmp_path / QUARANTINE_DIR).iterdir()).read_text()


def test_a_log_signed_with_another_cas_certificate_fails_against_the_federation_ca(tmp_path: Path) -> None:
    impostor = throwaway_cohort([NODE])[0][NODE]
    written(tmp_path, impostor, 3)
    ca, _ = new_ca("federation-ca", days=1)
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca))
    assert verify(tmp_path).intact  # against the certificate kept beside the log, which the insider chose
    result = verify(tmp_path, ca=tmp_path / "ca.crt")
    assert not result.intact and "no certificate the federation CA's exists" in result.problems[0]


def test_a_head_that_names_a_missing_entry_stops_the_node_with_a_clear_error(tmp_path: Path, credentials: Credentials) -> None:
    written(tmp_path, credentials, 5)
    write_lines(tmp_path, log_lines(tmp_path)[:-2])
    with pytest.raises(ConfigError, match="lacks seq 5"):
        AuditLog(tmp_path, signer=credentials)


# -- the operator, who holds the key ------------------------------------------------------


def _receipts(run_dir: Path, log: AuditLog, count: int) -> None:
    folder = run_dir / RECEIPTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{NODE}.jsonl").open("a") as handle:
        for i in range(count):
            log.append(AuditEntry(caller="city-platform", rpc="Fit", round=i))
            receipt = log.receipt()
            assert receipt is not None
            handle.write(receipt.to_json() + "\n")


def test_receipts_hold_the_operator_to_what_the_node_signed(tmp_path: Path, credentials: Credentials) -> None:
    state, run = tmp_path / "state", tmp_path / "run"
    log = written(state, credentials, 3)
    _receipts(run, log, 4)
    result = verify(state, receipts=run)
    assert result.intact and result.receipts == 4
    cli = runner.invoke(app, ["audit", "verify", str(state), "--receipts", str(run)])
    assert cli.exit_code == 0 and "4 receipts" in cli.output


def signed_head(credentials: Credentials | None, seq: int, entry_hash: str) -> str:
    """A head as its writer makes it: signed by whoever holds `credentials` (the operator), else unsigned."""
    import base64

    from federation.node.audit_chain import head_message, key_id

    key = key_id(credentials.certificate) if credentials is not None else ""
    sig = base64.b64encode(credentials.sign(head_message(seq, entry_hash))).decode() if credentials is not None else ""
    return json.dumps({"seq": seq, "hash": entry_hash, "key": key, "sig": sig})


def test_an_insider_who_cuts_the_tail_and_rewrites_the_head_without_the_key_is_found(
    tmp_path: Path, credentials: Credentials
) -> None:
    written(tmp_path, credentials, 5)
    content = log_lines(tmp_path)[:-2]
    write_lines(tmp_path, content)
    (tmp_path / HEAD_NAME).write_text(signed_head(None, 3, json.loads(content[-1])["hash"]))
    assert "not signed by the node's key" in verify(tmp_path).problems[0]
    with pytest.raises(ConfigError, match="not signed by this node"):
        AuditLog(tmp_path, signer=credentials)


def test_an_operator_who_cuts_the_tail_and_its_head_is_caught_by_receipts(tmp_path: Path, credentials: Credentials) -> None:
    state, run = tmp_path / "state", tmp_path / "run"
    _receipts(run, written(state, credentials, 3), 4)
    content = log_lines(state)[:-2]
    write_lines(state, content)
    (state / HEAD_NAME).write_text(signed_head(credentials, 5, json.loads(content[-1])["hash"]))
    assert verify(state).intact  # nobody without receipts can tell
    result = verify(state, receipts=run)
    assert [p for p in result.problems if "cut off" in p] and "seq 6" in result.problems[0]


def test_an_operator_who_rewrites_and_resigns_is_caught_by_receipts(tmp_path: Path, credentials: Credentials) -> None:
    state, run = tmp_path / "state", tmp_path / "run"
    _receipts(run, written(state, credentials, 2), 3)
    bodies = list(read_entries(state))
    rewritten = tmp_path / "rewritten"
    log = AuditLog(rewritten, signer=credentials)  # the operator's own key, a fresh chain without university
    for body in bodies:
        if body["caller"] != "university":
            log.append(AuditEntry(caller=body["caller"], rpc=body["rpc"], round=body["round"]))
    assert verify(rewritten).intact
    result = verify(rewritten, receipts=run)
    assert len(result.problems) == 3  # receipts for seq 3 to 5; the rewritten log has 4 other entries
    assert all("the log was rewritten" in p for p in result.problems[:2]) and "cut off" in result.problems[2]


def test_a_forged_receipt_is_not_evidence(tmp_path: Path, credentials: Credentials) -> None:
    state, run = tmp_path / "state", tmp_path / "run"
    _receipts(run, written(state, credentials, 1), 1)
    path = run / RECEIPTS_DIR / f"{NODE}.jsonl"
    receipt = json.loads(path.read_text())
    path.write_text(json.dumps({**receipt, "hash": "f" * 64}) + "\n")
    assert "not signed by this node's key" in verify(state, receipts=run).problems[0]


# -- bounded entries and untrusted text ----------------------------------------------------------


def test_megabyte_values_are_truncated_and_hashed(tmp_path: Path, credentials: Credentials) -> None:
    log = AuditLog(tmp_path, signer=credentials)
    log.append(AuditEntry(caller="x" * 1_000_000, rpc="Propose", run_id="r" * 1_000_000, reasons=["why"] * 10_000))
    size = (tmp_path / LOG_NAME).stat().st_size
    assert size < 16_000
    body = next(read_entries(tmp_path))
    assert "1000000 chars, sha256" in body["run_id"] and len(body["reasons"]) == 17
    assert verify(tmp_path).intact


def test_show_prints_markup_and_escape_codes_as_text(tmp_path: Path, credentials: Credentials) -> None:
    log = AuditLog(tmp_path, signer=credentials)
    log.append(AuditEntry(caller="[/]", rpc="Propose", run_id="[bold red]x[/]", reasons=["\x1b[2J\x1b[31mred", "a\nb"]))
    result = runner.invoke(app, ["audit", "show", str(tmp_path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    cells = "".join(ch for ch in result.output if ch.isascii() and not ch.isspace() and ch not in "|")
    assert "[/]" in cells and "[boldred]x[/]" in cells and "\\x1b[2J" in cells and "a\\nb" in cells


def test_an_unreadable_signature_is_a_problem_not_a_crash(tmp_path: Path, credentials: Credentials) -> None:
    written(tmp_path, credentials, 2)
    content = log_lines(tmp_path)
    body = json.loads(content[0])
    body["sig"] = "not base64 !!"
    content[0] = json.dumps(body, sort_keys=True)
    write_lines(tmp_path, content)
    assert "signature does not verify" in verify(tmp_path).problems[0]


def test_the_log_file_is_private_to_the_node(tmp_path: Path, credentials: Credentials) -> None:
    written(tmp_path, credentials, 1)
    assert os.stat(tmp_path / LOG_NAME).st_mode & 0o077 == 0
