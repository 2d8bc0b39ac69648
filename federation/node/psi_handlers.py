"""The node's side of multi-party PSI: five calls over `psi.multi_party`, each authorised and audited.

    PsiJoin     terms -> this node's signed advert     (the policy check: nothing is hashed before it)
    PsiAdmit    every advert -> the receiver's queries (senders: nothing)
    PsiRespond  a sealed query -> a sealed response    (senders, once per run)
    PsiCombine  one sender's sealed response in        (the receiver, once per sender)
    PsiFinish   -> sealed deliveries                   (the receiver)
    PsiDeliver  a sealed delivery -> what it was told  (senders)

A run of two parties takes the chunked Diffie-Hellman protocol of
`psi.pair` instead of the last four calls, for sets of millions of keys:
PsiStream hands out one step's sealed chunks and PsiFeed takes the
other party's, in the order the coordinator relays them; PsiFinish ends it.

Every call after PsiJoin must come from the caller that proposed the run,
which may not itself be a party (it would be a receiver probing keys it
chose), under the purpose bound into the terms. A run id is accepted once,
ever (a journal in the state directory): that stops literal replays; what
stops a coordinator from re-asking over a subset of the parties, to learn a
pairwise overlap, is `psi.require_parties` in each policy. Every
disclosure (the sizes sent, who will learn what, what this node learned) is
an audit entry. A node keeps the shared keys it learned, for the vertical
run that follows; it never sends them anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from federation.errors import FederationError, InvalidRequest, PolicyDenied, ProtocolOrderError
from federation.node.audit import AuditEntry, AuditLog
from federation.node.keys import FirmKeys
from federation.policy.model import Policy
from federation.psi.multi_party import COUNT, MEMBERSHIP, REFUSED, Delivery, Receiver, Sender
from federation.psi.pair import ANSWER, DELIVERY, OWN, Chunk, PairReceiver, PairSender
from federation.psi.plan import Granted, clause_conflicts, grant
from federation.psi.session import Advert, Party, Terms
from federation.secagg.cohort import PeerVerifier, Signer
from federation.task import RunContext

JOURNAL = "psi-runs.jsonl"  # every run id this node ever joined
SHARED_DIR = "psi"  # the shared keys learned, one file per run


@dataclass
class PsiRun:
    caller: str
    granted: Granted
    party: Party
    responses: dict[str, bytes] = field(default_factory=dict)
    busy: threading.Lock = field(default_factory=threading.Lock)  # one chunked step at a time


def _told(delivery: Delivery) -> str:
    if delivery.status == MEMBERSHIP:
        return f"learned which of its firms are shared: {delivery.count}"
    if delivery.status == COUNT:
        return f"learned how many firms are shared: {delivery.count}"
    if delivery.status == REFUSED:
        return "learned nothing: the intersection was below a party's minimum size"
    return "learned nothing of the intersection (the terms grant it nothing)"


class PsiHandlers:
    """What a node answers in a PSI run; `keys` and `policy` come from the runtime, loaded when the node starts.

    A changed policy therefore applies after a restart, as for every other call.
    """

    def __init__(
        self,
        node_id: str,
        *,
        keys: Callable[[], FirmKeys],
        policy: Callable[[], Policy],
        today: Callable[[], dt.date],
        audit: AuditLog,
        state_dir: Path,
        signer: Signer | None,
        peers: PeerVerifier | None,
    ) -> None:
        self.node_id = node_id
        self._keys, self._policy, self._today = keys, policy, today
        self.audit = audit
        self.state_dir = state_dir
        self.signer, self.peers = signer, peers
        self._runs: dict[str, PsiRun] = {}
        self._lock = threading.Lock()

    @contextmanager
    def _audited(self, caller: str, rpc: str, context: RunContext) -> Iterator[AuditEntry]:
        """One audit entry per call; a failed step ends the run here, so nothing more is answered for it."""
        entry = AuditEntry(caller=caller, rpc=rpc, purpose=context.purpose, run_id=context.run_id)
        try:
            yield entry
        except Exception as error:
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
            self.audit.append(entry)

    def _run(self, caller: str, context: RunContext) -> PsiRun:
        run = self._runs.get(context.run_id)
        if run is None:
            raise ProtocolOrderError(f"no PSI run {context.run_id!r} was joined here")
        if run.caller != caller:
            raise PolicyDenied([f"PSI run {context.run_id!r} was proposed by another caller"])
        return run

    def join(self, caller: str, context: RunContext, terms: Terms) -> Advert:
        with self._audited(caller, "PsiJoin", context) as entry, self._lock:
            if self.signer is None or self.peers is None:
                raise PolicyDenied(["this node has no certificate or peer trust, so it takes part in no PSI"])
            if terms.run_id != context.run_id or terms.purpose != context.purpose:
                raise InvalidRequest("the PSI terms are for another run or purpose than the call")
            if caller in terms.parties:
                raise PolicyDenied([f"the caller {caller!r} names itself a party of the run it relays"])
            answer = grant(self._policy(), caller=caller, purpose=context.purpose, today=self._today())
            if isinstance(answer, list):
                raise PolicyDenied(answer)
            problems = clause_conflicts(self.node_id, answer, terms.disclosure, terms.parties)
            if problems:
                raise PolicyDenied(problems)
            keys = self._keys()
            if terms.rule != keys.report.rule:
                raise PolicyDenied([f"the run asks for keys under {terms.rule!r}; this node's keys follow {keys.report.rule!r}"])
            accept_once(self.state_dir / JOURNAL, context.run_id, what="PSI run")
            pair = len(terms.parties) == 2
            role = (PairReceiver if pair else Receiver) if terms.receiver == self.node_id else (PairSender if pair else Sender)
            assert answer.clause is not None  # clause_conflicts refuses a rule without one
            party = role(terms, keys.distinct, min_intersection=answer.clause.min_intersection, signer=self.signer)
            self._runs[context.run_id] = PsiRun(caller, answer, party)
            entry.reasons = [
                f"allowed by rule {answer.rule!r}: joined as {role.__name__.lower()} of {list(terms.parties)}",
                f"disclosed its set size: {len(party.keys)} distinct keys ({'; '.join(keys.report.lines())})",
                f"membership to {list(terms.disclosure.membership)}, count to {list(terms.disclosure.count)}",
            ]
            return party.advert

    def admit(self, caller: str, context: RunContext, adverts: Mapping[str, Advert]) -> dict[str, bytes]:
        with self._audited(caller, "PsiAdmit", context) as entry:
            run = self._run(caller, context)
            assert self.peers is not None
            run.party.admit(adverts, self.peers)
            entry.reasons = [f"admitted {len(adverts)} signed adverts; set sizes {run.party.sizes}"]
            if isinstance(run.party, Receiver):
                queries = run.party.queries()
                entry.bytes_released = sum(len(q) for q in queries.values())
                return queries
            return {}

    def _sender(self, caller: str, context: RunContext) -> tuple[PsiRun, Sender]:
        run = self._run(caller, context)
        if not isinstance(run.party, Sender):
            raise ProtocolOrderError("the receiver of a PSI run answers no query and is delivered nothing")
        return run, run.party

    def _receiver(self, caller: str, context: RunContext) -> tuple[PsiRun, Receiver]:
        run = self._run(caller, context)
        if not isinstance(run.party, Receiver):
            raise ProtocolOrderError("only the receiver of a PSI run combines responses and finishes it")
        return run, run.party

    def respond(self, caller: str, context: RunContext, query: bytes) -> bytes:
        with self._audited(caller, "PsiRespond", context) as entry:
            _, sender = self._sender(caller, context)
            response = sender.respond(query)
            entry.bytes_released = len(response)
            entry.reasons = [f"answered {sender.terms.receiver}'s query once, sealed for it alone"]
            return response

    def combine(self, caller: str, context: RunContext, sender: str, response: bytes) -> None:
        """Keep one sender's sealed response (one call each keeps every message small)."""
        with self._audited(caller, "PsiCombine", context) as entry:
            run, receiver = self._receiver(caller, context)
            if sender not in receiver.terms.senders or sender in run.responses:
                raise InvalidRequest(f"{sender[:64]!r} is not a sender of this run still to be heard from")
            run.responses[sender] = response
            entry.reasons = [f"received {sender}'s sealed response ({len(response)} bytes)"]

    def finish(self, caller: str, context: RunContext) -> tuple[dict[str, bytes], int | None]:
        """(sealed deliveries by party, the count if the coordinator may see it)."""
        with self._audited(caller, "PsiFinish", context) as entry:
            run = self._run(caller, context)
            receiver = run.party
            if isinstance(receiver, PairReceiver):
                outcome = receiver.finish({self.node_id: run.granted})
            elif isinstance(receiver, Receiver):
                outcome = receiver.finish(run.responses, {self.node_id: run.granted})
            else:
                raise ProtocolOrderError("only the receiver of a PSI run combines responses and finishes it")
            pair = isinstance(receiver, PairReceiver)  # its delivery is streamed next, so the run stays open until then
            entry.reasons = [self._conclude(context.run_id, run, outcome.delivery, end=not pair)]
            if outcome.refusal is not None:
                entry.reasons.append(outcome.refusal)
            if outcome.coordinator_count is not None:
                entry.reasons.append(f"the coordinator is told the count: {outcome.coordinator_count}")
            return outcome.sealed, outcome.coordinator_count

    def deliver(self, caller: str, context: RunContext, sealed: bytes) -> str:
        """Take the receiver's delivery; tell the caller only what the terms granted, never whether it was refused."""
        with self._audited(caller, "PsiDeliver", context) as entry:
            run, sender = self._sender(caller, context)
            delivery = sender.accept(sealed)
            entry.reasons = [self._conclude(context.run_id, run, delivery)]
            return sender.terms.learns(self.node_id)

    def stream(self, caller: str, context: RunContext, step: str) -> Iterator[Chunk]:
        """One step's sealed chunks of a two-party run; audited before the first chunk leaves."""
        with self._audited(caller, "PsiStream", context) as entry:
            run = self._run(caller, context)
            party = run.party
            if step == OWN and isinstance(party, PairReceiver | PairSender):
                chunks, points = party.own(), len(party.keys)
            elif step == ANSWER and isinstance(party, PairSender):
                chunks, points = party.answers(), party.sizes[party.terms.receiver]
            elif step == DELIVERY and isinstance(party, PairReceiver):
                chunks, points = party.delivery(), 0
            else:
                raise ProtocolOrderError(f"this party of run {context.run_id!r} streams no {step[:40]!r} chunks")
            if not run.busy.acquire(blocking=False):
                raise ProtocolOrderError(f"another chunked step of run {context.run_id!r} is in progress")
            try:
                first = next(chunks)  # the step's checks run here, before the entry says what leaves
            except BaseException:
                run.busy.release()
                raise
            entry.reasons = [f"sends its {step} chunks to {party.peer}, sealed for it alone ({points} points)"]
        try:
            yield first
            yield from chunks
        except Exception:
            self._runs.pop(context.run_id, None)
            raise
        finally:
            run.busy.release()
        if step == DELIVERY:  # the receiver's last step
            self._runs.pop(context.run_id, None)

    def feed(self, caller: str, context: RunContext, step: str, chunks: Iterator[Chunk]) -> str:
        """The other party's chunks of one step, taken in order; the delivery ends the run at the sender."""
        with self._audited(caller, "PsiFeed", context) as entry:
            run = self._run(caller, context)  # before a single chunk is read
            if not run.busy.acquire(blocking=False):
                raise ProtocolOrderError(f"another chunked step of run {context.run_id!r} is in progress")
            try:
                return self._take(context, run, step, chunks, entry)
            finally:
                run.busy.release()

    def _take(self, context: RunContext, run: PsiRun, step: str, chunks: Iterator[Chunk], entry: AuditEntry) -> str:
        party = run.party
        taken = 0
        if step in (OWN, ANSWER) and isinstance(party, PairReceiver):
            for chunk in chunks:
                party.take(step, chunk)
                taken += 1
        elif step == OWN and isinstance(party, PairSender):
            for chunk in chunks:
                party.answer(chunk)
                taken += 1
        elif step == DELIVERY and isinstance(party, PairSender):
            delivery = party.accept(chunks)
            entry.reasons = [self._conclude(context.run_id, run, delivery)]
            return party.terms.learns(self.node_id)
        else:
            raise ProtocolOrderError(f"this party of run {context.run_id!r} takes no {step[:40]!r} chunks")
        entry.reasons = [f"took {taken} {step} chunks from {party.peer}"]
        return ""

    def _conclude(self, run_id: str, run: PsiRun, delivery: Delivery, *, end: bool = True) -> str:
        """End the run here, keeping the shared keys if this node learned them; what it learned, in words."""
        if delivery.status == MEMBERSHIP and delivery.shared is not None:
            self._keep(run_id, [run.party.keys[i] for i in delivery.shared])
        if end:
            self._runs.pop(run_id, None)
        return _told(delivery)

    def _keep(self, run_id: str, shared: list[str]) -> None:
        path = _shared_path(self.state_dir, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"run_id": run_id, "shared": sorted(shared)}))

    def shared_keys(self, run_id: str) -> list[str] | None:
        return shared_keys(self.state_dir, run_id)


def accept_once(path: Path, run_id: str, *, what: str) -> None:
    """Refuse a run id seen before in the journal at `path`; record it before any work is done for it."""
    seen = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    if run_id in seen:
        raise InvalidRequest(f"{what} {run_id!r} was already run here; a run id is accepted once")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as journal:
        journal.write(json.dumps({"run_id": run_id}) + "\n")


def _shared_path(state_dir: Path, run_id: str) -> Path:
    """A file name from the run id's hash: a run id may hold characters no file name should."""
    return state_dir / SHARED_DIR / f"{hashlib.sha256(run_id.encode()).hexdigest()[:32]}.json"


def shared_keys(state_dir: Path, run_id: str) -> list[str] | None:
    """The firm keys a node learned it shares in run `run_id` (None: it learned none)."""
    path = _shared_path(state_dir, run_id)
    return list(json.loads(path.read_text())["shared"]) if path.exists() else None
