from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_INGEST: _ClassVar[Scope]
    SCOPE_INFER: _ClassVar[Scope]
    SCOPE_TRAIN: _ClassVar[Scope]
    SCOPE_ADMIN: _ClassVar[Scope]
    SCOPE_AUTHENTICATED: _ClassVar[Scope]
    SCOPE_DEPLOY: _ClassVar[Scope]
SCOPE_UNSPECIFIED: Scope
SCOPE_INGEST: Scope
SCOPE_INFER: Scope
SCOPE_TRAIN: Scope
SCOPE_ADMIN: Scope
SCOPE_AUTHENTICATED: Scope
SCOPE_DEPLOY: Scope
REQUIRED_SCOPE_FIELD_NUMBER: _ClassVar[int]
required_scope: _descriptor.FieldDescriptor
OPERATOR_ONLY_FIELD_NUMBER: _ClassVar[int]
operator_only: _descriptor.FieldDescriptor
