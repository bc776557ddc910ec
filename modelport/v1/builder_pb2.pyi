from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class BuildRequest(_message.Message):
    __slots__ = ("target", "package_dir", "requirements", "python", "label", "base_image", "package_digest", "python_strict", "image", "dockerfile")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_DIR_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PYTHON_STRICT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_FIELD_NUMBER: _ClassVar[int]
    target: str
    package_dir: str
    requirements: str
    python: str
    label: str
    base_image: str
    package_digest: str
    python_strict: bool
    image: str
    dockerfile: str
    def __init__(self, target: _Optional[str] = ..., package_dir: _Optional[str] = ..., requirements: _Optional[str] = ..., python: _Optional[str] = ..., label: _Optional[str] = ..., base_image: _Optional[str] = ..., package_digest: _Optional[str] = ..., python_strict: _Optional[bool] = ..., image: _Optional[str] = ..., dockerfile: _Optional[str] = ...) -> None: ...

class Build(_message.Message):
    __slots__ = ("id", "state", "env_key", "artifact", "error", "cached", "started_at", "finished_at", "target", "warning")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ENV_KEY_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: str
    env_key: str
    artifact: str
    error: str
    cached: bool
    started_at: float
    finished_at: float
    target: str
    warning: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[str] = ..., env_key: _Optional[str] = ..., artifact: _Optional[str] = ..., error: _Optional[str] = ..., cached: _Optional[bool] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., target: _Optional[str] = ..., warning: _Optional[str] = ...) -> None: ...

class GetBuildRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BuildLogRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BuildLogText(_message.Message):
    __slots__ = ("text", "state")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    text: str
    state: str
    def __init__(self, text: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...
