"""federation.psi.uscc: normalising and validating unified social credit codes (pure)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.psi.uscc import ALPHABET, RULE, check_character, normalise, prepare_keys, problem

# A code with a correct check character, built from the rule rather than copied from a register.
BODY = "91350100M000100Y4"
VALID = BODY + check_character(BODY)


def codes(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    bodies = ["".join(rng.choice(ALPHABET) for _ in range(17)) for _ in range(n)]
    return [b + check_character(b) for b in bodies]


def test_the_check_character_follows_the_weights_of_gb_32100() -> None:
    total = sum(ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(BODY))
    assert ALPHABET.index(VALID[17]) == (31 - total % 31) % 31
    assert problem(VALID) is None and RULE.startswith("uscc-gb32100-2015")


@given(st.integers(min_value=0, max_value=16), st.sampled_from(ALPHABET))
def test_changing_any_one_character_breaks_the_check(position: int, replacement: str) -> None:
    if VALID[position] == replacement:
        return
    changed = VALID[:position] + replacement + VALID[position + 1 :]
    assert problem(changed) == "wrong check character"


@pytest.mark.parametrize(
    "written",
    [VALID.lower(), " ".join(VALID), VALID[:6] + "-" + VALID[6:], "".join(chr(ord(c) + 0xFEE0) for c in VALID)],
    ids=["lower case", "spaces", "hyphen", "full width"],
)
def test_each_partys_spelling_normalises_to_the_same_code(written: str) -> None:
    assert normalise(written) == VALID


def test_invalid_codes_and_duplicates_are_counted_by_reason_never_dropped_silently() -> None:
    good = codes(5, seed=1)
    raw = [*good, good[0].lower(), good[1], "12345", VALID[:17] + ("0" if VALID[17] != "0" else "1"), VALID[:16] + "IO"]
    keys, report = prepare_keys(raw)
    assert keys == sorted(good)
    assert report.total == len(raw) and report.valid == 7 and report.duplicates == 2 and report.unique == 5
    assert report.invalid == {"wrong length": 1, "wrong check character": 1, "character outside the code's alphabet": 1}
    assert all(code not in " ".join(report.lines()) for code in good)  # counts only, never a code
