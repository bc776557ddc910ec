from modelport.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchJob(_message.Message):
    __slots__ = ("id", "service", "state", "total", "done", "failed", "running", "concurrency", "input_kind", "created_at", "started_at", "finished_at", "error", "owner", "retried", "items_per_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    INPUT_KIND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PER_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    state: str
    total: int
    done: int
    failed: int
    running: int
    concurrency: int
    input_kind: str
    created_at: float
    started_at: float
    finished_at: float
    error: str
    owner: str
    retried: int
    items_per_s: float
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., state: _Optional[str] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., running: _Optional[int] = ..., concurrency: _Optional[int] = ..., input_kind: _Optional[str] = ..., created_at: _Optional[float] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., error: _Optional[str] = ..., owner: _Optional[str] = ..., retried: _Optional[int] = ..., items_per_s: _Optional[float] = ...) -> None: ...

class BatchHeader(_message.Message):
    __slots__ = ("service", "concurrency", "input_kind", "owner")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    INPUT_KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    service: str
    concurrency: int
    input_kind: str
    owner: str
    def __init__(self, service: _Optional[str] = ..., concurrency: _Optional[int] = ..., input_kind: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class CreateBatchChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: BatchHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[BatchHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("service", "limit", "owner")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    service: str
    limit: int
    owner: str
    def __init__(self, service: _Optional[str] = ..., limit: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class ListBatchesResponse(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[BatchJob]
    def __init__(self, batches: _Optional[_Iterable[_Union[BatchJob, _Mapping]]] = ...) -> None: ...

class CancelBatchRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BatchLogRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BatchLog(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class BatchResultsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BatchResultsChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class BatchItemRef(_message.Message):
    __slots__ = ("batch", "index")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    batch: str
    index: int
    def __init__(self, batch: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class ClaimBatchItemsRequest(_message.Message):
    __slots__ = ("runner", "max", "running", "wait_s")
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    runner: str
    max: int
    running: _containers.RepeatedCompositeFieldContainer[BatchItemRef]
    wait_s: float
    def __init__(self, runner: _Optional[str] = ..., max: _Optional[int] = ..., running: _Optional[_Iterable[_Union[BatchItemRef, _Mapping]]] = ..., wait_s: _Optional[float] = ...) -> None: ...

class ClaimedBatchItem(_message.Message):
    __slots__ = ("batch", "index", "service", "source", "inputs_json", "files", "filenames", "attempt")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    class FilenamesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BATCH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FILENAMES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    batch: str
    index: int
    service: str
    source: str
    inputs_json: bytes
    files: _containers.ScalarMap[str, bytes]
    filenames: _containers.ScalarMap[str, str]
    attempt: int
    def __init__(self, batch: _Optional[str] = ..., index: _Optional[int] = ..., service: _Optional[str] = ..., source: _Optional[str] = ..., inputs_json: _Optional[bytes] = ..., files: _Optional[_Mapping[str, bytes]] = ..., filenames: _Optional[_Mapping[str, str]] = ..., attempt: _Optional[int] = ...) -> None: ...

class ClaimBatchItemsResponse(_message.Message):
    __slots__ = ("items", "cancel")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ClaimedBatchItem]
    cancel: _containers.RepeatedCompositeFieldContainer[BatchItemRef]
    def __init__(self, items: _Optional[_Iterable[_Union[ClaimedBatchItem, _Mapping]]] = ..., cancel: _Optional[_Iterable[_Union[BatchItemRef, _Mapping]]] = ...) -> None: ...

class FinishBatchItemRequest(_message.Message):
    __slots__ = ("runner", "batch", "index", "state", "output", "error", "retry_after_s")
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    runner: str
    batch: str
    index: int
    state: str
    output: _inference_pb2.Output
    error: str
    retry_after_s: float
    def __init__(self, runner: _Optional[str] = ..., batch: _Optional[str] = ..., index: _Optional[int] = ..., state: _Optional[str] = ..., output: _Optional[_Union[_inference_pb2.Output, _Mapping]] = ..., error: _Optional[str] = ..., retry_after_s: _Optional[float] = ...) -> None: ...

class FinishBatchItemResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
