from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunContext(_message.Message):
    __slots__ = ("run_id", "purpose", "round")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    purpose: str
    round: int
    def __init__(self, run_id: _Optional[str] = ..., purpose: _Optional[str] = ..., round: _Optional[int] = ...) -> None: ...

class ModelSpec(_message.Message):
    __slots__ = ("name", "params")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("model", "features", "target", "rounds", "local_epochs", "batch_size", "learning_rate", "proximal_mu", "seed", "scaling", "privacy", "view", "record_privacy", "objective", "weight_decay", "validation_fraction", "target_mean", "target_std", "test_draw")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    PROXIMAL_MU_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    RECORD_PRIVACY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_MEAN_FIELD_NUMBER: _ClassVar[int]
    TARGET_STD_FIELD_NUMBER: _ClassVar[int]
    TEST_DRAW_FIELD_NUMBER: _ClassVar[int]
    model: ModelSpec
    features: _containers.RepeatedScalarFieldContainer[str]
    target: str
    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    proximal_mu: float
    seed: int
    scaling: FeatureScaling
    privacy: PrivacySpec
    view: str
    record_privacy: RecordPrivacy
    objective: str
    weight_decay: float
    validation_fraction: float
    target_mean: float
    target_std: float
    test_draw: int
    def __init__(self, model: _Optional[_Union[ModelSpec, _Mapping]] = ..., features: _Optional[_Iterable[str]] = ..., target: _Optional[str] = ..., rounds: _Optional[int] = ..., local_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., proximal_mu: _Optional[float] = ..., seed: _Optional[int] = ..., scaling: _Optional[_Union[FeatureScaling, _Mapping]] = ..., privacy: _Optional[_Union[PrivacySpec, _Mapping]] = ..., view: _Optional[str] = ..., record_privacy: _Optional[_Union[RecordPrivacy, _Mapping]] = ..., objective: _Optional[str] = ..., weight_decay: _Optional[float] = ..., validation_fraction: _Optional[float] = ..., target_mean: _Optional[float] = ..., target_std: _Optional[float] = ..., test_draw: _Optional[int] = ...) -> None: ...

class RecordPrivacy(_message.Message):
    __slots__ = ("epsilon", "delta", "clip")
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    delta: float
    clip: float
    def __init__(self, epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., clip: _Optional[float] = ...) -> None: ...

class PrivacySpec(_message.Message):
    __slots__ = ("noise_multiplier", "clip")
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    noise_multiplier: float
    clip: float
    def __init__(self, noise_multiplier: _Optional[float] = ..., clip: _Optional[float] = ...) -> None: ...

class FeatureScaling(_message.Message):
    __slots__ = ("columns", "mean", "std")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class TensorHeader(_message.Message):
    __slots__ = ("tensors", "total_bytes")
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    total_bytes: int
    def __init__(self, tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class FieldInfo(_message.Message):
    __slots__ = ("name", "type", "unit", "codes", "min", "max", "required")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    unit: str
    codes: _containers.RepeatedScalarFieldContainer[str]
    min: float
    max: float
    required: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., unit: _Optional[str] = ..., codes: _Optional[_Iterable[str]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., required: _Optional[bool] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ...) -> None: ...

class DescribeReply(_message.Message):
    __slots__ = ("node_id", "kind", "scenario", "fields", "approx_records", "models", "policy_summary", "epsilon_spent", "epsilon_budget", "quality")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    APPROX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    POLICY_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EPSILON_SPENT_FIELD_NUMBER: _ClassVar[int]
    EPSILON_BUDGET_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    kind: str
    scenario: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldInfo]
    approx_records: int
    models: _containers.RepeatedScalarFieldContainer[str]
    policy_summary: str
    epsilon_spent: float
    epsilon_budget: float
    quality: QualitySummary
    def __init__(self, node_id: _Optional[str] = ..., kind: _Optional[str] = ..., scenario: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldInfo, _Mapping]]] = ..., approx_records: _Optional[int] = ..., models: _Optional[_Iterable[str]] = ..., policy_summary: _Optional[str] = ..., epsilon_spent: _Optional[float] = ..., epsilon_budget: _Optional[float] = ..., quality: _Optional[_Union[QualitySummary, _Mapping]] = ...) -> None: ...

class QualitySummary(_message.Message):
    __slots__ = ("total", "kept", "excluded")
    class ExcludedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    total: int
    kept: int
    excluded: _containers.ScalarMap[str, int]
    def __init__(self, total: _Optional[int] = ..., kept: _Optional[int] = ..., excluded: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ProposeRequest(_message.Message):
    __slots__ = ("context", "task", "cohort_size", "release")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    COHORT_SIZE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    cohort_size: int
    release: str
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., cohort_size: _Optional[int] = ..., release: _Optional[str] = ...) -> None: ...

class ProposeReply(_message.Message):
    __slots__ = ("accepted", "reasons", "max_rounds", "min_cohort", "usable_columns", "max_release", "clip", "noise_multiplier", "epsilon_spent", "epsilon_budget", "budget_exhausted", "dp_level")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    MIN_COHORT_FIELD_NUMBER: _ClassVar[int]
    USABLE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MAX_RELEASE_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    EPSILON_SPENT_FIELD_NUMBER: _ClassVar[int]
    EPSILON_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    DP_LEVEL_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    max_rounds: int
    min_cohort: int
    usable_columns: _containers.RepeatedScalarFieldContainer[str]
    max_release: str
    clip: float
    noise_multiplier: float
    epsilon_spent: float
    epsilon_budget: float
    budget_exhausted: bool
    dp_level: str
    def __init__(self, accepted: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., max_rounds: _Optional[int] = ..., min_cohort: _Optional[int] = ..., usable_columns: _Optional[_Iterable[str]] = ..., max_release: _Optional[str] = ..., clip: _Optional[float] = ..., noise_multiplier: _Optional[float] = ..., epsilon_spent: _Optional[float] = ..., epsilon_budget: _Optional[float] = ..., budget_exhausted: _Optional[bool] = ..., dp_level: _Optional[str] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("context", "task")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ...) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("columns", "count", "sum", "sum_squares", "histograms")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    SUM_SQUARES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    count: _containers.RepeatedScalarFieldContainer[int]
    sum: _containers.RepeatedScalarFieldContainer[float]
    sum_squares: _containers.RepeatedScalarFieldContainer[float]
    histograms: _containers.RepeatedCompositeFieldContainer[Histogram]
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., count: _Optional[_Iterable[int]] = ..., sum: _Optional[_Iterable[float]] = ..., sum_squares: _Optional[_Iterable[float]] = ..., histograms: _Optional[_Iterable[_Union[Histogram, _Mapping]]] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("column", "edges", "counts")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    column: str
    edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, column: _Optional[str] = ..., edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class FitHeader(_message.Message):
    __slots__ = ("context", "task", "tensors")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    tensors: TensorHeader
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., tensors: _Optional[_Union[TensorHeader, _Mapping]] = ...) -> None: ...

class FitRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: FitHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[FitHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class FitResult(_message.Message):
    __slots__ = ("num_examples", "train_loss", "tensors")
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    num_examples: int
    train_loss: float
    tensors: TensorHeader
    def __init__(self, num_examples: _Optional[int] = ..., train_loss: _Optional[float] = ..., tensors: _Optional[_Union[TensorHeader, _Mapping]] = ...) -> None: ...

class FitReply(_message.Message):
    __slots__ = ("result", "chunk")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    result: FitResult
    chunk: bytes
    def __init__(self, result: _Optional[_Union[FitResult, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class EvaluateHeader(_message.Message):
    __slots__ = ("context", "task", "tensors")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    tensors: TensorHeader
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., tensors: _Optional[_Union[TensorHeader, _Mapping]] = ...) -> None: ...

class PersonaliseHeader(_message.Message):
    __slots__ = ("context", "task", "tensors", "methods", "criterion")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    tensors: TensorHeader
    methods: _struct_pb2.Struct
    criterion: str
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., tensors: _Optional[_Union[TensorHeader, _Mapping]] = ..., methods: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., criterion: _Optional[str] = ...) -> None: ...

class PersonaliseRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: PersonaliseHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[PersonaliseHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class PersonaliseReply(_message.Message):
    __slots__ = ("metrics", "method", "choice")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    metrics: EvaluateReply
    method: str
    choice: str
    def __init__(self, metrics: _Optional[_Union[EvaluateReply, _Mapping]] = ..., method: _Optional[str] = ..., choice: _Optional[str] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: EvaluateHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[EvaluateHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class EvaluateReply(_message.Message):
    __slots__ = ("count", "loss_sum", "correct", "positives", "positive_histogram", "negative_histogram", "abs_error_sum", "target_sum", "target_squares", "validation")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LOSS_SUM_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    POSITIVES_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    ABS_ERROR_SUM_FIELD_NUMBER: _ClassVar[int]
    TARGET_SUM_FIELD_NUMBER: _ClassVar[int]
    TARGET_SQUARES_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    count: int
    loss_sum: float
    correct: int
    positives: int
    positive_histogram: _containers.RepeatedScalarFieldContainer[int]
    negative_histogram: _containers.RepeatedScalarFieldContainer[int]
    abs_error_sum: float
    target_sum: float
    target_squares: float
    validation: EvaluateReply
    def __init__(self, count: _Optional[int] = ..., loss_sum: _Optional[float] = ..., correct: _Optional[int] = ..., positives: _Optional[int] = ..., positive_histogram: _Optional[_Iterable[int]] = ..., negative_histogram: _Optional[_Iterable[int]] = ..., abs_error_sum: _Optional[float] = ..., target_sum: _Optional[float] = ..., target_squares: _Optional[float] = ..., validation: _Optional[_Union[EvaluateReply, _Mapping]] = ...) -> None: ...

class TrainLocalRequest(_message.Message):
    __slots__ = ("context", "task")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ...) -> None: ...

class TrainLocalReply(_message.Message):
    __slots__ = ("round", "metrics", "num_examples")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    round: int
    metrics: EvaluateReply
    num_examples: int
    def __init__(self, round: _Optional[int] = ..., metrics: _Optional[_Union[EvaluateReply, _Mapping]] = ..., num_examples: _Optional[int] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("context", "task")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ...) -> None: ...

class ExportKeyedRequest(_message.Message):
    __slots__ = ("context", "columns")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportReply(_message.Message):
    __slots__ = ("chunk", "rows")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    rows: int
    def __init__(self, chunk: _Optional[bytes] = ..., rows: _Optional[int] = ...) -> None: ...

class SecAggParameters(_message.Message):
    __slots__ = ("participants", "threshold", "degree", "clip", "vector_length", "max_weight", "payload")
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DEGREE_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    VECTOR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    participants: _containers.RepeatedScalarFieldContainer[str]
    threshold: int
    degree: int
    clip: float
    vector_length: int
    max_weight: float
    payload: str
    def __init__(self, participants: _Optional[_Iterable[str]] = ..., threshold: _Optional[int] = ..., degree: _Optional[int] = ..., clip: _Optional[float] = ..., vector_length: _Optional[int] = ..., max_weight: _Optional[float] = ..., payload: _Optional[str] = ...) -> None: ...

class AdvertiseKeysRequest(_message.Message):
    __slots__ = ("context", "task", "parameters")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    parameters: SecAggParameters
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., parameters: _Optional[_Union[SecAggParameters, _Mapping]] = ...) -> None: ...

class AdvertiseKeysReply(_message.Message):
    __slots__ = ("encryption_public_key", "masking_public_key", "certificate", "signature")
    ENCRYPTION_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    MASKING_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    encryption_public_key: bytes
    masking_public_key: bytes
    certificate: bytes
    signature: bytes
    def __init__(self, encryption_public_key: _Optional[bytes] = ..., masking_public_key: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PeerKeys(_message.Message):
    __slots__ = ("index", "encryption_public_key", "masking_public_key", "certificate", "signature")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    MASKING_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    index: int
    encryption_public_key: bytes
    masking_public_key: bytes
    certificate: bytes
    signature: bytes
    def __init__(self, index: _Optional[int] = ..., encryption_public_key: _Optional[bytes] = ..., masking_public_key: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ShareKeysRequest(_message.Message):
    __slots__ = ("context", "peers")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    peers: _containers.RepeatedCompositeFieldContainer[PeerKeys]
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., peers: _Optional[_Iterable[_Union[PeerKeys, _Mapping]]] = ...) -> None: ...

class EncryptedShare(_message.Message):
    __slots__ = ("peer", "ciphertext")
    PEER_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    peer: int
    ciphertext: bytes
    def __init__(self, peer: _Optional[int] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class ShareKeysReply(_message.Message):
    __slots__ = ("shares",)
    SHARES_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.RepeatedCompositeFieldContainer[EncryptedShare]
    def __init__(self, shares: _Optional[_Iterable[_Union[EncryptedShare, _Mapping]]] = ...) -> None: ...

class MaskedUpdateHeader(_message.Message):
    __slots__ = ("context", "task", "shares", "tensors")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    task: TaskSpec
    shares: _containers.RepeatedCompositeFieldContainer[EncryptedShare]
    tensors: TensorHeader
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., shares: _Optional[_Iterable[_Union[EncryptedShare, _Mapping]]] = ..., tensors: _Optional[_Union[TensorHeader, _Mapping]] = ...) -> None: ...

class MaskedUpdateRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: MaskedUpdateHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[MaskedUpdateHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class MaskedResult(_message.Message):
    __slots__ = ("tensors",)
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    tensors: TensorHeader
    def __init__(self, tensors: _Optional[_Union[TensorHeader, _Mapping]] = ...) -> None: ...

class MaskedUpdateReply(_message.Message):
    __slots__ = ("result", "chunk")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    result: MaskedResult
    chunk: bytes
    def __init__(self, result: _Optional[_Union[MaskedResult, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ConfirmSurvivorsRequest(_message.Message):
    __slots__ = ("context", "survivors")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    survivors: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., survivors: _Optional[_Iterable[int]] = ...) -> None: ...

class ConfirmSurvivorsReply(_message.Message):
    __slots__ = ("signature",)
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    def __init__(self, signature: _Optional[bytes] = ...) -> None: ...

class SurvivorSignature(_message.Message):
    __slots__ = ("index", "signature")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    index: int
    signature: bytes
    def __init__(self, index: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class UnmaskRequest(_message.Message):
    __slots__ = ("context", "signatures")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    signatures: _containers.RepeatedCompositeFieldContainer[SurvivorSignature]
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., signatures: _Optional[_Iterable[_Union[SurvivorSignature, _Mapping]]] = ...) -> None: ...

class RevealedShare(_message.Message):
    __slots__ = ("owner", "kind", "share")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    owner: int
    kind: str
    share: bytes
    def __init__(self, owner: _Optional[int] = ..., kind: _Optional[str] = ..., share: _Optional[bytes] = ...) -> None: ...

class UnmaskReply(_message.Message):
    __slots__ = ("shares",)
    SHARES_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.RepeatedCompositeFieldContainer[RevealedShare]
    def __init__(self, shares: _Optional[_Iterable[_Union[RevealedShare, _Mapping]]] = ...) -> None: ...

class PsiTerms(_message.Message):
    __slots__ = ("parties", "receiver", "rule", "membership", "count")
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    parties: _containers.RepeatedScalarFieldContainer[str]
    receiver: str
    rule: str
    membership: _containers.RepeatedScalarFieldContainer[str]
    count: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, parties: _Optional[_Iterable[str]] = ..., receiver: _Optional[str] = ..., rule: _Optional[str] = ..., membership: _Optional[_Iterable[str]] = ..., count: _Optional[_Iterable[str]] = ...) -> None: ...

class PsiJoinRequest(_message.Message):
    __slots__ = ("context", "terms")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    terms: PsiTerms
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., terms: _Optional[_Union[PsiTerms, _Mapping]] = ...) -> None: ...

class PsiAdvert(_message.Message):
    __slots__ = ("party", "public_key", "set_size", "min_intersection", "certificate", "signature")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SET_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_INTERSECTION_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    party: str
    public_key: bytes
    set_size: int
    min_intersection: int
    certificate: bytes
    signature: bytes
    def __init__(self, party: _Optional[str] = ..., public_key: _Optional[bytes] = ..., set_size: _Optional[int] = ..., min_intersection: _Optional[int] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PsiAdmitRequest(_message.Message):
    __slots__ = ("context", "adverts")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ADVERTS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    adverts: _containers.RepeatedCompositeFieldContainer[PsiAdvert]
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., adverts: _Optional[_Iterable[_Union[PsiAdvert, _Mapping]]] = ...) -> None: ...

class PsiSealed(_message.Message):
    __slots__ = ("party", "sealed")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    party: str
    sealed: bytes
    def __init__(self, party: _Optional[str] = ..., sealed: _Optional[bytes] = ...) -> None: ...

class PsiAdmitReply(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[PsiSealed]
    def __init__(self, queries: _Optional[_Iterable[_Union[PsiSealed, _Mapping]]] = ...) -> None: ...

class PsiSealedRequest(_message.Message):
    __slots__ = ("context", "message")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    message: PsiSealed
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., message: _Optional[_Union[PsiSealed, _Mapping]] = ...) -> None: ...

class PsiSealedReply(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: PsiSealed
    def __init__(self, message: _Optional[_Union[PsiSealed, _Mapping]] = ...) -> None: ...

class PsiCombineReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PsiFinishRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ...) -> None: ...

class PsiFinishReply(_message.Message):
    __slots__ = ("deliveries", "count")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[PsiSealed]
    count: int
    def __init__(self, deliveries: _Optional[_Iterable[_Union[PsiSealed, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class PsiDeliverReply(_message.Message):
    __slots__ = ("told",)
    TOLD_FIELD_NUMBER: _ClassVar[int]
    told: str
    def __init__(self, told: _Optional[str] = ...) -> None: ...

class PsiStreamRequest(_message.Message):
    __slots__ = ("context", "step")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    step: str
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., step: _Optional[str] = ...) -> None: ...

class PsiChunk(_message.Message):
    __slots__ = ("index", "total", "sealed")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    index: int
    total: int
    sealed: bytes
    def __init__(self, index: _Optional[int] = ..., total: _Optional[int] = ..., sealed: _Optional[bytes] = ...) -> None: ...

class PsiFeedRequest(_message.Message):
    __slots__ = ("context", "step", "chunk")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    step: str
    chunk: PsiChunk
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., step: _Optional[str] = ..., chunk: _Optional[_Union[PsiChunk, _Mapping]] = ...) -> None: ...

class VerticalJoinRequest(_message.Message):
    __slots__ = ("context", "terms")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    terms: str
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., terms: _Optional[str] = ...) -> None: ...

class VerticalAdvert(_message.Message):
    __slots__ = ("party", "public_key", "rows", "certificate", "signature")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    party: str
    public_key: bytes
    rows: int
    certificate: bytes
    signature: bytes
    def __init__(self, party: _Optional[str] = ..., public_key: _Optional[bytes] = ..., rows: _Optional[int] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class VerticalAdmitRequest(_message.Message):
    __slots__ = ("context", "adverts")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ADVERTS_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    adverts: _containers.RepeatedCompositeFieldContainer[VerticalAdvert]
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., adverts: _Optional[_Iterable[_Union[VerticalAdvert, _Mapping]]] = ...) -> None: ...

class VerticalLetter(_message.Message):
    __slots__ = ("sender", "recipient", "sequence", "piece", "pieces", "data")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PIECE_FIELD_NUMBER: _ClassVar[int]
    PIECES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    sender: str
    recipient: str
    sequence: int
    piece: int
    pieces: int
    data: bytes
    def __init__(self, sender: _Optional[str] = ..., recipient: _Optional[str] = ..., sequence: _Optional[int] = ..., piece: _Optional[int] = ..., pieces: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class VerticalExchangeRequest(_message.Message):
    __slots__ = ("context", "letters", "advance")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LETTERS_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_FIELD_NUMBER: _ClassVar[int]
    context: RunContext
    letters: _containers.RepeatedCompositeFieldContainer[VerticalLetter]
    advance: bool
    def __init__(self, context: _Optional[_Union[RunContext, _Mapping]] = ..., letters: _Optional[_Iterable[_Union[VerticalLetter, _Mapping]]] = ..., advance: _Optional[bool] = ...) -> None: ...

class VerticalExchangeReply(_message.Message):
    __slots__ = ("letters", "more", "done", "outcome")
    LETTERS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    letters: _containers.RepeatedCompositeFieldContainer[VerticalLetter]
    more: bool
    done: bool
    outcome: str
    def __init__(self, letters: _Optional[_Iterable[_Union[VerticalLetter, _Mapping]]] = ..., more: _Optional[bool] = ..., done: _Optional[bool] = ..., outcome: _Optional[str] = ...) -> None: ...
