from modelport.v1 import runtime_pb2 as _runtime_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentHeartbeat(_message.Message):
    __slots__ = ("id", "address", "capacity", "max_replicas", "replicas", "started_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    capacity: _runtime_pb2.Capacity
    max_replicas: int
    replicas: int
    started_at: float
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., capacity: _Optional[_Union[_runtime_pb2.Capacity, _Mapping]] = ..., max_replicas: _Optional[int] = ..., replicas: _Optional[int] = ..., started_at: _Optional[float] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("interval_s", "ttl_s")
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    interval_s: float
    ttl_s: float
    def __init__(self, interval_s: _Optional[float] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("id", "address", "capacity", "max_replicas", "replicas", "last_seen", "state", "registered_at", "configured")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    capacity: _runtime_pb2.Capacity
    max_replicas: int
    replicas: int
    last_seen: float
    state: str
    registered_at: float
    configured: bool
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., capacity: _Optional[_Union[_runtime_pb2.Capacity, _Mapping]] = ..., max_replicas: _Optional[int] = ..., replicas: _Optional[int] = ..., last_seen: _Optional[float] = ..., state: _Optional[str] = ..., registered_at: _Optional[float] = ..., configured: _Optional[bool] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ...) -> None: ...
