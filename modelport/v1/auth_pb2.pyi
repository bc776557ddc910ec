from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("username", "role", "created_at", "disabled", "has_password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    HAS_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    role: str
    created_at: float
    disabled: bool
    has_password: bool
    def __init__(self, username: _Optional[str] = ..., role: _Optional[str] = ..., created_at: _Optional[float] = ..., disabled: _Optional[bool] = ..., has_password: _Optional[bool] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "user", "name", "scopes", "kind", "created_at", "expires_at", "last_used_at", "revoked_at", "rate_limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    user: str
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    kind: str
    created_at: float
    expires_at: float
    last_used_at: float
    revoked_at: float
    rate_limit: float
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ..., name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., kind: _Optional[str] = ..., created_at: _Optional[float] = ..., expires_at: _Optional[float] = ..., last_used_at: _Optional[float] = ..., revoked_at: _Optional[float] = ..., rate_limit: _Optional[float] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("user", "role", "key_id", "kind", "scopes", "rate_limit", "expires_at")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    user: str
    role: str
    key_id: str
    kind: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    rate_limit: float
    expires_at: float
    def __init__(self, user: _Optional[str] = ..., role: _Optional[str] = ..., key_id: _Optional[str] = ..., kind: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., rate_limit: _Optional[float] = ..., expires_at: _Optional[float] = ...) -> None: ...

class BootstrapRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class BootstrapResponse(_message.Message):
    __slots__ = ("created", "token")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    created: bool
    token: str
    def __init__(self, created: _Optional[bool] = ..., token: _Optional[str] = ...) -> None: ...

class SignedRequest(_message.Message):
    __slots__ = ("access_key", "string_to_sign", "signature", "expires_at")
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    STRING_TO_SIGN_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    access_key: str
    string_to_sign: str
    signature: str
    expires_at: float
    def __init__(self, access_key: _Optional[str] = ..., string_to_sign: _Optional[str] = ..., signature: _Optional[str] = ..., expires_at: _Optional[float] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("token", "signed")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    token: str
    signed: SignedRequest
    def __init__(self, token: _Optional[str] = ..., signed: _Optional[_Union[SignedRequest, _Mapping]] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("username", "password", "kind", "name", "ttl_s")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    kind: str
    name: str
    ttl_s: float
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("token", "principal", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    principal: Principal
    expires_at: float
    def __init__(self, token: _Optional[str] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., expires_at: _Optional[float] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("user", "name", "scopes", "ttl_s", "rate_limit")
    USER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    user: str
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    ttl_s: float
    rate_limit: float
    def __init__(self, user: _Optional[str] = ..., name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., ttl_s: _Optional[float] = ..., rate_limit: _Optional[float] = ...) -> None: ...

class CreatedKey(_message.Message):
    __slots__ = ("key", "token", "access_key", "secret_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    token: str
    access_key: str
    secret_key: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., token: _Optional[str] = ..., access_key: _Optional[str] = ..., secret_key: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("user", "include_revoked")
    USER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    user: str
    include_revoked: bool
    def __init__(self, user: _Optional[str] = ..., include_revoked: _Optional[bool] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("id", "user")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    id: str
    user: str
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("username", "password", "role")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    role: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class UserRequest(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class SetPasswordRequest(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class PolicyRequest(_message.Message):
    __slots__ = ("service", "model")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    service: str
    model: str
    def __init__(self, service: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("service_exists", "service_owner", "auth_required", "rate_limit", "burst", "model_exists", "model_owner")
    SERVICE_EXISTS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_OWNER_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    MODEL_EXISTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_OWNER_FIELD_NUMBER: _ClassVar[int]
    service_exists: bool
    service_owner: str
    auth_required: bool
    rate_limit: float
    burst: int
    model_exists: bool
    model_owner: str
    def __init__(self, service_exists: _Optional[bool] = ..., service_owner: _Optional[str] = ..., auth_required: _Optional[bool] = ..., rate_limit: _Optional[float] = ..., burst: _Optional[int] = ..., model_exists: _Optional[bool] = ..., model_owner: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("id", "ts", "user", "key_id", "action", "target", "status", "remote", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: int
    ts: float
    user: str
    key_id: str
    action: str
    target: str
    status: int
    remote: str
    detail: str
    def __init__(self, id: _Optional[int] = ..., ts: _Optional[float] = ..., user: _Optional[str] = ..., key_id: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., status: _Optional[int] = ..., remote: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("limit", "user", "since", "before_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    user: str
    since: float
    before_id: int
    def __init__(self, limit: _Optional[int] = ..., user: _Optional[str] = ..., since: _Optional[float] = ..., before_id: _Optional[int] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...

class AuthEmpty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
