from modelport.v1 import registry_pb2 as _registry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GitOpsServiceStatus(_message.Message):
    __slots__ = ("service", "source", "sync", "commit", "file", "line", "message", "last_sync", "desired_hash", "updated_at")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_FIELD_NUMBER: _ClassVar[int]
    DESIRED_HASH_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    service: str
    source: str
    sync: str
    commit: str
    file: str
    line: int
    message: str
    last_sync: float
    desired_hash: str
    updated_at: float
    def __init__(self, service: _Optional[str] = ..., source: _Optional[str] = ..., sync: _Optional[str] = ..., commit: _Optional[str] = ..., file: _Optional[str] = ..., line: _Optional[int] = ..., message: _Optional[str] = ..., last_sync: _Optional[float] = ..., desired_hash: _Optional[str] = ..., updated_at: _Optional[float] = ...) -> None: ...

class GitOpsSyncRecord(_message.Message):
    __slots__ = ("commit", "ts", "result", "message")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    commit: str
    ts: float
    result: str
    message: str
    def __init__(self, commit: _Optional[str] = ..., ts: _Optional[float] = ..., result: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GitOpsSource(_message.Message):
    __slots__ = ("id", "repo", "branch", "path", "mode", "head", "synced_commit", "uncommitted", "message", "notes", "prune", "last_sync", "heartbeat", "sync_requests", "history", "applying", "applying_since", "apply_attempts", "conditions")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    SYNCED_COMMIT_FIELD_NUMBER: _ClassVar[int]
    UNCOMMITTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SYNC_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    APPLYING_FIELD_NUMBER: _ClassVar[int]
    APPLYING_SINCE_FIELD_NUMBER: _ClassVar[int]
    APPLY_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    repo: str
    branch: str
    path: str
    mode: str
    head: str
    synced_commit: str
    uncommitted: _containers.RepeatedScalarFieldContainer[str]
    message: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    prune: bool
    last_sync: float
    heartbeat: float
    sync_requests: int
    history: _containers.RepeatedCompositeFieldContainer[GitOpsSyncRecord]
    applying: str
    applying_since: float
    apply_attempts: int
    conditions: _containers.RepeatedCompositeFieldContainer[_registry_pb2.Condition]
    def __init__(self, id: _Optional[str] = ..., repo: _Optional[str] = ..., branch: _Optional[str] = ..., path: _Optional[str] = ..., mode: _Optional[str] = ..., head: _Optional[str] = ..., synced_commit: _Optional[str] = ..., uncommitted: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ..., prune: _Optional[bool] = ..., last_sync: _Optional[float] = ..., heartbeat: _Optional[float] = ..., sync_requests: _Optional[int] = ..., history: _Optional[_Iterable[_Union[GitOpsSyncRecord, _Mapping]]] = ..., applying: _Optional[str] = ..., applying_since: _Optional[float] = ..., apply_attempts: _Optional[int] = ..., conditions: _Optional[_Iterable[_Union[_registry_pb2.Condition, _Mapping]]] = ...) -> None: ...

class GitOpsEvent(_message.Message):
    __slots__ = ("service", "reason", "message", "warning")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    service: str
    reason: str
    message: str
    warning: bool
    def __init__(self, service: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., warning: _Optional[bool] = ...) -> None: ...

class ReportGitOpsRequest(_message.Message):
    __slots__ = ("source", "services", "events", "sync", "applying")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    APPLYING_FIELD_NUMBER: _ClassVar[int]
    source: GitOpsSource
    services: _containers.RepeatedCompositeFieldContainer[GitOpsServiceStatus]
    events: _containers.RepeatedCompositeFieldContainer[GitOpsEvent]
    sync: GitOpsSyncRecord
    applying: str
    def __init__(self, source: _Optional[_Union[GitOpsSource, _Mapping]] = ..., services: _Optional[_Iterable[_Union[GitOpsServiceStatus, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[GitOpsEvent, _Mapping]]] = ..., sync: _Optional[_Union[GitOpsSyncRecord, _Mapping]] = ..., applying: _Optional[str] = ...) -> None: ...

class GetGitOpsRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: str
    def __init__(self, source: _Optional[str] = ...) -> None: ...

class GitOpsState(_message.Message):
    __slots__ = ("sources", "services")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[GitOpsSource]
    services: _containers.RepeatedCompositeFieldContainer[GitOpsServiceStatus]
    def __init__(self, sources: _Optional[_Iterable[_Union[GitOpsSource, _Mapping]]] = ..., services: _Optional[_Iterable[_Union[GitOpsServiceStatus, _Mapping]]] = ...) -> None: ...

class RequestSyncRequest(_message.Message):
    __slots__ = ("repos", "branch")
    REPOS_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    repos: _containers.RepeatedScalarFieldContainer[str]
    branch: str
    def __init__(self, repos: _Optional[_Iterable[str]] = ..., branch: _Optional[str] = ...) -> None: ...

class RequestSyncResponse(_message.Message):
    __slots__ = ("sources",)
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sources: _Optional[_Iterable[str]] = ...) -> None: ...

class WaitSyncRequest(_message.Message):
    __slots__ = ("source", "after", "timeout_s")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    source: str
    after: int
    timeout_s: float
    def __init__(self, source: _Optional[str] = ..., after: _Optional[int] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class WaitSyncResponse(_message.Message):
    __slots__ = ("sync_requests",)
    SYNC_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    sync_requests: int
    def __init__(self, sync_requests: _Optional[int] = ...) -> None: ...

class GitOpsServiceWrite(_message.Message):
    __slots__ = ("name", "spec", "package_digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: _registry_pb2.ServiceSpec
    package_digest: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[_registry_pb2.ServiceSpec, _Mapping]] = ..., package_digest: _Optional[str] = ...) -> None: ...

class ApplyCommitRequest(_message.Message):
    __slots__ = ("source", "commit", "services", "prune", "statuses", "events", "sync")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    source: GitOpsSource
    commit: str
    services: _containers.RepeatedCompositeFieldContainer[GitOpsServiceWrite]
    prune: _containers.RepeatedScalarFieldContainer[str]
    statuses: _containers.RepeatedCompositeFieldContainer[GitOpsServiceStatus]
    events: _containers.RepeatedCompositeFieldContainer[GitOpsEvent]
    sync: GitOpsSyncRecord
    def __init__(self, source: _Optional[_Union[GitOpsSource, _Mapping]] = ..., commit: _Optional[str] = ..., services: _Optional[_Iterable[_Union[GitOpsServiceWrite, _Mapping]]] = ..., prune: _Optional[_Iterable[str]] = ..., statuses: _Optional[_Iterable[_Union[GitOpsServiceStatus, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[GitOpsEvent, _Mapping]]] = ..., sync: _Optional[_Union[GitOpsSyncRecord, _Mapping]] = ...) -> None: ...

class GitOpsAppliedService(_message.Message):
    __slots__ = ("name", "action", "version", "version_created")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_CREATED_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: str
    version: int
    version_created: bool
    def __init__(self, name: _Optional[str] = ..., action: _Optional[str] = ..., version: _Optional[int] = ..., version_created: _Optional[bool] = ...) -> None: ...

class ApplyCommitResponse(_message.Message):
    __slots__ = ("source", "services")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    source: GitOpsSource
    services: _containers.RepeatedCompositeFieldContainer[GitOpsAppliedService]
    def __init__(self, source: _Optional[_Union[GitOpsSource, _Mapping]] = ..., services: _Optional[_Iterable[_Union[GitOpsAppliedService, _Mapping]]] = ...) -> None: ...
