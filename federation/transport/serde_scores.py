"""Evaluation results on the wire: a model's sums on a node's test rows, and on its validation rows."""

from __future__ import annotations

from federation.errors import InvalidRequest
from federation.models.evaluation import HISTOGRAM_BINS, EvalSums, Scores
from federation.proto.v1 import node_pb2 as pb


def _sums_to_pb(sums: EvalSums) -> pb.EvaluateReply:
    return pb.EvaluateReply(
        count=sums.count,
        loss_sum=sums.loss_sum,
        correct=sums.correct,
        positives=sums.positives,
        positive_histogram=list(sums.positive_histogram),
        negative_histogram=list(sums.negative_histogram),
        abs_error_sum=sums.abs_error_sum,
        target_sum=sums.target_sum,
        target_squares=sums.target_squares,
    )


def _sums_from_pb(message: pb.EvaluateReply) -> EvalSums:
    if len(message.positive_histogram) != HISTOGRAM_BINS or len(message.negative_histogram) != HISTOGRAM_BINS:
        raise InvalidRequest(f"evaluation histograms must have {HISTOGRAM_BINS} bins")
    return EvalSums(
        count=message.count,
        loss_sum=message.loss_sum,
        correct=message.correct,
        positives=message.positives,
        positive_histogram=tuple(message.positive_histogram),
        negative_histogram=tuple(message.negative_histogram),
        abs_error_sum=message.abs_error_sum,
        target_sum=message.target_sum,
        target_squares=message.target_squares,
    )


def scores_to_pb(scores: Scores) -> pb.EvaluateReply:
    message = _sums_to_pb(scores.test)
    if scores.validation is not None:
        message.validation.CopyFrom(_sums_to_pb(scores.validation))
    return message


def scores_from_pb(message: pb.EvaluateReply) -> Scores:
    validation = _sums_from_pb(message.validation) if message.HasField("validation") else None
    return Scores(_sums_from_pb(message), validation)
