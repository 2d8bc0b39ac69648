"""Every party's program run in one process, mail passed by hand: the reference a networked run must reproduce.

The router here does what the coordinator does over gRPC: it starts every
party, then keeps waking each party that has mail with the mail it has,
until every program has ended. `transcript` keeps what each party was sent,
for the tests that show what a party sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.errors import ProtocolOrderError
from federation.vertical.mailbox import Letters, Mailbox, Runner
from federation.vertical.program import Local, Plan, program


def route(outgoing: Mapping[str, Letters]) -> dict[str, Letters]:
    """Sender -> recipient -> name -> array, turned round to recipient -> sender -> name -> array."""
    inboxes: dict[str, Letters] = {}
    for sender, letters in outgoing.items():
        for recipient, items in letters.items():
            inboxes.setdefault(recipient, {})[sender] = dict(items)
    return inboxes


def drive(runners: Mapping[str, Runner], transcript: dict[str, list[Letters]] | None = None) -> dict[str, Any]:
    """Run until every program ends; a round where nobody has mail and somebody still waits is a stalled run."""
    mail: dict[str, Letters] = {name: {} for name in runners}
    awake = set(runners)
    while True:
        outgoing = {name: runners[name].step(mail.get(name, {})) for name in sorted(awake)}
        mail = route(outgoing)
        if transcript is not None:
            for name, letters in mail.items():
                transcript.setdefault(name, []).append(letters)
        unknown = sorted(set(mail) - set(runners))
        if unknown:
            raise ProtocolOrderError(f"mail for {unknown}, who are not parties of the run")
        awake = set(mail)
        if not awake:
            waiting = sorted(name for name, runner in runners.items() if not runner.done)
            if waiting:
                raise ProtocolOrderError(f"the run stalled: {waiting} still wait for mail that nobody sent")
            return {name: runner.result for name, runner in runners.items()}


def run(plan: Plan, locals_: Mapping[str, Local], transcript: dict[str, list[Letters]] | None = None) -> dict[str, Any]:
    """Every party's Outcome, keyed by party."""
    peers = frozenset(plan.owners)
    runners = {name: Runner(Mailbox(name, peers - {name}), program(plan, name, local)) for name, local in locals_.items()}
    return drive(runners, transcript)
