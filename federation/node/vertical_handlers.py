"""The node's side of vertical training: three calls over `vertical.program`, authorised and audited.

    VerticalJoin      terms -> this node's signed advert   (the policy check: no row is read before it)
    VerticalAdmit     every advert -> the first letters    (the run starts)
    VerticalExchange  sealed letters in -> sealed letters out, paged

Every call after VerticalJoin must come from the caller that proposed the
run, which may not be a party, under the purpose bound into the terms. A
run id is accepted once, ever. The rows are the shared firms this node
learned in the PSI run the terms name, so a coordinator cannot choose
them. The audit log has one entry when a node joins, one when the run
starts and one when it ends (or fails): how many letters and bytes went
out, and what this node learned and kept. The label party keeps the
ranking of its firms (the order, not the scores) in its state directory; the coordinator is told the
test measures only if the label party's clause names it in `metrics_to`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from federation.errors import FederationError, InvalidRequest, PolicyDenied, ProtocolOrderError
from federation.node.audit import AuditEntry, AuditLog
from federation.node.psi_handlers import accept_once, shared_keys
from federation.policy.model import Policy, Rule, VerticalClause
from federation.psi.plan import COORDINATOR, live_rule
from federation.secagg.cohort import PeerVerifier, Signer
from federation.task import RunContext
from federation.vertical import wire
from federation.vertical.mailbox import Letters, Mailbox, Runner
from federation.vertical.program import Local, Outcome, program
from federation.vertical.rows import Inputs, inspection_measures, party_inputs
from federation.vertical.session import Advert, Keyring, Letter, Piece, Terms

JOURNAL = "vertical-runs.jsonl"
OUTPUT_DIR = "vertical"
PIECE_BYTES = 1 << 20  # a sealed letter travels in pieces of at most this
PAGE_BYTES = 3 << 20  # of letters in one reply, below the server's 4 MiB message limit


@dataclass
class VerticalRun:
    caller: str
    terms: Terms
    keyring: Keyring
    inputs: Inputs
    shared: list[str]
    clause: VerticalClause
    runner: Runner | None = None
    filed: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    partial: dict[tuple[str, int], list[bytes | None]] = field(default_factory=dict)
    outgoing: list[Piece] = field(default_factory=list)
    letters_out: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class Reply:
    letters: list[Piece]
    more: bool
    done: bool
    outcome: str = ""


class VerticalHandlers:
    def __init__(
        self,
        node_id: str,
        *,
        records: Callable[[], tuple[pd.DataFrame, Sequence[str | None], str | None]],
        policy: Callable[[], Policy],
        today: Callable[[], dt.date],
        audit: AuditLog,
        state_dir: Path,
        signer: Signer | None,
        peers: PeerVerifier | None,
    ) -> None:
        self.node_id = node_id
        self._records, self._policy, self._today = records, policy, today
        self.audit, self.state_dir = audit, state_dir
        self.signer, self.peers = signer, peers
        self._runs: dict[str, VerticalRun] = {}
        self._lock = threading.Lock()

    @contextmanager
    def _audited(self, caller: str, rpc: str, context: RunContext, *, quiet: bool = False) -> Iterator[AuditEntry]:
        """An audit entry per call (`quiet`: only if it fails); a failed call ends the run here."""
        entry = AuditEntry(caller=caller, rpc=rpc, purpose=context.purpose, run_id=context.run_id)
        try:
            yield entry
        except Exception as error:
            quiet = False
            if isinstance(error, PolicyDenied):
                entry.decision, entry.reasons = "deny", list(error.reasons)
            else:
                entry.decision = "error"
                entry.reasons = [error.public] if isinstance(error, FederationError) else ["internal error"]
            run = self._runs.get(context.run_id)
            if run is not None and run.caller == caller:
                self._runs.pop(context.run_id, None)
            raise
        finally:
            if not quiet or entry.reasons:
                self.audit.append(entry)

    def _run(self, caller: str, context: RunContext) -> VerticalRun:
        run = self._runs.get(context.run_id)
        if run is None:
            raise ProtocolOrderError(f"no vertical run {context.run_id!r} was joined here")
        if run.caller != caller:
            raise PolicyDenied([f"vertical run {context.run_id!r} was proposed by another caller"])
        return run

    def join(self, caller: str, context: RunContext, terms: Terms) -> Advert:
        with self._audited(caller, "VerticalJoin", context) as entry, self._lock:
            if self.signer is None or self.peers is None:
                raise PolicyDenied(["this node has no certificate or peer trust, so it takes part in no vertical run"])
            if terms.run_id != context.run_id or terms.purpose != context.purpose:
                raise InvalidRequest("the vertical terms are for another run or purpose than the call")
            if caller in terms.parties:
                raise PolicyDenied([f"the caller {caller!r} names itself a party of the run it relays"])
            if self.node_id not in terms.parties:
                raise PolicyDenied([f"{self.node_id!r} is not a party of vertical run {terms.run_id!r}"])
            rule = live_rule(self._policy(), caller=caller, purpose=context.purpose, today=self._today(), clause="vertical")
            if isinstance(rule, list):
                raise PolicyDenied(rule)
            assert rule.vertical is not None
            problems = self._conflicts(rule, terms)
            if problems:
                raise PolicyDenied(problems)
            shared = shared_keys(self.state_dir, terms.psi_run)
            if shared is None:
                raise PolicyDenied(
                    [f"this node learned no shared firms in PSI run {terms.psi_run!r}, so it has no rows for the run"]
                )
            frame, by_row, where = self._records()
            inputs = party_inputs(
                frame,
                by_row,
                shared,
                columns=terms.columns[self.node_id],
                target=terms.target if self.node_id == terms.label else None,
                split_seed=terms.split_seed,
                test_fraction=terms.test_fraction,
                validation_fraction=terms.validation_fraction,
                where=where or self.node_id,
            )
            accept_once(self.state_dir / JOURNAL, context.run_id, what="vertical run")
            keyring = Keyring(terms, self.node_id, len(shared), self.signer)
            self._runs[context.run_id] = VerticalRun(caller, terms, keyring, inputs, shared, rule.vertical)
            entry.rows = len(shared)
            entry.reasons = [
                f"allowed by rule {rule.name!r}: joined as {terms.role(self.node_id)} of {list(terms.parties)}",
                f"columns {list(terms.columns[self.node_id])} stay here",
                f"the {len(shared)} rows are the shared firms of PSI run {terms.psi_run!r}",
            ]
            return keyring.advert

    def _conflicts(self, rule: Rule, terms: Terms) -> list[str]:
        clause = rule.vertical
        assert clause is not None
        where = f"{self.node_id}'s rule {rule.name!r}"
        problems = []
        if clause.label_party != terms.label:
            problems.append(f"{where}: vertical.label_party is {clause.label_party!r}, the run names {terms.label!r}")
        missing = sorted(set(clause.require_parties) - set(terms.parties))
        if missing and not terms.alone:  # alone, the label party learns nothing of any other party's firms
            problems.append(f"{where}: vertical.require_parties needs {missing} in the run")
        if terms.role(self.node_id) not in clause.roles:
            problems.append(f"{where}: vertical.roles does not let this node be the {terms.role(self.node_id)}")
        denied = [
            c
            for c in terms.columns[self.node_id]
            if c in rule.columns.deny or (rule.columns.allow is not None and c not in rule.columns.allow)
        ]
        if denied:
            problems.append(f"{where}: columns {denied} are not allowed by the rule's columns")
        return problems

    def admit(self, caller: str, context: RunContext, adverts: Mapping[str, Advert]) -> Reply:
        with self._audited(caller, "VerticalAdmit", context) as entry:
            run = self._run(caller, context)
            if run.runner is not None:
                raise ProtocolOrderError("this run has started already")
            assert self.peers is not None
            run.keyring.admit(adverts, self.peers)
            local = Local(run.inputs.features, run.inputs.roles, run.keyring.streams, run.keyring.secret, run.inputs.labels)
            peers = frozenset(run.terms.parties) - {self.node_id}
            run.runner = Runner(Mailbox(self.node_id, peers), program(run.terms.plan(), self.node_id, local))
            entry.reasons = [f"admitted {len(adverts)} signed adverts; training starts as {run.terms.role(self.node_id)}"]
            return self._advance(context.run_id, run, entry)

    def exchange(self, caller: str, context: RunContext, pieces: Sequence[Piece], *, advance: bool) -> Reply:
        with self._audited(caller, "VerticalExchange", context, quiet=True) as entry:
            run = self._run(caller, context)
            if run.runner is None:
                raise ProtocolOrderError("this run's adverts have not been admitted")
            for piece in pieces:
                self._file(run, piece)
            if advance:
                return self._advance(context.run_id, run, entry)
            return self._page(context.run_id, run, entry)

    def _file(self, run: VerticalRun, piece: Piece) -> None:
        """Collect a letter's pieces; a whole letter is opened (in order, once) and its arrays filed for the program."""
        if not 0 <= piece.piece < piece.pieces <= 1 << 16:
            raise InvalidRequest(f"a letter piece numbered {piece.piece} of {piece.pieces}")
        parts = run.partial.setdefault((piece.sender, piece.sequence), [None] * piece.pieces)
        if len(parts) != piece.pieces or parts[piece.piece] is not None:
            raise InvalidRequest(f"{piece.sender[:64]}'s letter {piece.sequence} piece {piece.piece} is repeated or inconsistent")
        parts[piece.piece] = piece.data
        if any(p is None for p in parts):
            return
        del run.partial[(piece.sender, piece.sequence)]
        sealed = b"".join(p for p in parts if p is not None)
        payload = run.keyring.open(Letter(piece.sender, piece.recipient, piece.sequence, sealed))
        items = run.filed.setdefault(piece.sender, {})
        for name, value in wire.unpack(payload).items():
            if name in items:
                raise InvalidRequest(f"{piece.sender}'s {name[:64]!r} arrived twice")
            items[name] = value

    def _advance(self, run_id: str, run: VerticalRun, entry: AuditEntry) -> Reply:
        assert run.runner is not None
        if run.partial:
            raise InvalidRequest(f"{len(run.partial)} letters are missing pieces")
        letters: Letters = run.runner.step(run.filed)
        run.filed = {}
        for recipient, items in sorted(letters.items()):
            letter = run.keyring.seal(recipient, wire.pack(items))
            sealed, sequence = letter.sealed, letter.sequence
            chunks = [sealed[i : i + PIECE_BYTES] for i in range(0, max(len(sealed), 1), PIECE_BYTES)]
            run.outgoing += [Piece(self.node_id, recipient, sequence, i, len(chunks), c) for i, c in enumerate(chunks)]
            run.letters_out += 1
            run.bytes_out += len(sealed)
        return self._page(run_id, run, entry)

    def _page(self, run_id: str, run: VerticalRun, entry: AuditEntry) -> Reply:
        page: list[Piece] = []
        size = 0
        while run.outgoing and (not page or size + len(run.outgoing[0].data) <= PAGE_BYTES):
            piece = run.outgoing.pop(0)
            page.append(piece)
            size += len(piece.data)
        done = run.runner is not None and run.runner.done and not run.outgoing
        outcome = ""
        if done:
            assert run.runner is not None
            outcome = self._finish(run_id, run, run.runner.result, entry)
        return Reply(page, bool(run.outgoing), done, outcome)

    def _finish(self, run_id: str, run: VerticalRun, result: Outcome, entry: AuditEntry) -> str:
        """End the run here: keep what this node takes home, audit it, and say what the coordinator may see."""
        self._runs.pop(run_id, None)
        entry.bytes_released = run.bytes_out
        told: dict[str, object] = {"party": self.node_id, "steps": result.steps, "best_step": result.best_step}
        entry.reasons = [
            f"training ended after {result.steps} steps (kept step {result.best_step})",
            f"sent {run.letters_out} sealed letters, {run.bytes_out} bytes",
            f"kept its own {len(result.weights)} weights; learned its own gradients and the label party's stop decisions",
        ]
        if result.scores is not None and run.inputs.labels is not None:
            measures = inspection_measures(
                result.scores, run.inputs.labels, run.inputs.roles, inspect_share=run.terms.inspect_share
            )
            if run.terms.alone:  # a baseline on its own columns: nothing new was learned, and no ranking replaces the joint one
                entry.reasons.append(f"trained alone on its own columns over its {len(result.scores)} shared firms")
            else:
                path = self._keep(run_id, run, result.scores)
                entry.reasons.append(
                    f"learned the joint scores of its {len(result.scores)} shared firms; the ranking is kept in {path.name}"
                )
            if COORDINATOR in run.clause.metrics_to:
                told["test"] = measures
                told["losses"] = result.losses
                entry.reasons.append(f"told the coordinator the test measures: {json.dumps(measures)}")
        return json.dumps(told)

    def _keep(self, run_id: str, run: VerticalRun, scores: np.ndarray) -> Path:
        order = np.argsort(-scores, kind="stable")
        path = output_path(self.state_dir, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        ranking = [run.shared[i] for i in order]  # the order only: what the label party acts on
        path.write_text(json.dumps({"run_id": run_id, "psi_run": run.terms.psi_run, "ranking": ranking}, indent=1))
        return path


def output_path(state_dir: Path, run_id: str) -> Path:
    return state_dir / OUTPUT_DIR / f"{hashlib.sha256(run_id.encode()).hexdigest()[:32]}.json"
