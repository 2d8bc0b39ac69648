"""Firm keys: the 18-character unified social credit code, normalised and validated by a versioned rule.

Every party writes the code its own way (lower case, spaces, hyphens,
full-width characters), so keys are normalised before hashing: NFKC (full
width to half width), upper case, and separators (space, hyphen, dot,
underscore, slash) removed. A normalised code is valid when it has 18
characters from the code's alphabet (digits and upper-case letters without I,
O, Z, S, V) and its 18th character is the check character of GB 32100-2015:
with weights 3^(i-1) mod 31 over the first 17 characters, the check is
31 - (sum mod 31), 31 written as 0.

The rule is versioned (`RULE`): parties must hash keys normalised the same
way, so the rule's name is part of what a PSI run binds into its hash.
Invalid codes and duplicates are counted by reason, never silently dropped,
and never echoed: a quality report holds counts only.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

RULE = "uscc-gb32100-2015/v1"
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
LENGTH = 18
_SEPARATORS = str.maketrans("", "", " -._/\t")


def normalise(raw: str) -> str:
    """The canonical spelling of a code as written: half width, upper case, no separators."""
    return unicodedata.normalize("NFKC", raw).upper().translate(_SEPARATORS).strip()


def check_character(first17: str) -> str:
    """The GB 32100-2015 check character of a code's first 17 characters (all from `ALPHABET`)."""
    total = sum(VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why a normalised code is not a valid unified social credit code (None if it is); never quotes the code."""
    if len(code) != LENGTH:
        return "wrong length"
    if any(c not in VALUE for c in code):
        return "character outside the code's alphabet"
    if check_character(code[:17]) != code[17]:
        return "wrong check character"
    return None


@dataclass
class KeyReport:
    """Counts of a party's keys under `RULE`: what the quality report and the audit log may show."""

    rule: str = RULE
    total: int = 0
    valid: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0  # valid codes that appeared more than once after normalisation (extra copies)

    @property
    def unique(self) -> int:
        return self.valid - self.duplicates

    def lines(self) -> list[str]:
        parts = [f"{self.total} keys under {self.rule}: {self.unique} distinct valid codes"]
        parts += [f"{n} invalid ({why})" for why, n in sorted(self.invalid.items())]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate copies counted once")
        return parts


def prepare_keys(raw_keys: Iterable[str]) -> tuple[list[str], KeyReport]:
    """Distinct valid codes, sorted, and the report of what was left out and why."""
    report = KeyReport()
    seen: set[str] = set()
    for raw in raw_keys:
        report.total += 1
        code = normalise(raw)
        why = problem(code)
        if why is not None:
            report.invalid[why] += 1
            continue
        report.valid += 1
        if code in seen:
            report.duplicates += 1
        seen.add(code)
    return sorted(seen), report
