"""What a node says about what it releases: rounded counts, tensor mismatches in words, audit sizes."""

from __future__ import annotations

from federation.models.evaluation import Scores

TensorSpecs = tuple[tuple[str, str, tuple[int, ...]], ...]


def rounded(count: int) -> int:
    """Record counts leave the node rounded to two significant digits."""
    if count < 10:
        return 10 if count else 0
    digits = len(str(count)) - 2
    return int(round(count, -digits))


def first_difference(announced: TensorSpecs, expected: TensorSpecs) -> str:
    """Why an announced tensor list is not the task's model, in words (names, dtypes and shapes only)."""
    if len(announced) != len(expected):
        return f"{len(announced)} tensor(s) announced, the accepted task's model has {len(expected)}"
    for (name, dtype, shape), (want_name, want_dtype, want_shape) in zip(announced, expected, strict=True):
        if (name, dtype, shape) != (want_name, want_dtype, want_shape):
            return (
                f"tensor {name!r} announced as {dtype} with shape {list(shape)}; "
                f"the accepted task's model has {want_name!r} as {want_dtype} with shape {list(want_shape)}"
            )
    return "the announced tensors are not the accepted task's model"


def released(scores: Scores) -> tuple[int, int]:
    """Rows a result summarises and the bytes of sums that leave with it, for the audit entry."""
    parts = [s for s in (scores.test, scores.validation) if s is not None]
    return sum(s.count for s in parts), sum(8 * (7 + 2 * len(s.positive_histogram)) for s in parts)
