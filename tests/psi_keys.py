"""Valid, distinct unified social credit codes for PSI tests."""

from __future__ import annotations

import random

from federation.psi.uscc import check_character


def firm_codes(n: int, rng: random.Random) -> list[str]:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    out = set()
    while len(out) < n:
        body = "".join(rng.choice(alphabet) for _ in range(17))
        out.add(body + check_character(body))
    return sorted(out)
