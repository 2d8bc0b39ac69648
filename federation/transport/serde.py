"""Conversion between wire messages and the project's own values.

`_pb2` types stop here: handlers and coordinator logic see only `task`,
`replies` and `models.evaluation` values. Every conversion from the wire
validates, so a malformed message becomes `InvalidRequest`, never an
unexpected exception; and every string, byte string and list from a request
has a bound here, before it can reach a handler, an error message, a log
line or the audit log (run ids and purposes are bounded by `task.RunContext`).
Secure aggregation's messages convert in `serde_secagg`, scores in `serde_scores`.
"""

from __future__ import annotations

from google.protobuf import struct_pb2

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.replies import FeatureStats, FieldDescription, NodeDescription, ProposalAnswer, QualitySummary
from federation.task import (
    CRITERIA,
    FeatureScaling,
    ModelSpec,
    ParamValue,
    PrivacySpec,
    RecordPrivacy,
    RunContext,
    TaskSpec,
)
from federation.transport.bounds import bounded_count, bounded_name, bounded_names
from federation.transport.streaming import MAX_DIMS, MAX_TENSORS

MAX_FEATURES = 256  # features of one task; a schema has a few dozen fields
MAX_COLUMNS = 1024  # encoded columns of a feature scaling (categories one-hot)
MAX_PARAMS = 16  # hyperparameters of one model spec
MAX_PARAM_LIST = 64  # numbers in one list-valued hyperparameter


def context_to_pb(context: RunContext) -> pb.RunContext:
    return pb.RunContext(run_id=context.run_id, purpose=context.purpose, round=context.round)


def context_from_pb(message: pb.RunContext) -> RunContext:
    return RunContext(run_id=message.run_id, purpose=message.purpose, round=message.round)


def _params_to_struct(params: dict[str, ParamValue]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(params)
    return struct


def _param_from_value(key: str, value: struct_pb2.Value) -> ParamValue:
    """A hyperparameter is a flag, a number, a short string or a short list of numbers; numbers stay floats."""
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        return value.number_value  # a non-finite one is refused by ModelSpec, with the others
    if kind == "string_value":
        return bounded_name(value.string_value, f"model parameter {key!r}")
    if kind == "list_value":
        items = value.list_value.values
        bounded_count(items, f"values of model parameter {key!r}", MAX_PARAM_LIST)
        if any(item.WhichOneof("kind") != "number_value" for item in items):
            raise InvalidRequest(f"model parameter {key!r} must be a list of numbers")
        return [item.number_value for item in items]
    raise InvalidRequest(f"model parameter {key!r} must be a flag, a number, a string or a list of numbers")


def methods_to_pb(methods: dict[str, dict[str, ParamValue]]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({name: dict(params) for name, params in methods.items()})
    return struct


def criterion_from_pb(criterion: str) -> str:
    """A selection criterion, one of the registry's ("" is the default, the task's loss)."""
    if criterion == "":
        return "loss"
    if criterion not in CRITERIA:
        raise InvalidRequest(f"unknown selection criterion {criterion[:64]!r}; expected one of {', '.join(CRITERIA)}")
    return criterion


def methods_from_pb(struct: struct_pb2.Struct) -> dict[str, dict[str, ParamValue]]:
    """Personalisation methods: at most a few, each a mapping of hyperparameters like a model's."""
    bounded_count(list(struct.fields), "personalisation methods", MAX_PARAMS)
    methods: dict[str, dict[str, ParamValue]] = {}
    for name in sorted(struct.fields):
        value = struct.fields[name]
        if value.WhichOneof("kind") != "struct_value":
            raise InvalidRequest(f"personalisation method {name!r} must map to its hyperparameters")
        methods[bounded_name(name, "a personalisation method", limit=64)] = _params_from_struct(value.struct_value)
    return methods


def _params_from_struct(struct: struct_pb2.Struct) -> dict[str, ParamValue]:
    fields = struct.fields
    bounded_count(list(fields), "model parameters", MAX_PARAMS)
    return {bounded_name(key, "a model parameter name", limit=64): _param_from_value(key, fields[key]) for key in sorted(fields)}


def task_to_pb(task: TaskSpec) -> pb.TaskSpec:
    message = pb.TaskSpec(
        model=pb.ModelSpec(name=task.model.name, params=_params_to_struct(dict(task.model.params))),
        features=list(task.features),
        target=task.target,
        rounds=task.rounds,
        local_epochs=task.local_epochs,
        batch_size=task.batch_size,
        learning_rate=task.learning_rate,
        proximal_mu=task.proximal_mu,
        seed=task.seed,
        view=task.view,
        objective=task.objective,
        weight_decay=task.weight_decay,
        validation_fraction=task.validation_fraction,
        test_draw=task.test_draw,
    )
    if task.target_scaling is not None:
        message.target_mean, message.target_std = task.target_scaling
    if task.record_privacy is not None:
        r = task.record_privacy
        message.record_privacy.CopyFrom(pb.RecordPrivacy(epsilon=r.epsilon, delta=r.delta, clip=r.clip))
    if task.privacy is not None:
        message.privacy.CopyFrom(pb.PrivacySpec(noise_multiplier=task.privacy.noise_multiplier, clip=task.privacy.clip))
    if task.scaling is not None:
        message.scaling.CopyFrom(
            pb.FeatureScaling(columns=list(task.scaling.columns), mean=list(task.scaling.mean), std=list(task.scaling.std))
        )
    return message


def task_from_pb(message: pb.TaskSpec) -> TaskSpec:
    if not message.model.name:
        raise InvalidRequest("the task names no model")
    scaling = None
    if message.HasField("scaling"):
        m = message.scaling
        bounded_count(m.mean, "scaling means", MAX_COLUMNS)
        bounded_count(m.std, "scaling standard deviations", MAX_COLUMNS)
        scaling = FeatureScaling(bounded_names(m.columns, "scaled columns", count=MAX_COLUMNS), tuple(m.mean), tuple(m.std))
    return TaskSpec(
        model=ModelSpec(bounded_name(message.model.name, "the model name"), _params_from_struct(message.model.params)),
        features=bounded_names(message.features, "features", count=MAX_FEATURES),
        target=bounded_name(message.target, "the target"),
        rounds=message.rounds,
        local_epochs=message.local_epochs,
        batch_size=message.batch_size,
        learning_rate=message.learning_rate,
        proximal_mu=message.proximal_mu,
        seed=message.seed,
        scaling=scaling,
        privacy=PrivacySpec(message.privacy.noise_multiplier, message.privacy.clip) if message.HasField("privacy") else None,
        view=bounded_name(message.view, "the view", limit=32) or "harmonised",
        record_privacy=RecordPrivacy(message.record_privacy.epsilon, message.record_privacy.delta, message.record_privacy.clip)
        if message.HasField("record_privacy")
        else None,
        objective=bounded_name(message.objective, "the objective", limit=32) or "binary",
        weight_decay=message.weight_decay,
        validation_fraction=message.validation_fraction,
        target_scaling=(message.target_mean, message.target_std) if message.target_std != 0 else None,
        test_draw=message.test_draw,
    )


def description_to_pb(d: NodeDescription) -> pb.DescribeReply:
    return pb.DescribeReply(
        node_id=d.node_id,
        kind=d.kind,
        scenario=d.scenario,
        fields=[
            pb.FieldInfo(name=f.name, type=f.type, unit=f.unit, codes=list(f.codes), min=f.min, max=f.max, required=f.required)
            for f in d.fields
        ],
        approx_records=d.approx_records,
        models=list(d.models),
        policy_summary=d.policy_summary,
        epsilon_spent=d.epsilon_spent,
        epsilon_budget=d.epsilon_budget or 0.0,
        quality=pb.QualitySummary(total=d.quality.total, kept=d.quality.kept, excluded=dict(d.quality.excluded))
        if d.quality is not None
        else None,
    )


def description_from_pb(m: pb.DescribeReply) -> NodeDescription:
    return NodeDescription(
        node_id=m.node_id,
        kind=m.kind,
        scenario=m.scenario,
        fields=tuple(
            FieldDescription(
                f.name,
                f.type,
                f.unit,
                tuple(f.codes),
                f.min if f.HasField("min") else None,
                f.max if f.HasField("max") else None,
                f.required,
            )
            for f in m.fields
        ),
        approx_records=m.approx_records,
        models=tuple(m.models),
        policy_summary=m.policy_summary,
        epsilon_spent=m.epsilon_spent,
        epsilon_budget=m.epsilon_budget or None,
        quality=QualitySummary(m.quality.total, m.quality.kept, dict(m.quality.excluded)) if m.HasField("quality") else None,
    )


def answer_to_pb(a: ProposalAnswer) -> pb.ProposeReply:
    return pb.ProposeReply(
        accepted=a.accepted,
        reasons=list(a.reasons),
        max_rounds=a.max_rounds,
        min_cohort=a.min_cohort,
        usable_columns=list(a.usable_columns),
        max_release=a.max_release,
        clip=a.clip or 0.0,
        noise_multiplier=a.noise_multiplier or 0.0,
        epsilon_spent=a.epsilon_spent,
        epsilon_budget=a.epsilon_budget or 0.0,
        budget_exhausted=a.budget_exhausted,
        dp_level=a.dp_level,
    )


def answer_from_pb(m: pb.ProposeReply) -> ProposalAnswer:
    return ProposalAnswer(
        accepted=m.accepted,
        reasons=tuple(m.reasons),
        max_rounds=m.max_rounds,
        min_cohort=m.min_cohort,
        usable_columns=tuple(m.usable_columns),
        max_release=m.max_release or "none",
        clip=m.clip or None,
        noise_multiplier=m.noise_multiplier or None,
        epsilon_spent=m.epsilon_spent,
        epsilon_budget=m.epsilon_budget or None,
        budget_exhausted=m.budget_exhausted,
        dp_level=m.dp_level,
    )


def stats_to_pb(s: FeatureStats) -> pb.StatsReply:
    return pb.StatsReply(
        columns=list(s.columns),
        count=list(s.count),
        sum=list(s.sum),
        sum_squares=list(s.sum_squares),
        histograms=[pb.Histogram(column=c, edges=list(e), counts=list(n)) for c, (e, n) in s.histograms.items()],
    )


def stats_from_pb(m: pb.StatsReply) -> FeatureStats:
    if not len(m.columns) == len(m.count) == len(m.sum) == len(m.sum_squares):
        raise InvalidRequest("statistics need one count, sum and sum of squares per column")
    histograms = {}
    for h in m.histograms:
        if len(h.counts) != len(h.edges) - 1:
            raise InvalidRequest(f"histogram of {h.column!r}: {len(h.counts)} counts for {len(h.edges)} edges")
        histograms[h.column] = (tuple(h.edges), tuple(h.counts))
    return FeatureStats(tuple(m.columns), tuple(m.count), tuple(m.sum), tuple(m.sum_squares), histograms)


def tensor_specs(header: pb.TensorHeader) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(name, dtype, shape) of each announced tensor, to compare with what a node expects."""
    bounded_count(header.tensors, "tensors announced", MAX_TENSORS)
    specs = []
    for t in header.tensors:
        name = bounded_name(t.name, "a tensor name")
        bounded_count(t.shape, f"dimensions of tensor {name!r}", MAX_DIMS)
        if any(d < 0 for d in t.shape):
            raise InvalidRequest(f"tensor {name!r}: negative dimension in {list(t.shape)}")
        specs.append((name, bounded_name(t.dtype, f"the dtype of tensor {name!r}", limit=8), tuple(int(d) for d in t.shape)))
    return tuple(specs)
