from modelport.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartReplicaRequest(_message.Message):
    __slots__ = ("replica_id", "service", "version", "kind", "artifact", "package_dir", "config_json", "env", "timeout_s", "runtime", "cpu", "memory", "gpu", "max_concurrency", "queue_size", "template")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_DIR_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    service: str
    version: int
    kind: str
    artifact: str
    package_dir: str
    config_json: str
    env: _containers.ScalarMap[str, str]
    timeout_s: float
    runtime: str
    cpu: float
    memory: str
    gpu: int
    max_concurrency: int
    queue_size: int
    template: str
    def __init__(self, replica_id: _Optional[str] = ..., service: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[str] = ..., artifact: _Optional[str] = ..., package_dir: _Optional[str] = ..., config_json: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., timeout_s: _Optional[float] = ..., runtime: _Optional[str] = ..., cpu: _Optional[float] = ..., memory: _Optional[str] = ..., gpu: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., queue_size: _Optional[int] = ..., template: _Optional[str] = ...) -> None: ...

class Replica(_message.Message):
    __slots__ = ("id", "service", "version", "state", "pid", "restarts", "message", "log_path", "started_at", "runtime", "gpus", "in_flight", "template", "draining", "last_exit", "direct_address")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOG_PATH_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_FIELD_NUMBER: _ClassVar[int]
    DIRECT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    version: int
    state: str
    pid: int
    restarts: int
    message: str
    log_path: str
    started_at: float
    runtime: str
    gpus: _containers.RepeatedScalarFieldContainer[str]
    in_flight: int
    template: str
    draining: bool
    last_exit: str
    direct_address: str
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[str] = ..., pid: _Optional[int] = ..., restarts: _Optional[int] = ..., message: _Optional[str] = ..., log_path: _Optional[str] = ..., started_at: _Optional[float] = ..., runtime: _Optional[str] = ..., gpus: _Optional[_Iterable[str]] = ..., in_flight: _Optional[int] = ..., template: _Optional[str] = ..., draining: _Optional[bool] = ..., last_exit: _Optional[str] = ..., direct_address: _Optional[str] = ...) -> None: ...

class ServiceLoad(_message.Message):
    __slots__ = ("service", "in_flight", "queued", "last_request_at", "rejected")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    LAST_REQUEST_AT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    service: str
    in_flight: int
    queued: int
    last_request_at: float
    rejected: int
    def __init__(self, service: _Optional[str] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., last_request_at: _Optional[float] = ..., rejected: _Optional[int] = ...) -> None: ...

class Gpu(_message.Message):
    __slots__ = ("id", "uuid", "name", "memory_bytes", "replica_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    uuid: str
    name: str
    memory_bytes: int
    replica_id: str
    def __init__(self, id: _Optional[str] = ..., uuid: _Optional[str] = ..., name: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., replica_id: _Optional[str] = ...) -> None: ...

class GetCapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Capacity(_message.Message):
    __slots__ = ("gpus", "gpu_source", "cpus", "memory_bytes", "runtimes")
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    gpus: _containers.RepeatedCompositeFieldContainer[Gpu]
    gpu_source: str
    cpus: int
    memory_bytes: int
    runtimes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, gpus: _Optional[_Iterable[_Union[Gpu, _Mapping]]] = ..., gpu_source: _Optional[str] = ..., cpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., runtimes: _Optional[_Iterable[str]] = ...) -> None: ...

class ReadLogsRequest(_message.Message):
    __slots__ = ("service", "replica_id", "since", "tail", "follow")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    service: str
    replica_id: str
    since: float
    tail: int
    follow: bool
    def __init__(self, service: _Optional[str] = ..., replica_id: _Optional[str] = ..., since: _Optional[float] = ..., tail: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("ts", "replica_id", "version", "text")
    TS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ts: float
    replica_id: str
    version: int
    text: str
    def __init__(self, ts: _Optional[float] = ..., replica_id: _Optional[str] = ..., version: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class StopReplicaRequest(_message.Message):
    __slots__ = ("replica_id", "drain_s")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    DRAIN_S_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    drain_s: float
    def __init__(self, replica_id: _Optional[str] = ..., drain_s: _Optional[float] = ...) -> None: ...

class ListReplicasRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class ListReplicasResponse(_message.Message):
    __slots__ = ("replicas", "loads")
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    loads: _containers.RepeatedCompositeFieldContainer[ServiceLoad]
    def __init__(self, replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ..., loads: _Optional[_Iterable[_Union[ServiceLoad, _Mapping]]] = ...) -> None: ...

class HttpHeader(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: bytes
    def __init__(self, name: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class HttpRequest(_message.Message):
    __slots__ = ("service", "version", "request_id", "method", "target", "headers", "body", "timeout_s")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    service: str
    version: int
    request_id: str
    method: str
    target: str
    headers: _containers.RepeatedCompositeFieldContainer[HttpHeader]
    body: bytes
    timeout_s: float
    def __init__(self, service: _Optional[str] = ..., version: _Optional[int] = ..., request_id: _Optional[str] = ..., method: _Optional[str] = ..., target: _Optional[str] = ..., headers: _Optional[_Iterable[_Union[HttpHeader, _Mapping]]] = ..., body: _Optional[bytes] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class HttpResponsePart(_message.Message):
    __slots__ = ("status", "reason", "headers", "body", "end", "replica_id", "version")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    status: int
    reason: str
    headers: _containers.RepeatedCompositeFieldContainer[HttpHeader]
    body: bytes
    end: bool
    replica_id: str
    version: int
    def __init__(self, status: _Optional[int] = ..., reason: _Optional[str] = ..., headers: _Optional[_Iterable[_Union[HttpHeader, _Mapping]]] = ..., body: _Optional[bytes] = ..., end: _Optional[bool] = ..., replica_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...
