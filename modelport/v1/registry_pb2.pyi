from modelport.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resources(_message.Message):
    __slots__ = ("cpu", "memory", "gpu")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    memory: str
    gpu: int
    def __init__(self, cpu: _Optional[float] = ..., memory: _Optional[str] = ..., gpu: _Optional[int] = ...) -> None: ...

class ServiceSpec(_message.Message):
    __slots__ = ("model", "version", "runtime", "replicas", "resources", "env", "timeout_s", "annotations", "auth", "rate_limit", "traffic", "autoscaling", "concurrency", "queue_size", "deploy_timeout_s")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    runtime: str
    replicas: int
    resources: Resources
    env: _containers.ScalarMap[str, str]
    timeout_s: float
    annotations: _containers.ScalarMap[str, str]
    auth: ServiceAuth
    rate_limit: RateLimit
    traffic: _containers.RepeatedCompositeFieldContainer[TrafficTarget]
    autoscaling: Autoscaling
    concurrency: int
    queue_size: int
    deploy_timeout_s: float
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., runtime: _Optional[str] = ..., replicas: _Optional[int] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., env: _Optional[_Mapping[str, str]] = ..., timeout_s: _Optional[float] = ..., annotations: _Optional[_Mapping[str, str]] = ..., auth: _Optional[_Union[ServiceAuth, _Mapping]] = ..., rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., traffic: _Optional[_Iterable[_Union[TrafficTarget, _Mapping]]] = ..., autoscaling: _Optional[_Union[Autoscaling, _Mapping]] = ..., concurrency: _Optional[int] = ..., queue_size: _Optional[int] = ..., deploy_timeout_s: _Optional[float] = ...) -> None: ...

class TrafficTarget(_message.Message):
    __slots__ = ("version", "percent")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    version: int
    percent: float
    def __init__(self, version: _Optional[int] = ..., percent: _Optional[float] = ...) -> None: ...

class Autoscaling(_message.Message):
    __slots__ = ("min", "max", "target_concurrency", "idle_timeout_s", "scale_down_delay_s")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    TARGET_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_S_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    target_concurrency: float
    idle_timeout_s: float
    scale_down_delay_s: float
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ..., target_concurrency: _Optional[float] = ..., idle_timeout_s: _Optional[float] = ..., scale_down_delay_s: _Optional[float] = ...) -> None: ...

class ServiceAuth(_message.Message):
    __slots__ = ("required",)
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    required: bool
    def __init__(self, required: _Optional[bool] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("rps", "burst")
    RPS_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    rps: float
    burst: int
    def __init__(self, rps: _Optional[float] = ..., burst: _Optional[int] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("type", "status", "reason", "message", "last_transition")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_TRANSITION_FIELD_NUMBER: _ClassVar[int]
    type: str
    status: bool
    reason: str
    message: str
    last_transition: float
    def __init__(self, type: _Optional[str] = ..., status: _Optional[bool] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., last_transition: _Optional[float] = ...) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("phase", "serving_version", "target_version", "ready_replicas", "observed_generation", "message", "conditions", "updated_at", "traffic", "desired_replicas", "replicas")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    READY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    DESIRED_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    phase: str
    serving_version: int
    target_version: int
    ready_replicas: int
    observed_generation: int
    message: str
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    updated_at: float
    traffic: _containers.RepeatedCompositeFieldContainer[TrafficTarget]
    desired_replicas: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaView]
    def __init__(self, phase: _Optional[str] = ..., serving_version: _Optional[int] = ..., target_version: _Optional[int] = ..., ready_replicas: _Optional[int] = ..., observed_generation: _Optional[int] = ..., message: _Optional[str] = ..., conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., updated_at: _Optional[float] = ..., traffic: _Optional[_Iterable[_Union[TrafficTarget, _Mapping]]] = ..., desired_replicas: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaView, _Mapping]]] = ...) -> None: ...

class ReplicaView(_message.Message):
    __slots__ = ("id", "version", "state", "agent", "message", "restarts")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    state: str
    agent: str
    message: str
    restarts: int
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[str] = ..., agent: _Optional[str] = ..., message: _Optional[str] = ..., restarts: _Optional[int] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("name", "spec", "status", "generation", "created_at", "interface_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: ServiceSpec
    status: ServiceStatus
    generation: int
    created_at: float
    interface_json: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., status: _Optional[_Union[ServiceStatus, _Mapping]] = ..., generation: _Optional[int] = ..., created_at: _Optional[float] = ..., interface_json: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("model", "number", "digest", "kind", "config_json", "interface_json", "state", "error", "build_id", "created_at", "package_dir", "artifact")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_JSON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_DIR_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    model: str
    number: int
    digest: str
    kind: str
    config_json: str
    interface_json: str
    state: str
    error: str
    build_id: str
    created_at: float
    package_dir: str
    artifact: str
    def __init__(self, model: _Optional[str] = ..., number: _Optional[int] = ..., digest: _Optional[str] = ..., kind: _Optional[str] = ..., config_json: _Optional[str] = ..., interface_json: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., build_id: _Optional[str] = ..., created_at: _Optional[float] = ..., package_dir: _Optional[str] = ..., artifact: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "ts", "service", "model", "version", "type", "reason", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    ts: float
    service: str
    model: str
    version: int
    type: str
    reason: str
    message: str
    def __init__(self, id: _Optional[int] = ..., ts: _Optional[float] = ..., service: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[int] = ..., type: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("service", "version", "runtime_address", "interface_json", "timeout_s", "phase", "message", "versions", "scaled_to_zero")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SCALED_TO_ZERO_FIELD_NUMBER: _ClassVar[int]
    service: str
    version: int
    runtime_address: str
    interface_json: str
    timeout_s: float
    phase: str
    message: str
    versions: _containers.RepeatedCompositeFieldContainer[RouteVersion]
    scaled_to_zero: bool
    def __init__(self, service: _Optional[str] = ..., version: _Optional[int] = ..., runtime_address: _Optional[str] = ..., interface_json: _Optional[str] = ..., timeout_s: _Optional[float] = ..., phase: _Optional[str] = ..., message: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[RouteVersion, _Mapping]]] = ..., scaled_to_zero: _Optional[bool] = ...) -> None: ...

class RouteVersion(_message.Message):
    __slots__ = ("version", "percent", "interface_json", "timeout_s", "endpoints")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    percent: float
    interface_json: str
    timeout_s: float
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    def __init__(self, version: _Optional[int] = ..., percent: _Optional[float] = ..., interface_json: _Optional[str] = ..., timeout_s: _Optional[float] = ..., endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("address", "agent", "ready_replicas", "replicas")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    READY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    address: str
    agent: str
    ready_replicas: int
    replicas: int
    def __init__(self, address: _Optional[str] = ..., agent: _Optional[str] = ..., ready_replicas: _Optional[int] = ..., replicas: _Optional[int] = ...) -> None: ...

class PackageChunk(_message.Message):
    __slots__ = ("filename", "data")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    filename: str
    data: bytes
    def __init__(self, filename: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class PackageRef(_message.Message):
    __slots__ = ("digest", "kind", "name", "interface_json", "upload_id")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_JSON_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    digest: str
    kind: str
    name: str
    interface_json: str
    upload_id: str
    def __init__(self, digest: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., interface_json: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class CreateServiceRequest(_message.Message):
    __slots__ = ("name", "spec", "upload_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: ServiceSpec
    upload_id: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., upload_id: _Optional[str] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("name", "spec", "upload_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: ServiceSpec
    upload_id: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., upload_id: _Optional[str] = ...) -> None: ...

class GetServiceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[Service]
    def __init__(self, services: _Optional[_Iterable[_Union[Service, _Mapping]]] = ...) -> None: ...

class DeleteServiceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteServiceResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("model", "number")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    model: str
    number: int
    def __init__(self, model: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class GetBuildLogRequest(_message.Message):
    __slots__ = ("model", "number")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    model: str
    number: int
    def __init__(self, model: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class BuildLog(_message.Message):
    __slots__ = ("text", "state")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    text: str
    state: str
    def __init__(self, text: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("service", "limit", "model", "version")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    service: str
    limit: int
    model: str
    version: int
    def __init__(self, service: _Optional[str] = ..., limit: _Optional[int] = ..., model: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class MetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MetricsText(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class ResolveRouteRequest(_message.Message):
    __slots__ = ("service", "version", "wait_s")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    service: str
    version: int
    wait_s: float
    def __init__(self, service: _Optional[str] = ..., version: _Optional[int] = ..., wait_s: _Optional[float] = ...) -> None: ...

class ServiceActionRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "service", "state", "created_at", "started_at", "finished_at", "request_id", "idempotency_key", "webhook", "webhook_state", "webhook_attempts", "error_json", "version", "duration_ms", "expires_at", "attempts", "output", "has_output")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_STATE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    HAS_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    state: str
    created_at: float
    started_at: float
    finished_at: float
    request_id: str
    idempotency_key: str
    webhook: str
    webhook_state: str
    webhook_attempts: int
    error_json: str
    version: int
    duration_ms: float
    expires_at: float
    attempts: int
    output: _inference_pb2.Output
    has_output: bool
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., state: _Optional[str] = ..., created_at: _Optional[float] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., request_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., webhook: _Optional[str] = ..., webhook_state: _Optional[str] = ..., webhook_attempts: _Optional[int] = ..., error_json: _Optional[str] = ..., version: _Optional[int] = ..., duration_ms: _Optional[float] = ..., expires_at: _Optional[float] = ..., attempts: _Optional[int] = ..., output: _Optional[_Union[_inference_pb2.Output, _Mapping]] = ..., has_output: _Optional[bool] = ...) -> None: ...

class SubmitTaskRequest(_message.Message):
    __slots__ = ("request", "idempotency_key", "webhook")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    request: _inference_pb2.PredictRequest
    idempotency_key: str
    webhook: str
    def __init__(self, request: _Optional[_Union[_inference_pb2.PredictRequest, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., webhook: _Optional[str] = ...) -> None: ...

class SubmitTaskResponse(_message.Message):
    __slots__ = ("task", "replayed")
    TASK_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    task: Task
    replayed: bool
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("id", "with_result")
    ID_FIELD_NUMBER: _ClassVar[int]
    WITH_RESULT_FIELD_NUMBER: _ClassVar[int]
    id: str
    with_result: bool
    def __init__(self, id: _Optional[str] = ..., with_result: _Optional[bool] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("service", "limit", "page_token", "state")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    service: str
    limit: int
    page_token: str
    state: str
    def __init__(self, service: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ClaimTasksRequest(_message.Message):
    __slots__ = ("runner", "max", "running", "wait_s")
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    runner: str
    max: int
    running: _containers.RepeatedScalarFieldContainer[str]
    wait_s: float
    def __init__(self, runner: _Optional[str] = ..., max: _Optional[int] = ..., running: _Optional[_Iterable[str]] = ..., wait_s: _Optional[float] = ...) -> None: ...

class ClaimedTask(_message.Message):
    __slots__ = ("task", "request", "job")
    TASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    task: Task
    request: _inference_pb2.PredictRequest
    job: str
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., request: _Optional[_Union[_inference_pb2.PredictRequest, _Mapping]] = ..., job: _Optional[str] = ...) -> None: ...

class ClaimTasksResponse(_message.Message):
    __slots__ = ("tasks", "cancel")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[ClaimedTask]
    cancel: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tasks: _Optional[_Iterable[_Union[ClaimedTask, _Mapping]]] = ..., cancel: _Optional[_Iterable[str]] = ...) -> None: ...

class FinishTaskRequest(_message.Message):
    __slots__ = ("id", "runner", "state", "output", "error_json", "version", "duration_ms", "retry_after_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    runner: str
    state: str
    output: _inference_pb2.Output
    error_json: str
    version: int
    duration_ms: float
    retry_after_s: float
    def __init__(self, id: _Optional[str] = ..., runner: _Optional[str] = ..., state: _Optional[str] = ..., output: _Optional[_Union[_inference_pb2.Output, _Mapping]] = ..., error_json: _Optional[str] = ..., version: _Optional[int] = ..., duration_ms: _Optional[float] = ..., retry_after_s: _Optional[float] = ...) -> None: ...

class RecordWebhookRequest(_message.Message):
    __slots__ = ("id", "delivered", "attempts")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    delivered: bool
    attempts: int
    def __init__(self, id: _Optional[str] = ..., delivered: _Optional[bool] = ..., attempts: _Optional[int] = ...) -> None: ...
