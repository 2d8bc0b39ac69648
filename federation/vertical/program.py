"""One party's part of a vertical logistic-regression run, as a program that only sends and receives arrays.

Roles (public, in the terms): the label party is compute party 0, one
feature party is compute party 1, a third party is the helper (it deals
correlated randomness, `dealer`), and every party, these three included,
owns columns. Per full-batch step:

1. each owner j computes t_j = X_j w_j / 16 (weights scaled into its
   budget) and inputs it as shares: party 0 expands its share from a
   stream it shares with j, party 1 is sent the rest;
2. the compute parties evaluate sigmoid and the series log-loss on shares
   (6 product and 6 truncation openings, `sigmoid`), then one product with
   the label party's private row weights (train rows with a label, and
   validation rows with a label, so not even which labels are missing shows);
3. each owner is sent two shares of X_j^T r (`matvec`), adds them, and
   steps its weights; nobody else sees its gradient;
4. on evaluation steps party 1 sends its share of the summed validation
   loss to the label party, which alone learns it, decides whether to stop,
   and tells every party (the control message) which step's weights to keep.

Then each owner inputs its score share once more and the label party alone
learns the joint scores of the shared firms, its declared output.

Threat model (honest-but-curious parties): no two of the label party,
compute party 1 and the helper collude; any other party may collude with
any one of them. Each compute party sees only uniform shares and openings
masked by the helper's randomness; the helper sees only shapes; an owner
sees its own gradient and the control messages; the coordinator routes
sealed letters and sees their sizes, which the terms fix, and the step at
which training stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field

import numpy as np

from federation.vertical import beaver, matvec, truncate
from federation.vertical.align import TRAIN, VALIDATION
from federation.vertical.dealer import Dealer, Request, Source, corrections
from federation.vertical.logistic import MIN_IMPROVEMENT, Party
from federation.vertical.mailbox import Mailbox
from federation.vertical.reference import Settings, fit_float
from federation.vertical.ring import FRACTION, RING, decode, encode, stream
from federation.vertical.rows import Inputs
from federation.vertical.sigmoid import BOUND, TRUNCATION_BITS, coefficients, schedule, series_share, softplus_coefficients

Wait = Generator[None, None, np.ndarray]
LIFT = np.uint64(1 << FRACTION)


@dataclass(frozen=True)
class Plan:
    """What every party agreed to (public): the roles, the columns' widths and budgets, and the training settings."""

    owners: tuple[str, ...]
    label: str
    compute: str
    helper: str
    widths: Mapping[str, int]
    budgets: Mapping[str, float]
    learning_rate: float
    l2: float
    max_steps: int
    every: int = 5
    patience: int = 4

    def requests(self, step: int, rows: int) -> list[Request]:
        """Every draw of the helper's randomness one step uses, in the order the compute parties use it."""
        out: list[Request] = []
        for index, level in enumerate(schedule()):
            out.append(("triple", f"{step}/product/{index}", (len(level) + (index == 0), rows)))
            out.append(("truncation", f"{step}/truncate/{index}", (len(level), rows)))
        out += [("truncation", f"{step}/truncate/final", (rows,)), ("triple", f"{step}/weigh", (2, rows))]
        return [*out, ("step", f"{step}/matvec", (rows,))]


@dataclass
class Local:
    """What only this party holds: its prepared columns, the split it derived, its pairwise keys, its labels."""

    features: np.ndarray
    roles: np.ndarray
    keys: Mapping[str, bytes]  # the stream key this party shares with each peer
    secret: bytes  # a key of its own (the helper's pad for its own columns)
    labels: np.ndarray | None = None  # the label party's; NaN where a firm has no label


@dataclass
class Outcome:
    """What a party takes home: its own weights; the label party also the losses it saw and the scores."""

    weights: np.ndarray
    steps: int
    best_step: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    scores: np.ndarray | None = None


def program(plan: Plan, me: str, local: Local) -> Callable[[Mailbox], Generator[None, None, Outcome]]:
    """`me`'s part of the run, for a `mailbox.Runner`; the label party alone trains in float and sends nothing."""
    if plan.owners == (me,):
        return lambda mailbox: _alone(plan, me, local)
    return lambda mailbox: _Party(plan, me, local, mailbox).run()


def _alone(plan: Plan, me: str, local: Local) -> Generator[None, None, Outcome]:
    settings = Settings(plan.learning_rate, plan.l2, plan.max_steps, plan.every, plan.patience)
    fitted = fit_float({me: Inputs(local.features, local.roles, local.labels)}, me, settings)
    history = fitted.history
    return Outcome(fitted.weights[me], history.steps, history.best_step, history.losses, fitted.scores)
    yield  # a generator like every other part, though it never waits


class _Party:
    def __init__(self, plan: Plan, me: str, local: Local, mailbox: Mailbox) -> None:
        self.plan, self.me, self.local, self.mail = plan, me, local, mailbox
        self.rows = len(local.roles)
        self.model = Party(me, local.features, plan.budgets[me])
        self.index = {plan.label: 0, plan.compute: 1}.get(me)
        self.computes = (plan.label, plan.compute)
        self.n_train = max(int(np.sum(local.roles == TRAIN)), 1)
        self.evaluates = bool(np.any(local.roles == VALIDATION))
        if self.index is not None:
            self.other = plan.compute if self.index == 0 else plan.label
            self.source = Source(self.index, local.keys[plan.helper])
        if me == plan.helper:
            self.dealer = Dealer(local.keys[plan.label], local.keys[plan.compute])

    # --- the run -------------------------------------------------------------------------------------------

    def run(self) -> Generator[None, None, Outcome]:
        padded, pad_shares = yield from self._setup()
        kept: dict[int, np.ndarray] = {}
        losses: list[tuple[int, float]] = []
        best, waited, best_step, step = np.inf, 0, 0, 0
        while True:
            t = self.model.partial_score() / BOUND
            if step % self.plan.every == 0:
                kept[step] = self.model.weights.copy()
            if self.me == self.plan.helper:
                self._deal(step)
            share = yield from self._input(f"{step}/input", t)
            gradients: dict[str, np.ndarray] = {}
            loss = np.zeros(1, dtype=RING)
            if self.index is not None:
                yield from self._receive_dealt(step)
                gradients, loss = yield from self._compute(step, share, padded, pad_shares)
                for owner, gradient in gradients.items():
                    if owner != self.me:
                        self.mail.send(owner, f"{step}/gradient", gradient)
            gradient = yield from self._gradient(step, gradients.get(self.me))
            self.model.weights -= self.plan.learning_rate * (gradient + self.plan.l2 * self.model.weights)
            if self.index == 0:
                checked = step % self.plan.every == 0 and self.evaluates
                stop = step + 1 >= self.plan.max_steps
                if checked:
                    value = yield from self._validation_loss(step, loss)
                    losses.append((step, value))
                    if value < best - MIN_IMPROVEMENT:
                        best, waited, best_step = value, 0, step
                    else:
                        waited += 1
                        stop = stop or waited >= self.plan.patience
                control = np.array([int(stop), best_step], dtype=RING)
                for peer in self.plan.owners:
                    if peer != self.me:
                        self.mail.send(peer, f"{step}/control", control)
            else:
                if self.index == 1 and step % self.plan.every == 0 and self.evaluates:
                    self.mail.send(self.plan.label, f"{step}/loss", loss)
                control = yield from self.mail.receive(self.plan.label, f"{step}/control", (2,))
                stop, best_step = bool(control[0]), int(control[1])
                if best_step not in kept:
                    raise ValueError(f"the label party named step {best_step}, which was not an evaluation step")
            step += 1
            if stop:
                break
        self.model.weights = kept[best_step]
        share = yield from self._input("score", self.model.partial_score() / BOUND)
        scores = None
        if self.index == 1:
            self.mail.send(self.plan.label, "score/total", share)
        elif self.index == 0:
            theirs = yield from self.mail.receive(self.plan.compute, "score/total", (self.rows,))
            scores = BOUND * decode(share + theirs)
        return Outcome(self.model.weights, step, best_step, losses, scores)

    # --- steps ----------------------------------------------------------------------------------------------

    def _setup(self) -> Generator[None, None, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Every owner's padded columns E = X - A to both compute parties; the helper's shares of each A to party 1."""
        plan, me = self.plan, self.me
        own_pad = self._pad(me, (self.rows, plan.widths[me]))
        mine = np.asarray(encode(self.local.features) - own_pad, dtype=RING)
        for peer in self.computes:
            if peer != me:
                self.mail.send(peer, "setup/padded", mine)
        if me == plan.helper:
            for owner in plan.owners:
                for name, value in self.dealer.pad(owner, self._pad(owner, (self.rows, plan.widths[owner]))).items():
                    self.mail.send(plan.compute, "dealt/" + name, value)
        padded: dict[str, np.ndarray] = {}
        shares: dict[str, np.ndarray] = {}
        if self.index is None:
            return padded, shares
        for owner in plan.owners:
            shape = (self.rows, plan.widths[owner])
            padded[owner] = mine if owner == me else (yield from self.mail.receive(owner, "setup/padded", shape))
            if self.index == 1:
                value = yield from self.mail.receive(plan.helper, f"dealt/pad/{owner}", shape)
                self.source.receive({f"pad/{owner}": value})
            shares[owner] = self.source.pad(owner, shape)
        return padded, shares

    def _pad(self, owner: str, shape: tuple[int, int]) -> np.ndarray:
        """Owner's pad A: from the stream it shares with the helper (the helper's own from its own key)."""
        key = (
            self.local.secret
            if owner == self.plan.helper
            else self.local.keys[owner if self.me == self.plan.helper else self.plan.helper]
        )
        return stream(key, b"pad/" + owner.encode(), shape)

    def _deal(self, step: int) -> None:
        pads = {owner: self._pad(owner, (self.rows, self.plan.widths[owner])) for owner in self.plan.owners}
        for name, value in self.dealer.deal(self.plan.requests(step, self.rows), pads).items():
            self.mail.send(self.plan.compute, "dealt/" + name, value)

    def _receive_dealt(self, step: int) -> Generator[None, None, None]:
        if self.index != 1:
            return
        for name, shape in corrections(self.plan.requests(step, self.rows), self.plan.widths).items():
            self.source.receive({name: (yield from self.mail.receive(self.plan.helper, "dealt/" + name, shape))})

    def _input(self, label: str, t: np.ndarray) -> Wait:
        """Input t as shares; returns this compute party's share of the sum over every owner (others: an empty array)."""
        plan = self.plan
        if self.index is None:
            self.mail.send(plan.compute, label, encode(t) - stream(self.local.keys[plan.label], label.encode(), t.shape))
            return np.zeros(0, dtype=RING)
        total = encode(t)
        for owner in plan.owners:
            if owner in self.computes:
                continue
            if self.index == 0:
                total = total + stream(self.local.keys[owner], label.encode(), t.shape)
            else:
                total = total + (yield from self.mail.receive(owner, label, t.shape))
        return np.asarray(total, dtype=RING)

    def _open(self, name: str, mine: np.ndarray) -> Wait:
        self.mail.send(self.other, name, mine)
        theirs = yield from self.mail.receive(self.other, name, mine.shape)
        return np.asarray(mine + theirs, dtype=RING)

    def _truncated(self, label: str, value: np.ndarray) -> Wait:
        pair = self.source.truncation(label, value.shape)
        p = self.index
        assert p is not None
        opened = yield from self._open(label, truncate.masked(value, pair, party=p, bits=TRUNCATION_BITS))
        return truncate.finish(opened, pair, party=p, bits=TRUNCATION_BITS, shift=FRACTION)

    def _product(self, label: str, x: np.ndarray, y: np.ndarray) -> Wait:
        triple = self.source.triple(label, x.shape)
        e, f = beaver.masked(x, y, triple)
        opened = yield from self._open(label, np.stack([e, f]))
        assert self.index is not None
        return beaver.finish(opened[0], opened[1], triple, party=self.index)

    def _compute(
        self, step: int, t: np.ndarray, padded: dict[str, np.ndarray], pad_shares: dict[str, np.ndarray]
    ) -> Generator[None, None, tuple[dict[str, np.ndarray], np.ndarray]]:
        """This compute party's shares of every owner's X_j^T r and of the summed validation loss."""
        first = self.index == 0
        zeros = np.zeros(self.rows, dtype=RING)
        y = encode(np.nan_to_num(self.local.labels)) if first and self.local.labels is not None else zeros
        terms: dict[int, np.ndarray] = {0: encode(np.ones(self.rows)) if first else zeros, 1: t}
        label_score = zeros
        for index, level in enumerate(schedule()):
            x = np.stack([terms[m] for _, m, _ in level] + ([y] if index == 0 else []))
            z = np.stack([terms[n] for _, _, n in level] + ([t] if index == 0 else []))
            product = yield from self._product(f"{step}/product/{index}", x, z)
            if index == 0:
                label_score, product = product[-1], product[:-1]
            lower = np.stack([terms[m - n] for _, m, n in level])
            built = yield from self._truncated(f"{step}/truncate/{index}", np.uint64(2) * product - lower * LIFT)
            terms.update({k: built[i] for i, (k, _, _) in enumerate(level)})
        probability = yield from self._truncated(f"{step}/truncate/final", series_share(terms, coefficients()))
        loss_terms = np.uint64(int(BOUND)) * (series_share(terms, softplus_coefficients()) - label_score)
        weighted = yield from self._product(f"{step}/weigh", np.stack([probability - y, loss_terms]), self._row_weights())
        r, loss = weighted[0], np.array([np.sum(weighted[1], dtype=RING)], dtype=RING)
        steps = {
            owner: self.source.product_step(f"{step}/matvec", self.rows, self.plan.widths[owner], owner)
            for owner in self.plan.owners
        }
        opened = yield from self._open(f"{step}/matvec", matvec.masked(r, steps[self.plan.owners[0]]))
        p = 0 if first else 1
        grads = {o: matvec.finish(padded[o], pad_shares[o], opened, steps[o], party=p) for o in self.plan.owners}
        return grads, loss

    def _row_weights(self) -> np.ndarray:
        """The label party's 0/1 weights of each firm in the gradient and in the loss (its share; party 1's is 0)."""
        if self.index != 0 or self.local.labels is None:
            return np.zeros((2, self.rows), dtype=RING)
        known = np.isfinite(self.local.labels)
        return np.stack([known & (self.local.roles == TRAIN), known & (self.local.roles == VALIDATION)]).astype(RING)

    def _gradient(self, step: int, own: np.ndarray | None) -> Wait:
        width = self.plan.widths[self.me]
        total = np.zeros(width, dtype=RING) if own is None else own
        for peer in self.computes:
            if peer != self.me:
                total = total + (yield from self.mail.receive(peer, f"{step}/gradient", (width,)))
        return decode(total, fraction=2 * FRACTION) / self.n_train

    def _validation_loss(self, step: int, mine: np.ndarray) -> Generator[None, None, float]:
        theirs = yield from self.mail.receive(self.plan.compute, f"{step}/loss", (1,))
        assert self.local.labels is not None
        count = int(np.sum(np.isfinite(self.local.labels) & (self.local.roles == VALIDATION)))
        return float(decode(mine + theirs, fraction=2 * FRACTION)[0]) / max(count, 1)
