from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InputValue(_message.Message):
    __slots__ = ("name", "text", "data", "json", "tensor", "filename")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    data: bytes
    json: bytes
    tensor: Tensor
    filename: str
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., data: _Optional[bytes] = ..., json: _Optional[bytes] = ..., tensor: _Optional[_Union[Tensor, _Mapping]] = ..., filename: _Optional[str] = ...) -> None: ...

class Tensor(_message.Message):
    __slots__ = ("name", "datatype", "shape", "raw", "json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    raw: bytes
    json: bytes
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., raw: _Optional[bytes] = ..., json: _Optional[bytes] = ...) -> None: ...

class Tensors(_message.Message):
    __slots__ = ("tensors",)
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    tensors: _containers.RepeatedCompositeFieldContainer[Tensor]
    def __init__(self, tensors: _Optional[_Iterable[_Union[Tensor, _Mapping]]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("service", "version", "request_id", "inputs", "timeout_s", "tensor_outputs")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    TENSOR_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    service: str
    version: int
    request_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputValue]
    timeout_s: float
    tensor_outputs: bool
    def __init__(self, service: _Optional[str] = ..., version: _Optional[int] = ..., request_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputValue, _Mapping]]] = ..., timeout_s: _Optional[float] = ..., tensor_outputs: _Optional[bool] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("json", "data", "tensors")
    JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    data: bytes
    tensors: Tensors
    def __init__(self, json: _Optional[bytes] = ..., data: _Optional[bytes] = ..., tensors: _Optional[_Union[Tensors, _Mapping]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("request_id", "version", "replica_id", "output", "duration_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    version: int
    replica_id: str
    output: Output
    duration_ms: float
    def __init__(self, request_id: _Optional[str] = ..., version: _Optional[int] = ..., replica_id: _Optional[str] = ..., output: _Optional[_Union[Output, _Mapping]] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class PredictChunk(_message.Message):
    __slots__ = ("request_id", "version", "output", "final")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    version: int
    output: Output
    final: bool
    def __init__(self, request_id: _Optional[str] = ..., version: _Optional[int] = ..., output: _Optional[_Union[Output, _Mapping]] = ..., final: _Optional[bool] = ...) -> None: ...
